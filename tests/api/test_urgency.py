"""GET /v1/urgency/map and /v1/urgency/convert: the uniform urgency language (docs/domain.md §7)."""

from __future__ import annotations

import httpx
import pytest

from app.triage.urgency import from_unified, to_unified, urgency_map
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers

pytestmark = pytest.mark.usefixtures("app")


async def test_map_lists_levels_and_every_system(client: httpx.AsyncClient, seed: Seed) -> None:
    for role in ("provider", "referrer", "triagist", "analyst", "admin"):
        r = await client.get("/v1/urgency/map", headers=auth(seed.keys[role]))
        assert r.status_code == 200, r.text
    body = r.json()
    assert [level["level"] for level in body["levels"]] == [0, 1, 2, 3, 4, 5]
    assert body["levels"][4]["meaning_en"] == "within 24 hours"
    systems = {s["id"]: s for s in body["systems"]}
    assert list(systems) == [s.id for s in urgency_map().systems]
    assert set(systems) == {"nts", "mts", "ambulance", "ambulance_legacy", "ggz", "vvt"}
    red = next(c for c in systems["mts"]["codes"] if c["code"] == "red")
    assert red == {
        "code": "red",
        "level": 0,
        "covers": [0, 1],
        "meaning_nl": "rood, direct naar de arts",
        "meaning_en": "red, to the doctor immediately",
    }
    assert [c["code"] for c in systems["nts"]["codes"]] == ["U0", "U1", "U2", "U3", "U4", "U5"]
    assert systems["ambulance"]["source"].startswith("https://")
    assert_problem(await client.get("/v1/urgency/map"), 401)


@pytest.mark.parametrize(
    ("system", "code", "level"),
    [("nts", "U3", 3), ("mts", "orange", 2), ("ambulance", "A2", 2), ("ggz", "24h", 4)],
)
async def test_native_code_converts_to_its_unified_level(
    client: httpx.AsyncClient, seed: Seed, system: str, code: str, level: int
) -> None:
    r = await client.get(
        "/v1/urgency/convert",
        params={"system": system, "code": code},
        headers=auth(seed.keys["referrer"]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["system"] == system
    assert body["level"] == level == to_unified(system, code).level
    assert body["meaning_en"] == urgency_map().levels[level].meaning_en
    assert [c["code"] for c in body["codes"]] == [code]


@pytest.mark.parametrize(
    ("system", "level", "codes"),
    [
        ("ambulance", 2, ["A1", "A2"]),
        ("mts", 1, ["red"]),
        ("ambulance_legacy", 1, ["A1"]),
        ("ggz", 0, []),  # the GGZ scale has no code for resuscitation
    ],
)
async def test_unified_level_converts_to_the_native_codes_spanning_it(
    client: httpx.AsyncClient, seed: Seed, system: str, level: int, codes: list[str]
) -> None:
    r = await client.get(
        "/v1/urgency/convert",
        params={"system": system, "level": level},
        headers=auth(seed.keys["provider"]),
    )
    assert r.status_code == 200, r.text
    assert [c["code"] for c in r.json()["codes"]] == codes == from_unified(level, system)
    assert r.json()["level"] == level


async def test_unknown_code_is_a_422_naming_system_and_valid_codes(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.get(
        "/v1/urgency/convert",
        params={"system": "mts", "code": "purple"},
        headers=auth(seed.keys["triagist"]),
    )
    problem = assert_problem(r, 422, type_slug="validation")
    assert pointers(problem) == ["query:code"]
    assert problem["system"] == "mts"
    assert problem["valid_codes"] == ["red", "orange", "yellow", "green", "blue"]
    assert "purple" in problem["detail"]


async def test_unknown_system_is_a_422_naming_the_valid_ones(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    for params in ({"system": "esi", "code": "1"}, {"system": "esi", "level": "1"}):
        r = await client.get(
            "/v1/urgency/convert", params=params, headers=auth(seed.keys["triagist"])
        )
        problem = assert_problem(r, 422, type_slug="validation")
        assert pointers(problem) == ["query:system"]
        assert problem["valid_systems"] == [s.id for s in urgency_map().systems]


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"system": "nts"}, "query:code"),
        ({"system": "nts", "code": "U1", "level": "1"}, "query:level"),
        ({"system": "nts", "level": "6"}, "query:level"),
        ({"system": "nts", "level": "high"}, "query:level"),
        ({"code": "U1"}, "query:system"),
        ({"system": "n" * 31, "code": "U1"}, "query:system"),
    ],
)
async def test_malformed_conversion_query_is_a_422(
    client: httpx.AsyncClient, seed: Seed, params: dict[str, str], pointer: str
) -> None:
    r = await client.get("/v1/urgency/convert", params=params, headers=auth(seed.keys["admin"]))
    problem = assert_problem(r, 422, type_slug="validation")
    assert pointers(problem) == [pointer]
