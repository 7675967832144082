-- wrk script for POST /v1/placements/{id}/holds (bench/run_holds.py passes the arguments).
--   wrk -t1 -c16 --latency -s bench/holds.lua URL -- KEY BASE STATE UNITS SEED
-- KEY: bearer key ("-" for none). BASE: index of this target's first seeded placement.
-- STATE: file holding how many of this target's placements earlier runs used (read at start,
-- updated in done(), so every placement gets exactly one hold across warm-up and rounds).
-- UNITS: file with one unit id per line. SEED: integer; the unit sequence is fixed per seed.
-- The placement of request n is 00000000-0000-4000-8000-<BASE+used+n as 12 hex digits>
-- (bench/holds_seed.py placement_id). Use -t1: the counter lives in the one thread.

local units = {}
counter = 0 -- global: done() reads it from the thread
state_path = ""
local base = 0

local function read_number(path)
  local f = io.open(path, "r")
  if f == nil then
    return 0
  end
  local n = tonumber(f:read("*a")) or 0
  f:close()
  return n
end

function init(args)
  local key = args[1]
  base = tonumber(args[2])
  state_path = args[3]
  counter = read_number(state_path)
  for line in io.lines(args[4]) do
    if #line > 0 then
      units[#units + 1] = line
    end
  end
  assert(#units > 0, "no units given")
  math.randomseed(tonumber(args[5] or "1"))
  if key and key ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local path = string.format("/v1/placements/00000000-0000-4000-8000-%012x/holds", base + counter)
  local body = '{"unit_id":"' .. units[math.random(#units)] .. '"}'
  return wrk.format("POST", path, nil, body)
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local f = io.open(thread:get("state_path"), "w")
    f:write(tostring(thread:get("counter")))
    f:close()
  end
end
