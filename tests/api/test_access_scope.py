"""Access scope: KPIs stay within the caller's region (admins excepted); a provider's access to a
placement ends with its involvement (its own decline event excepted); idempotent replays and
stream replays of placement data leave access-log rows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.config import Settings
from app.db import Database, utcnow
from app.enums import OrganisationKind, Role
from app.kpi import formulas as f
from app.realtime.service import latest_id
from app.registry import service as registry_service
from app.registry.models import Region, Subregion
from app.registry.schemas import OrganisationCreate
from tests.api.test_stream import open_stream, serve
from tests.conftest import auth
from tests.factories import ADMIN, Seed, create_placements, placement_body

TODAY = f.local_date(utcnow())
PERIOD = {
    "from": (TODAY - timedelta(days=20)).isoformat(),
    "to": (TODAY + timedelta(days=1)).isoformat(),
}


async def _other_region_keys(db: Database) -> dict[str, str]:
    """A second region (Oost) with a desk whose triagist and analyst hold keys."""
    async with db.sessionmaker() as session:
        region = Region(code="oost", name="ROAZ regio Oost")
        session.add(region)
        await session.flush()
        session.add(Subregion(region_id=region.id, code="zwolle", name="Zwolle"))
        org = await registry_service.create_organisation(
            session,
            ADMIN,
            OrganisationCreate(name="RAP Oost", kind=OrganisationKind.RAP, region_id=region.id),
        )
        keys = {}
        for role in (Role.TRIAGIST, Role.ANALYST):
            issued = await auth_service.issue_key(
                session, ApiKeyCreate(name=f"oost {role}", organisation_id=org.id, roles=[role])
            )
            keys[role.value] = issued.key
        await session.commit()
    return keys


async def test_kpis_are_scoped_to_the_callers_region(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    ready = utcnow() - timedelta(days=3, hours=1)
    await create_placements(
        db, settings, seed, 1, medically_ready_at=ready.isoformat(), subregion="leiden"
    )
    oost = await _other_region_keys(db)
    params = {**PERIOD, "group_by": "hospital"}

    async def wrong_bed(key: str) -> dict[str, Any]:
        r = await client.get("/v1/kpis/wrong-bed-days", params=params, headers=auth(key))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    west, admin = await wrong_bed(seed.keys["triagist"]), await wrong_bed(seed.keys["admin"])
    assert west["total"]["patients"] == admin["total"]["patients"] == 1
    assert [row["patients"] for row in west["rows"]] == [1]
    for role in ("triagist", "analyst"):
        other = await wrong_bed(oost[role])
        assert other["rows"] == [], role
        assert other["total"]["patients"] in (0, None), role
        assert not other["total"]["days"], role
    for path in ("/v1/kpis/lead-times", "/v1/kpis/escalations"):
        west_total = (
            await client.get(path, params=PERIOD, headers=auth(seed.keys["triagist"]))
        ).json()["total"]
        oost_total = (await client.get(path, params=PERIOD, headers=auth(oost["triagist"]))).json()[
            "total"
        ]
        assert west_total["requests"] == 1, path
        assert oost_total["requests"] == 0, path


async def test_a_provider_that_declined_loses_access_when_another_accepts(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.post(
        "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
    )
    pid = r.json()["id"]
    triagist, first, second = seed.keys["triagist"], seed.keys["provider"], seed.other_provider_key
    r = await client.post(
        f"/v1/placements/{pid}/holds",
        json={"unit_id": str(seed.units["leiden-elv-high"])},
        headers=auth(triagist),
    )
    assert r.status_code == 201, r.text
    assert (await client.get(f"/v1/placements/{pid}", headers=auth(first))).status_code == 200
    r = await client.post(
        f"/v1/placements/{pid}/decline", json={"reason": "staff_shortage"}, headers=auth(first)
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"/v1/placements/{pid}/holds",
        json={"unit_id": str(seed.units["den-haag-elv-high"])},
        headers=auth(triagist),
    )
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/placements/{pid}/accept", headers=auth(second))
    assert r.status_code == 200, r.text

    # The accepting provider sees the placement and its whole log.
    assert (await client.get(f"/v1/placements/{pid}", headers=auth(second))).status_code == 200
    events = (await client.get(f"/v1/placements/{pid}/events", headers=auth(second))).json()
    assert len(events["items"]) >= 5
    # The one that declined does not, except its own decline.
    r = await client.get(f"/v1/placements/{pid}", headers=auth(first))
    assert r.status_code == 403, r.text
    r = await client.get(f"/v1/placements/{pid}/events", headers=auth(first))
    assert r.status_code == 200, r.text
    assert [e["type"] for e in r.json()["items"]] == ["offer_declined"]
    assert r.json()["items"][0]["reason"] == "staff_shortage"
    listed = (await client.get("/v1/placements", headers=auth(first))).json()["items"]
    assert pid not in {p["id"] for p in listed}
    listed = (await client.get("/v1/placements", headers=auth(second))).json()["items"]
    assert pid in {p["id"] for p in listed}


async def _audit_rows(db: Database, object_id: str) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT * FROM audit_log WHERE object_id = :o ORDER BY id"), {"o": object_id}
        )
        return [dict(r) for r in rows.mappings()]


async def test_idempotent_replays_of_placement_writes_are_logged(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    body = placement_body()
    headers = auth(seed.keys["referrer"]) | {"Idempotency-Key": "create-1"}
    first = await client.post("/v1/placements", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/v1/placements", json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    pid, key = first.json()["id"], first.json()["patient_key"]
    rows = await _audit_rows(db, pid)
    assert [(r["event_code"], r["action"]) for r in rows] == [
        ("placement.create", "C"),
        ("placement.create_placement", "C"),
    ]
    assert orjson.loads(rows[1]["detail"]) == {"replay": True, "status": 201}
    assert rows[1]["patient_key"] == key
    assert rows[1]["role"] == "referrer"

    hold = {"unit_id": str(seed.units["leiden-elv-high"])}
    headers = auth(seed.keys["triagist"]) | {"Idempotency-Key": "hold-1"}
    for _ in range(2):
        r = await client.post(f"/v1/placements/{pid}/holds", json=hold, headers=headers)
        assert r.status_code == 201, r.text
    assert r.headers.get("Idempotent-Replayed") == "true"
    rows = (await _audit_rows(db, pid))[2:]
    assert [(r["event_code"], orjson.loads(r["detail"]).get("replay")) for r in rows] == [
        ("placement.hold", None),
        ("placement.place_hold", True),
    ]
    assert rows[1]["patient_key"] == key


@pytest.fixture
async def base(app: FastAPI) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


async def test_a_stream_replay_of_placement_events_is_logged(
    base: str, client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    start = await latest_id(db)
    created = await client.post(
        "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
    )
    pid = created.json()["id"]
    before = len(await _audit_rows(db, pid))
    async with contextlib.AsyncExitStack() as stack:
        s = await stack.enter_async_context(
            open_stream(base, seed.keys["triagist"], **{"Last-Event-ID": str(start)})
        )
        frame = await s.event()
    assert orjson.loads(frame["data"])["data"]["placement_id"] == pid
    rows = (await _audit_rows(db, pid))[before:]
    assert [(r["event_code"], r["action"], r["role"]) for r in rows] == [
        ("placement.stream.replay", "R", "triagist")
    ]
    assert rows[0]["patient_key"] == created.json()["patient_key"]
    assert int(frame["id"]) in orjson.loads(rows[0]["detail"])["event_ids"]
