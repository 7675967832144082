"""Consistency checks on the ROAZ regio West demo data set (app/registry/demo_west.yaml).

The data set is described in docs/domain.md §11 (content), §3 (care types) and §8 (escalation
order).
Range checks state the requirement; exact-value checks pin the current file, so that any change
to the numbers is a conscious one (update the constants here together with the YAML).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from typing import Any

import pytest
import yaml

from app.enums import CareType, Feature, OrganisationKind, SexPolicy, TargetGroup

Node = dict[str, Any]

# --- Expected structure --------------------------------------------------------------------------

SUBREGION_CODES = ["den-haag", "zoetermeer", "delft-westland", "leiden", "gouda"]

# Escalation order [A]: other subregions by estimated travel time (docs/domain.md §8).
NEIGHBOURS = {
    "den-haag": ["delft-westland", "zoetermeer", "leiden", "gouda"],
    "zoetermeer": ["den-haag", "delft-westland", "gouda", "leiden"],
    "delft-westland": ["den-haag", "zoetermeer", "leiden", "gouda"],
    "leiden": ["den-haag", "zoetermeer", "delft-westland", "gouda"],
    "gouda": ["zoetermeer", "den-haag", "leiden", "delft-westland"],
}

MUNICIPALITIES = {
    "den-haag": ["Den Haag", "Rijswijk", "Leidschendam-Voorburg", "Wassenaar"],
    "zoetermeer": ["Zoetermeer"],
    "delft-westland": ["Delft", "Westland", "Midden-Delfland", "Pijnacker-Nootdorp"],
    "leiden": [
        "Leiden",
        "Leiderdorp",
        "Oegstgeest",
        "Katwijk",
        "Noordwijk",
        "Teylingen",
        "Lisse",
        "Hillegom",
        "Voorschoten",
        "Zoeterwoude",
        "Kaag en Braassem",
        "Alphen aan den Rijn",
        "Nieuwkoop",
    ],
    "gouda": ["Gouda", "Waddinxveen", "Bodegraven-Reeuwijk", "Zuidplas", "Krimpenerwaard"],
}

# Rough reference point per municipality (WGS84) for a plausibility check on coordinates.
MUNICIPALITY_CENTRES: dict[str, tuple[float, float]] = {
    "Den Haag": (52.070, 4.300),
    "Rijswijk": (52.036, 4.325),
    "Leidschendam-Voorburg": (52.080, 4.385),
    "Wassenaar": (52.145, 4.400),
    "Zoetermeer": (52.058, 4.493),
    "Delft": (52.006, 4.360),
    "Westland": (51.998, 4.210),
    "Midden-Delfland": (51.960, 4.300),
    "Pijnacker-Nootdorp": (52.025, 4.420),
    "Leiden": (52.158, 4.490),
    "Leiderdorp": (52.160, 4.535),
    "Oegstgeest": (52.182, 4.470),
    "Katwijk": (52.195, 4.425),
    "Noordwijk": (52.245, 4.460),
    "Teylingen": (52.225, 4.510),
    "Lisse": (52.255, 4.555),
    "Hillegom": (52.290, 4.580),
    "Voorschoten": (52.127, 4.445),
    "Zoeterwoude": (52.115, 4.500),
    "Kaag en Braassem": (52.195, 4.640),
    "Alphen aan den Rijn": (52.120, 4.660),
    "Nieuwkoop": (52.160, 4.760),
    "Gouda": (52.015, 4.710),
    "Waddinxveen": (52.045, 4.650),
    "Bodegraven-Reeuwijk": (52.065, 4.750),
    "Zuidplas": (52.000, 4.600),
    "Krimpenerwaard": (51.950, 4.760),
}
MAX_KM_FROM_MUNICIPALITY_CENTRE = 8.0

# Numeric postcode (PC4) ranges per municipality (coarse, including villages).
POSTCODE_RANGES: dict[str, list[tuple[int, int]]] = {
    "Den Haag": [(2491, 2599)],
    "Rijswijk": [(2280, 2289)],
    "Leidschendam-Voorburg": [(2261, 2275)],
    "Wassenaar": [(2241, 2245)],
    "Zoetermeer": [(2711, 2729)],
    "Delft": [(2611, 2629)],
    "Westland": [(2291, 2295), (2671, 2694)],
    "Midden-Delfland": [(2635, 2636), (3155, 3159)],
    "Pijnacker-Nootdorp": [(2631, 2632), (2641, 2647)],
    "Leiden": [(2311, 2334)],
    "Leiderdorp": [(2351, 2353)],
    "Oegstgeest": [(2340, 2343)],
    "Katwijk": [(2221, 2225), (2231, 2236)],
    "Noordwijk": [(2201, 2204), (2211, 2211)],
    "Teylingen": [(2171, 2172), (2215, 2215), (2361, 2361)],
    "Lisse": [(2160, 2161)],
    "Hillegom": [(2180, 2182)],
    "Voorschoten": [(2251, 2253)],
    "Zoeterwoude": [(2381, 2382)],
    "Kaag en Braassem": [(2355, 2355), (2371, 2377), (2451, 2451), (2465, 2465), (2481, 2481)],
    "Alphen aan den Rijn": [(2391, 2409), (2453, 2453), (2471, 2471), (2771, 2773)],
    "Nieuwkoop": [(2421, 2441), (2461, 2461)],
    "Gouda": [(2800, 2809)],
    "Waddinxveen": [(2741, 2745)],
    "Bodegraven-Reeuwijk": [(2411, 2415), (2811, 2811)],
    "Zuidplas": [(2751, 2751), (2761, 2762), (2841, 2841), (2911, 2914)],
    "Krimpenerwaard": [(2821, 2825), (2851, 2871), (2931, 2941)],
}

POSTCODE_RE = re.compile(r"^[1-9][0-9]{3} (?!SA|SD|SS)[A-Z]{2}$")
CODE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Placeholder numbers only: +31, area code, then nothing but zeros.
PLACEHOLDER_PHONE_RE = re.compile(r"^\+31 [1-9][0-9]{1,2}(?: 0+)+$")

LAT_RANGE = (51.9, 52.35)
LON_RANGE = (3.95, 4.9)

# Code lists as the YAML format defines them; cross-checked against app.enums below.
KINDS = {"vvt", "hospital", "ggz", "grz", "hap", "rav", "rap", "gp"}
CARE_TYPES = {
    "elv_low",
    "elv_high",
    "elv_palliative",
    "grz",
    "wlz_crisis",
    "ggz_crisis",
    "district_nursing_acute",
    "district_nursing",
    "local_other",
    "respite",
    "observation",
}
TARGET_GROUPS = {"somatic", "psychogeriatric", "psychiatric"}
SEX_POLICIES = {"any", "male", "female"}
FEATURES = {
    "isolation",
    "oxygen",
    "bariatric",
    "closed_ward",
    "single_room",
    "tube_feeding",
    "iv_therapy",
}
GRZ_TRACKS = {"orthopedie/trauma", "CVA", "overig"}
ELV_TYPES = ("elv_high", "elv_low", "elv_palliative")
BED_TYPES = {*ELV_TYPES, "grz", "wlz_crisis", "ggz_crisis", "respite", "observation"}

ORGANISATION_KEYS_REQUIRED = {"code", "name", "kind", "locations"}
ORGANISATION_KEYS_OPTIONAL = {"agb_code"}
LOCATION_KEYS_REQUIRED = {
    "code",
    "name",
    "address",
    "postcode",
    "municipality",
    "latitude",
    "longitude",
    "units",
}
LOCATION_KEYS_OPTIONAL = {"phone"}
UNIT_KEYS_REQUIRED = {
    "code",
    "name",
    "care_type",
    "target_groups",
    "sex_policy",
    "features",
    "staffed_capacity",
    "free",
}
UNIT_KEYS_OPTIONAL = {"expected_free_24h", "label"}

ORGANISATIONS_BY_KIND = {
    "hospital": {"hmc", "haga", "reinier-de-graaf", "lumc", "alrijne", "groene-hart-ziekenhuis"},
    "hap": {
        "hadoks",
        "eerstelijnszorg-zoetermeer",
        "hap-delft-schievliet",
        "hap-westland",
        "de-limes",
        "hap-midden-holland",
    },
    "rav": {"rav-haaglanden", "rav-hollands-midden"},
    "rap": {
        "vpo-haaglanden",
        "coordinatiepunt-zoetermeer",
        "coordinatiepunt-wsd",
        "rap-zhn",
        "coordinatiepunt-midden-holland",
    },
    "ggz": {"parnassia", "rivierduinen", "ggz-delfland"},
    "vvt": {
        "florence",
        "wzh",
        "welthuis",
        "pieter-van-foreest",
        "hww",
        "respect",
        "fundis",
        "argos",
        "careyn",
        "zonnehuisgroep",
        "activite",
        "marente",
        "topaz",
        "libertas-leiden",
        "zorgpartners-midden-holland",
        "zorgbrug",
    },
}
UNITLESS_KINDS = {"hospital", "hap", "rav", "rap"}

# Exact totals of the current file: staffed capacity and initial free places per care type.
EXPECTED_CAPACITY = {
    "elv_high": 150,
    "elv_low": 100,
    "elv_palliative": 50,
    "grz": 150,
    "wlz_crisis": 40,
    "ggz_crisis": 20,
    "district_nursing_acute": 37,
    "district_nursing": 106,
    "observation": 4,
    "respite": 2,
}
EXPECTED_FREE = {
    "elv_high": 10,
    "elv_low": 15,
    "elv_palliative": 7,
    "grz": 11,
    "wlz_crisis": 5,
    "ggz_crisis": 4,
    "district_nursing_acute": 9,
    "district_nursing": 22,
    "observation": 1,
    "respite": 1,
}
EXPECTED_CAPACITY_BY_SUBREGION = {
    "den-haag": {
        "elv_high": 54,
        "elv_low": 34,
        "elv_palliative": 18,
        "grz": 50,
        "wlz_crisis": 14,
        "ggz_crisis": 8,
        "district_nursing_acute": 10,
        "district_nursing": 30,
    },
    "zoetermeer": {
        "elv_high": 12,
        "elv_low": 8,
        "elv_palliative": 4,
        "grz": 12,
        "wlz_crisis": 4,
        "ggz_crisis": 2,
        "district_nursing_acute": 4,
        "district_nursing": 12,
        "observation": 4,
        "respite": 2,
    },
    "delft-westland": {
        "elv_high": 24,
        "elv_low": 16,
        "elv_palliative": 8,
        "grz": 26,
        "wlz_crisis": 6,
        "ggz_crisis": 4,
        "district_nursing_acute": 6,
        "district_nursing": 18,
    },
    "leiden": {
        "elv_high": 40,
        "elv_low": 28,
        "elv_palliative": 14,
        "grz": 42,
        "wlz_crisis": 10,
        "ggz_crisis": 4,
        "district_nursing_acute": 11,
        "district_nursing": 30,
    },
    "gouda": {
        "elv_high": 20,
        "elv_low": 14,
        "elv_palliative": 6,
        "grz": 20,
        "wlz_crisis": 6,
        "ggz_crisis": 2,
        "district_nursing_acute": 6,
        "district_nursing": 16,
    },
}
EXPECTED_COUNTS = {
    "organisations": 38,
    "locations": 55,
    "locations_with_units": 31,
    "elv_locations": 24,
    "units": 94,
    "bed_units_with_free_0": 32,
}


# --- Loading and traversal -----------------------------------------------------------------------


@cache
def _load() -> Node:
    text = files("app.registry").joinpath("demo_west.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def data() -> Node:
    return _load()


def _organisations(data: Node) -> list[Node]:
    orgs = data["organisations"]
    assert isinstance(orgs, list)
    return orgs


def _locations(data: Node) -> Iterator[tuple[Node, Node]]:
    for org in _organisations(data):
        for loc in org["locations"]:
            yield org, loc


def _units(data: Node) -> Iterator[tuple[Node, Node, Node]]:
    for org, loc in _locations(data):
        for unit in loc["units"]:
            yield org, loc, unit


def _subregion_of(data: Node) -> dict[str, str]:
    """Municipality name -> subregion code."""
    return {m["name"]: sub["code"] for sub in data["subregions"] for m in sub["municipalities"]}


def _names(sub: Node) -> list[str]:
    return [m["name"] for m in sub["municipalities"]]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _capacity(data: Node) -> Counter[str]:
    totals: Counter[str] = Counter()
    for _, _, unit in _units(data):
        totals[unit["care_type"]] += unit["staffed_capacity"]
    return totals


def _capacity_by_subregion(data: Node) -> dict[str, Counter[str]]:
    subregion_of = _subregion_of(data)
    totals: dict[str, Counter[str]] = {code: Counter() for code in SUBREGION_CODES}
    for _, loc, unit in _units(data):
        totals[subregion_of[loc["municipality"]]][unit["care_type"]] += unit["staffed_capacity"]
    return totals


def _free_by_subregion(data: Node, care_type: str) -> dict[str, int]:
    subregion_of = _subregion_of(data)
    free = dict.fromkeys(SUBREGION_CODES, 0)
    for _, loc, unit in _units(data):
        if unit["care_type"] == care_type:
            free[subregion_of[loc["municipality"]]] += unit["free"]
    return free


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


# --- Region, subregions, municipalities ----------------------------------------------------------


def test_top_level_and_region(data: Node) -> None:
    assert list(data) == ["region", "subregions", "organisations"]
    assert data["region"] == {"code": "west", "name": "ROAZ regio West"}


def test_five_subregions_in_order(data: Node) -> None:
    subs = data["subregions"]
    assert [s["code"] for s in subs] == SUBREGION_CODES
    assert [s["name"] for s in subs] == [
        "Den Haag",
        "Zoetermeer",
        "Delft/Westland",
        "Leiden",
        "Gouda",
    ]
    for sub in subs:
        assert set(sub) == {"code", "name", "neighbours", "municipalities"}


def test_neighbours_are_all_other_subregions_once(data: Node) -> None:
    for sub in data["subregions"]:
        neighbours = sub["neighbours"]
        others = [code for code in SUBREGION_CODES if code != sub["code"]]
        assert len(neighbours) == 4, sub["code"]
        assert Counter(neighbours) == Counter(others), sub["code"]
    assert {s["code"]: s["neighbours"] for s in data["subregions"]} == NEIGHBOURS


def test_27_municipalities_each_in_exactly_one_subregion(data: Node) -> None:
    listed = [m for sub in data["subregions"] for m in _names(sub)]
    assert len(listed) == 27
    assert len(set(listed)) == 27, [m for m, n in Counter(listed).items() if n > 1]
    assert {s["code"]: _names(s) for s in data["subregions"]} == MUNICIPALITIES
    codes = [m["cbs_code"] for sub in data["subregions"] for m in sub["municipalities"]]
    assert len(set(codes)) == 27
    assert all(re.fullmatch(r"GM[0-9]{4}", c) for c in codes)
    assert set(listed) == set(MUNICIPALITY_CENTRES) == set(POSTCODE_RANGES)


# --- Schema: keys, codes, enums ------------------------------------------------------------------


def _keys_ok(obj: Node, required: set[str], optional: set[str]) -> bool:
    return required <= set(obj) <= required | optional


def test_keys_are_exactly_the_format(data: Node) -> None:
    org_keys = (ORGANISATION_KEYS_REQUIRED, ORGANISATION_KEYS_OPTIONAL)
    loc_keys = (LOCATION_KEYS_REQUIRED, LOCATION_KEYS_OPTIONAL)
    unit_keys = (UNIT_KEYS_REQUIRED, UNIT_KEYS_OPTIONAL)
    errors = [
        *(
            f"organisation {o.get('code')}: {sorted(o)}"
            for o in _organisations(data)
            if not _keys_ok(o, *org_keys)
        ),
        *(
            f"location {loc.get('code')}: {sorted(loc)}"
            for _, loc in _locations(data)
            if not _keys_ok(loc, *loc_keys)
        ),
        *(
            f"unit {u.get('code')}: {sorted(u)}"
            for _, _, u in _units(data)
            if not _keys_ok(u, *unit_keys)
        ),
    ]
    assert errors == []


def test_names_are_non_empty_strings(data: Node) -> None:
    items: list[Node] = [
        *_organisations(data),
        *(loc for _, loc in _locations(data)),
        *(unit for _, _, unit in _units(data)),
    ]
    bad = [
        i["code"] for i in items if not (isinstance(i["name"], str) and 0 < len(i["name"]) <= 200)
    ]
    assert bad == []


def test_codes_are_unique_slugs(data: Node) -> None:
    org_codes = [org["code"] for org in _organisations(data)]
    loc_codes = [loc["code"] for _, loc in _locations(data)]
    unit_codes = [unit["code"] for _, _, unit in _units(data)]
    for codes in (org_codes, loc_codes, unit_codes):
        assert [c for c, n in Counter(codes).items() if n > 1] == []
        assert [c for c in codes if not CODE_RE.match(c)] == []
    # A unit's code starts with its location's code (readable in logs and URLs).
    assert [
        u["code"] for _, loc, u in _units(data) if not u["code"].startswith(loc["code"] + "-")
    ] == []


def test_enum_values_are_valid(data: Node) -> None:
    errors: list[str] = []
    for org in _organisations(data):
        if org["kind"] not in KINDS:
            errors.append(f"{org['code']}: kind {org['kind']}")
    for _, _, unit in _units(data):
        code = unit["code"]
        groups, features = unit["target_groups"], unit["features"]
        if unit["care_type"] not in CARE_TYPES:
            errors.append(f"{code}: care_type {unit['care_type']}")
        if unit["sex_policy"] not in SEX_POLICIES:
            errors.append(f"{code}: sex_policy {unit['sex_policy']}")
        if not groups or not set(groups) <= TARGET_GROUPS or len(set(groups)) != len(groups):
            errors.append(f"{code}: target_groups {groups}")
        if not set(features) <= FEATURES or len(set(features)) != len(features):
            errors.append(f"{code}: features {features}")
        # psychiatric only (and always) for GGZ crisis beds.
        if ("psychiatric" in groups) != (unit["care_type"] == "ggz_crisis"):
            errors.append(f"{code}: psychiatric target group vs care_type {unit['care_type']}")
    assert errors == []


def test_code_lists_match_app_enums() -> None:
    assert {k.value for k in OrganisationKind} == KINDS
    assert {c.value for c in CareType} == CARE_TYPES
    assert {t.value for t in TargetGroup} == TARGET_GROUPS
    assert {s.value for s in SexPolicy} == SEX_POLICIES
    assert {f.value for f in Feature} == FEATURES


# --- Locations: municipality, postcode, coordinates, phone ---------------------------------------


def test_location_municipalities_are_known(data: Node) -> None:
    subregion_of = _subregion_of(data)
    assert [
        loc["code"] for _, loc in _locations(data) if loc["municipality"] not in subregion_of
    ] == []


def test_postcodes_are_dutch_format_and_fit_the_municipality(data: Node) -> None:
    errors: list[str] = []
    for _, loc in _locations(data):
        postcode = loc["postcode"]
        if not (isinstance(postcode, str) and POSTCODE_RE.match(postcode)):
            errors.append(f"{loc['code']}: format {postcode!r}")
            continue
        pc4 = int(postcode[:4])
        ranges = POSTCODE_RANGES[loc["municipality"]]
        if not any(lo <= pc4 <= hi for lo, hi in ranges):
            errors.append(f"{loc['code']}: {postcode} not in {loc['municipality']}")
    assert errors == []


def test_coordinates_inside_region_west_and_near_municipality(data: Node) -> None:
    errors: list[str] = []
    for _, loc in _locations(data):
        lat, lon = loc["latitude"], loc["longitude"]
        if not (isinstance(lat, float) and isinstance(lon, float)):
            errors.append(f"{loc['code']}: not floats")
            continue
        if not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]):
            errors.append(f"{loc['code']}: ({lat}, {lon}) outside region West")
        km = _km((lat, lon), MUNICIPALITY_CENTRES[loc["municipality"]])
        if km > MAX_KM_FROM_MUNICIPALITY_CENTRE:
            errors.append(f"{loc['code']}: {km:.1f} km from {loc['municipality']}")
    assert errors == []


def test_phones_are_placeholders_and_no_agb_codes_invented(data: Node) -> None:
    phones = {loc["code"]: loc["phone"] for _, loc in _locations(data) if "phone" in loc}
    assert {c: p for c, p in phones.items() if not PLACEHOLDER_PHONE_RE.match(p)} == {}
    # Phones only on the coordination desks; AGB codes are not known, so none are given.
    assert sorted(phones) == [
        "coordinatiepunt-midden-holland-gouda",
        "coordinatiepunt-wsd-delft",
        "coordinatiepunt-zoetermeer-caz",
        "rap-zhn-leiden",
        "vpo-haaglanden-den-haag",
    ]
    assert [org["code"] for org in _organisations(data) if "agb_code" in org] == []


def test_addresses_look_like_street_and_number(data: Node) -> None:
    street = re.compile(r"^\S.* [1-9][0-9]*[a-z]?$")
    assert [loc["code"] for _, loc in _locations(data) if not street.match(loc["address"])] == []


# --- Units: capacity and labels ------------------------------------------------------------------


def test_capacity_and_free_are_in_range(data: Node) -> None:
    errors: list[str] = []
    for _, _, unit in _units(data):
        cap, free = unit["staffed_capacity"], unit["free"]
        if not (_is_int(cap) and cap >= 1):
            errors.append(f"{unit['code']}: staffed_capacity {cap!r}")
            continue
        if not (_is_int(free) and 0 <= free <= cap):
            errors.append(f"{unit['code']}: free {free!r} of {cap}")
        if "expected_free_24h" in unit:
            expected = unit["expected_free_24h"]
            if not (_is_int(expected) and 0 <= expected <= cap):
                errors.append(f"{unit['code']}: expected_free_24h {expected!r} of {cap}")
    assert errors == []


def test_labels(data: Node) -> None:
    errors: list[str] = []
    for _, _, unit in _units(data):
        label = unit.get("label")
        if label is not None and not (isinstance(label, str) and 0 < len(label) <= 500):
            errors.append(f"{unit['code']}: label {label!r}")
        if unit["care_type"] == "local_other" and not label:
            errors.append(f"{unit['code']}: local_other needs a label")
        if unit["care_type"] == "grz" and label not in GRZ_TRACKS:
            errors.append(f"{unit['code']}: grz track {label!r}")
    assert errors == []
    # Zoetermeer's multifunctional (REO) beds are the guaranteed care types observation/respite
    reo = [
        (u["code"], u["care_type"], u["staffed_capacity"])
        for _, loc, u in _units(data)
        if u["care_type"] in ("observation", "respite", "local_other")
    ]
    assert reo == [
        ("fundis-oosterheem-observation", "observation", 4),
        ("fundis-oosterheem-respite", "respite", 2),
    ]


def test_care_type_specific_attributes(data: Node) -> None:
    errors: list[str] = []
    for _, _, unit in _units(data):
        groups, features = set(unit["target_groups"]), set(unit["features"])
        # A psychogeriatric-only Wlz-crisis unit must be a closed ward.
        pg_only_crisis = unit["care_type"] == "wlz_crisis" and groups == {"psychogeriatric"}
        if pg_only_crisis and "closed_ward" not in features:
            errors.append(f"{unit['code']}: PG crisis unit without closed_ward")
        if unit["care_type"] == "wlz_crisis" and not groups <= {"somatic", "psychogeriatric"}:
            errors.append(f"{unit['code']}: wlz_crisis target groups {groups}")
    assert errors == []
    wlz_groups = {
        g for _, _, u in _units(data) if u["care_type"] == "wlz_crisis" for g in u["target_groups"]
    }
    assert wlz_groups == {"somatic", "psychogeriatric"}
    assert any(
        "closed_ward" in u["features"] for _, _, u in _units(data) if u["care_type"] == "wlz_crisis"
    )
    assert {u["label"] for _, _, u in _units(data) if u["care_type"] == "grz"} == GRZ_TRACKS


# --- Organisations --------------------------------------------------------------------------------


def test_organisations_of_domain_section_11_are_present(data: Node) -> None:
    by_kind: dict[str, set[str]] = {}
    for org in _organisations(data):
        by_kind.setdefault(org["kind"], set()).add(org["code"])
    assert by_kind == ORGANISATIONS_BY_KIND


def test_seven_ed_locations_and_ten_hap_sites(data: Node) -> None:
    hospital_locations = [loc["code"] for org, loc in _locations(data) if org["kind"] == "hospital"]
    hap_locations = [loc["code"] for org, loc in _locations(data) if org["kind"] == "hap"]
    assert len(hospital_locations) == 7
    assert "haga-zoetermeer" in hospital_locations
    assert len(hap_locations) == 10


def test_units_only_where_capacity_is_coordinated(data: Node) -> None:
    for org, loc in _locations(data):
        if org["kind"] in UNITLESS_KINDS:
            assert loc["units"] == [], loc["code"]
        else:
            assert loc["units"], loc["code"]
    for org, _, unit in _units(data):
        if unit["care_type"] == "ggz_crisis":
            assert org["kind"] == "ggz", unit["code"]
        else:
            assert org["kind"] == "vvt", unit["code"]


def test_each_subregion_has_hospital_hap_and_exactly_one_desk(data: Node) -> None:
    subregion_of = _subregion_of(data)
    kinds: dict[str, Counter[str]] = {code: Counter() for code in SUBREGION_CODES}
    for org, loc in _locations(data):
        kinds[subregion_of[loc["municipality"]]][org["kind"]] += 1
    for code, counter in kinds.items():
        assert counter["hospital"] >= 1, code
        assert counter["hap"] >= 1, code
        assert counter["rap"] == 1, code


def test_district_nursing_by_home_care_organisations_in_each_subregion(data: Node) -> None:
    by_subregion = _capacity_by_subregion(data)
    for code in SUBREGION_CODES:
        assert by_subregion[code]["district_nursing_acute"] > 0, code
        assert by_subregion[code]["district_nursing"] > 0, code


# --- Totals ---------------------------------------------------------------------------------------


def test_totals_within_domain_ranges(data: Node) -> None:
    totals = _capacity(data)
    elv = sum(totals[t] for t in ELV_TYPES)
    assert 270 <= elv <= 330
    assert 30 <= totals["wlz_crisis"] <= 50
    assert 130 <= totals["grz"] <= 170
    assert 15 <= totals["ggz_crisis"] <= 25
    # ELV mix ≈ 50 % high, 33 % low, 17 % palliative (2018 national mix, docs/domain.md §11).
    assert totals["elv_high"] / elv == pytest.approx(0.50, abs=0.03)
    assert totals["elv_low"] / elv == pytest.approx(0.33, abs=0.03)
    assert totals["elv_palliative"] / elv == pytest.approx(0.17, abs=0.03)


def test_totals_exact(data: Node) -> None:
    assert dict(_capacity(data)) == EXPECTED_CAPACITY
    free: Counter[str] = Counter()
    for _, _, unit in _units(data):
        free[unit["care_type"]] += unit["free"]
    assert dict(free) == EXPECTED_FREE
    by_subregion = _capacity_by_subregion(data)
    assert {code: dict(c) for code, c in by_subregion.items()} == EXPECTED_CAPACITY_BY_SUBREGION


def test_counts_exact(data: Node) -> None:
    locations = [loc for _, loc in _locations(data)]
    units = [unit for _, _, unit in _units(data)]
    elv_locations = {loc["code"] for _, loc, unit in _units(data) if unit["care_type"] in ELV_TYPES}
    assert {
        "organisations": len(_organisations(data)),
        "locations": len(locations),
        "locations_with_units": sum(1 for loc in locations if loc["units"]),
        "elv_locations": len(elv_locations),
        "units": len(units),
        "bed_units_with_free_0": sum(
            1 for u in units if u["care_type"] in BED_TYPES and u["free"] == 0
        ),
    } == EXPECTED_COUNTS


@pytest.mark.parametrize("care_type", ["elv_high", "elv_low", "grz", "wlz_crisis"])
def test_each_subregion_has_core_capacity(data: Node, care_type: str) -> None:
    by_subregion = _capacity_by_subregion(data)
    assert [code for code in SUBREGION_CODES if by_subregion[code][care_type] == 0] == []


# --- Initial free places: a demo where escalation is visible -------------------------------------


def test_leiden_has_little_elv_high_free_but_the_region_has_some(data: Node) -> None:
    free = _free_by_subregion(data, "elv_high")
    assert free == {"den-haag": 2, "zoetermeer": 2, "delft-westland": 3, "leiden": 1, "gouda": 2}
    # Leiden's first escalation step (Den Haag) has a free elv_high bed.
    first = NEIGHBOURS["leiden"][0]
    assert free[first] > 0


def test_den_haag_is_tighter_than_the_rest(data: Node) -> None:
    subregion_of = _subregion_of(data)
    cap: Counter[str] = Counter()
    free: Counter[str] = Counter()
    for _, loc, unit in _units(data):
        if unit["care_type"] in ELV_TYPES:
            key = "den-haag" if subregion_of[loc["municipality"]] == "den-haag" else "rest"
            cap[key] += unit["staffed_capacity"]
            free[key] += unit["free"]
    assert free["den-haag"] / cap["den-haag"] < free["rest"] / cap["rest"]


def test_bed_free_values_are_realistic(data: Node) -> None:
    # Mostly 0-3 free per bed unit; several at 0 so escalation can be demonstrated.
    bed_units = [u for _, _, u in _units(data) if u["care_type"] in BED_TYPES]
    assert max(u["free"] for u in bed_units) <= 3
    assert sum(1 for u in bed_units if u["free"] == 0) >= 10
