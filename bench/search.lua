-- wrk script for GET /v1/availability (bench/run_search.py passes the arguments).
--   wrk -t1 -c16 --latency -s bench/search.lua http://127.0.0.1:PORT -- KEY SEED SUBREGIONS
-- KEY: bearer key ("-" for none); SEED: integer; SUBREGIONS: "code:lat:lon,code:lat:lon,...".
-- Every run with the same SEED sends the same request sequence, so both targets get equal work.

local care_types = {
  "elv_high", "elv_high", "elv_high", "elv_low", "elv_low", "elv_palliative", "grz", "grz",
  "wlz_crisis", "ggz_crisis", "district_nursing_acute", "district_nursing", "local_other",
}
local target_groups = { "somatic", "somatic", "somatic", "psychogeriatric" }
local subregions = {}

function init(args)
  local key, seed, subs = args[1], tonumber(args[2] or "1"), args[3] or ""
  for code, lat, lon in string.gmatch(subs, "([^:,]+):([^:,]+):([^:,]+)") do
    subregions[#subregions + 1] = { code = code, lat = tonumber(lat), lon = tonumber(lon) }
  end
  assert(#subregions > 0, "no subregions given")
  math.randomseed(seed)
  if key and key ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
end

function request()
  local sub = subregions[math.random(#subregions)]
  local q = "care_type=" .. care_types[math.random(#care_types)] .. "&subregion=" .. sub.code
  local r = math.random()
  if r < 0.6 then
    q = q .. "&target_group=" .. target_groups[math.random(#target_groups)]
  end
  if math.random() < 0.5 then
    q = q .. "&escalate=true"
  end
  if math.random() < 0.5 then
    local lat = sub.lat + (math.random() - 0.5) * 0.2
    local lon = sub.lon + (math.random() - 0.5) * 0.3
    q = q .. string.format("&near=%.4f,%.4f", lat, lon)
  end
  return wrk.format("GET", "/v1/availability?" .. q)
end
