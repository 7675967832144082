"""Shortage moments: a hold refused for no capacity and a search without result are recorded as
they happen and counted by GET /v1/kpis/shortage per day, care type and subregion
(docs/domain.md §6.10)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType
from app.kpi import formulas as f
from app.kpi.models import ShortageEvent
from tests.conftest import auth
from tests.factories import Seed, add_unit, placement_body
from tests.helpers import assert_problem, pointers

TODAY = f.local_date(utcnow())
PERIOD = {"from": TODAY.isoformat(), "to": (TODAY + timedelta(days=1)).isoformat()}


async def _count(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(ShortageEvent))).scalar_one()
        )


async def test_refused_holds_and_empty_searches_are_counted(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    full = await add_unit(
        db, settings, seed.locations["leiden"], name="Vol", care_type=CareType.GRZ, free=0
    )
    r = await client.post(
        "/v1/placements",
        json=placement_body(
            care_type="grz",
            subregion="leiden",
            triage={"care_type": "grz", "rule_set": "west-2026.1"},
        ),
        headers=auth(seed.keys["referrer"]),
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert await _count(db) == 0
    refused = await client.post(
        f"/v1/placements/{pid}/holds",
        json={"unit_id": str(full)},
        headers=auth(seed.keys["triagist"]),
    )
    assert_problem(refused, 409)
    assert await _count(db) == 1
    # a search that finds something records nothing; one that finds nothing records its types
    found = await client.get(
        "/v1/availability",
        params={"care_type": "elv_high", "subregion": "leiden"},
        headers=auth(seed.keys["triagist"]),
    )
    assert found.status_code == 200, found.text
    assert found.json()["count"] > 0
    assert await _count(db) == 1
    empty = await client.get(
        "/v1/availability",
        params={"care_type": ["observation", "respite"], "subregion": "leiden"},
        headers=auth(seed.keys["triagist"]),
    )
    assert empty.status_code == 200, empty.text
    assert empty.json()["count"] == 0
    assert await _count(db) == 3

    r = await client.get("/v1/kpis/shortage", params=PERIOD, headers=auth(seed.keys["analyst"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kpi"] == "shortage"
    assert [
        (x["day"], x["care_type"], x["subregion"], x["holds_refused"], x["searches_empty"])
        for x in body["rows"]
    ] == [
        (TODAY.isoformat(), "grz", "leiden", 1, 0),
        (TODAY.isoformat(), "observation", "leiden", 0, 1),
        (TODAY.isoformat(), "respite", "leiden", 0, 1),
    ]
    assert body["total"] == {"holds_refused": 1, "searches_empty": 2}

    as_csv = await client.get(
        "/v1/kpis/shortage",
        params={**PERIOD, "care_type": "grz"},
        headers={**auth(seed.keys["triagist"]), "Accept": "text/csv"},
    )
    lines = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(x["line"], x["care_type"], x["holds_refused"]) for x in lines] == [
        ("row", "grz", "1"),
        ("total", "", "1"),
    ]
    other = await client.get(
        "/v1/kpis/shortage",
        params={**PERIOD, "subregion": "gouda"},
        headers=auth(seed.keys["triagist"]),
    )
    assert other.json()["rows"] == []
    assert "query:subregion" in pointers(
        assert_problem(
            await client.get(
                "/v1/kpis/shortage",
                params={**PERIOD, "subregion": "nowhere"},
                headers=auth(seed.keys["triagist"]),
            ),
            422,
        )
    )
    assert_problem(
        await client.get("/v1/kpis/shortage", params=PERIOD, headers=auth(seed.keys["provider"])),
        403,
    )
