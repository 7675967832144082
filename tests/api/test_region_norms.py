"""The region's own "between the cracks" norms (docs/domain.md §6.9): set by the region file's
``region.norm_hours`` through the import, shown by GET /v1/regions, refused when out of range
or of an unknown care type, and used by GET /v1/kpis/between-the-cracks per placement's region
(care types left out keep the default)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select

from app.db import Database, utcnow
from app.kpi import formulas as f
from app.kpi.formulas import CARE_TYPE_NORM_HOURS
from app.registry.models import Region, RegionNorm
from tests.api.test_region_import import admin_key, example
from tests.conftest import auth
from tests.factories import Seed, placement_body
from tests.helpers import assert_problem, pointers

TODAY = f.local_date(utcnow())
PERIOD = {
    "from": (TODAY - timedelta(days=5)).isoformat(),
    "to": (TODAY + timedelta(days=1)).isoformat(),
}


def with_norms(norms: Any) -> dict[str, Any]:
    data = example()
    data["region"]["norm_hours"] = norms
    return data


async def test_the_region_file_sets_the_norms(client: httpx.AsyncClient, db: Database) -> None:
    admin = auth(await admin_key(db))
    r = await client.post("/v1/regions/import", json=with_norms({"elv_high": 12}), headers=admin)
    assert r.status_code == 200, r.text
    regions = (await client.get("/v1/regions", headers=admin)).json()
    assert [x["norm_hours"] for x in regions] == [{"elv_high": 12}]

    # The same file again changes nothing; other norms are an update of the region.
    r = await client.post("/v1/regions/import", json=with_norms({"elv_high": 12}), headers=admin)
    assert r.json()["regions"]["counts"]["unchanged"] == 1
    changed = with_norms({"grz": 48, "elv_high": 6})
    r = await client.post("/v1/regions/import", json=changed, headers=admin)
    assert r.json()["regions"]["updated"] == [{"code": "zeeland-example", "fields": ["norm_hours"]}]
    regions = (await client.get("/v1/regions", headers=admin)).json()
    assert regions[0]["norm_hours"] == {"elv_high": 6, "grz": 48}
    # A file without norm_hours leaves them; {} goes back to the defaults.
    r = await client.post("/v1/regions/import", json=example(), headers=admin)
    assert r.json()["regions"]["counts"]["unchanged"] == 1
    r = await client.post("/v1/regions/import", json=with_norms({}), headers=admin)
    assert r.json()["regions"]["updated"][0]["fields"] == ["norm_hours"]
    assert (await client.get("/v1/regions", headers=admin)).json()[0]["norm_hours"] == {}

    for bad, where in (({"elv_high": 0}, "elv_high"), ({"nursing_home": 12}, "nursing_home")):
        refused = await client.post("/v1/regions/import", json=with_norms(bad), headers=admin)
        found = pointers(assert_problem(refused, 422))
        assert any("norm_hours" in p and where in p for p in found), found
    async with db.read() as conn:
        assert (await conn.execute(select(RegionNorm))).all() == []


async def _refer(client: httpx.AsyncClient, seed: Seed, hours_ago: float) -> None:
    at = utcnow() - timedelta(hours=hours_ago)
    body = placement_body(
        care_type="elv_high",
        occurred_at=at.isoformat(),
        consent_given_at=(at - timedelta(minutes=1)).isoformat(),
    )
    r = await client.post("/v1/placements", json=body, headers=auth(seed.keys["referrer"]))
    assert r.status_code == 201, r.text


async def _answer(client: httpx.AsyncClient, seed: Seed) -> dict[str, Any]:
    r = await client.get(
        "/v1/kpis/between-the-cracks",
        params={**PERIOD, "group_by": "care_type"},
        headers=auth(seed.keys["triagist"]),
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def _over_norm(client: httpx.AsyncClient, seed: Seed) -> tuple[int, int]:
    total = (await _answer(client, seed))["total"]
    return total["requests"], total["over_norm"]


async def test_the_kpi_uses_the_region_norm(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    for hours_ago in (30, 5, 1):  # open requests of ELV high complexity
        await _refer(client, seed, hours_ago)
    assert await _over_norm(client, seed) == (3, 1)  # the default norm: 24 h

    async with db.sessionmaker() as session:
        region = await session.scalar(select(Region.id).where(Region.code == "west"))
        assert region is not None
        session.add(RegionNorm(region_id=region, care_type="elv_high", hours=4))
        session.add(RegionNorm(region_id=region, care_type="grz", hours=1))
        await session.commit()
    assert await _over_norm(client, seed) == (3, 2)  # the region's 4 h
    # The answer names the norms it counted against: the region's own over the defaults.
    norms = (await _answer(client, seed))["norms_hours"]
    assert (norms["elv_high"], norms["grz"]) == (4, 1)
    assert norms["elv_low"] == CARE_TYPE_NORM_HOURS["elv_low"]  # not set by the region

    async with db.sessionmaker() as session:
        await session.execute(delete(RegionNorm).where(RegionNorm.care_type == "elv_high"))
        await session.commit()
    assert await _over_norm(client, seed) == (3, 1)  # grz alone does not touch elv_high
