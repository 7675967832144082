"""100 concurrent holds on a unit with 3 free places: exactly 3 succeed."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
from sqlalchemy import text

from app.config import Settings
from app.db import Database
from app.enums import CareType
from tests.conftest import auth
from tests.factories import Seed, add_unit, create_placements


async def _count(db: Database, sql: str, unit_id: uuid.UUID) -> int:
    async with db.engine.connect() as conn:
        value = (
            await conn.execute(text(sql), {"u": unit_id.hex if db.dialect == "sqlite" else unit_id})
        ).scalar()
    return int(value or 0)


async def test_100_concurrent_holds_on_3_free_places(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    unit = await add_unit(
        db, settings, seed.locations["leiden"], name="Hot unit", care_type=CareType.ELV_HIGH, free=3
    )
    placements = await create_placements(db, settings, seed, 100)
    headers = auth(seed.keys["triagist"])

    async def hold(pid: uuid.UUID) -> httpx.Response:
        return await client.post(
            f"/v1/placements/{pid}/holds", json={"unit_id": str(unit)}, headers=headers
        )

    responses = await asyncio.gather(*(hold(pid) for pid in placements))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 3, 409: 97}, statuses
    refusals = [r.json() for r in responses if r.status_code == 409]
    assert {p["type"] for p in refusals} == {"/problems/no-capacity"}
    assert all("full" in p["detail"] for p in refusals)
    assert all(
        r.headers["content-type"] == "application/problem+json"
        for r in responses
        if r.status_code == 409
    )
    assert await _count(db, "SELECT held FROM unit_capacity WHERE unit_id = :u", unit) == 3
    active = "SELECT count(*) FROM placement_hold WHERE unit_id = :u AND status = 'active'"
    assert await _count(db, active, unit) == 3
    offered = (
        "SELECT count(*) FROM placement WHERE state = 'offered' AND current_hold_id IN "
        "(SELECT id FROM placement_hold WHERE unit_id = :u)"
    )
    assert await _count(db, offered, unit) == 3
    events = "SELECT count(*) FROM transfer_event WHERE event_type = 'offer_sent' AND unit_id = :u"
    assert await _count(db, events, unit) == 3
