"""A refused hold leaves nothing behind (app/placement/holds.py).

On PostgreSQL the hold path moves the placement to ``offered`` in the same statement that loads it
and checks the rest afterwards, relying on the rollback of the request's transaction; these tests
pin that every refusal after that statement leaves the placement, the unit's ``held``, the holds,
the transfer log and the outbox untouched, on both databases.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text

from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, SexPolicy
from tests.conftest import auth
from tests.factories import Seed, add_unit, create_placements


async def _snapshot(db: Database, pid: uuid.UUID, unit: uuid.UUID) -> dict[str, Any]:
    sqlite = db.dialect == "sqlite"
    p, u = (pid.hex, unit.hex) if sqlite else (pid, unit)
    queries = {
        "placement": "SELECT state, version, event_seq, last_event_at, current_hold_id"
        " FROM placement WHERE id = :p",
        "held": "SELECT held FROM unit_capacity WHERE unit_id = :u",
        "holds": "SELECT count(*) FROM placement_hold WHERE placement_id = :p",
        "events": "SELECT count(*) FROM transfer_event WHERE placement_id = :p",
        "outbox": "SELECT count(*) FROM outbox_event",
    }
    async with db.engine.connect() as conn:
        return {
            name: tuple((await conn.execute(text(sql), {"p": p, "u": u})).one())
            for name, sql in queries.items()
        }


async def test_refused_holds_change_nothing(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    unit = await add_unit(
        db, settings, seed.locations["leiden"], name="Unit", care_type=CareType.ELV_HIGH, free=1
    )
    full = await add_unit(
        db, settings, seed.locations["leiden"], name="Full", care_type=CareType.ELV_HIGH, free=0
    )
    men = await add_unit(
        db,
        settings,
        seed.locations["leiden"],
        name="Men",
        care_type=CareType.ELV_HIGH,
        free=1,
        sex_policy=SexPolicy.MALE,
    )
    (pid,) = await create_placements(db, settings, seed, 1)  # a woman, triaged for elv_high
    path = f"/v1/placements/{pid}/holds"
    triagist = auth(seed.keys["triagist"])
    before = await _snapshot(db, pid, unit)
    before_full = await _snapshot(db, pid, full)
    unsuitable = {u: await _snapshot(db, pid, u) for u in (men, seed.units["leiden-grz"])}

    # Not a case owner: 403.
    r = await client.post(path, json={"unit_id": str(unit)}, headers=auth(seed.other_provider_key))
    assert r.status_code == 403, r.text
    # occurred_at before the placement's previous event: 422.
    past = (utcnow() - timedelta(days=2)).isoformat()
    r = await client.post(path, json={"unit_id": str(unit), "occurred_at": past}, headers=triagist)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"] == "#/occurred_at"
    # occurred_at in the future: 422.
    future = (utcnow() + timedelta(hours=2)).isoformat()
    r = await client.post(
        path, json={"unit_id": str(unit), "occurred_at": future}, headers=triagist
    )
    assert r.status_code == 422, r.text
    # Unknown unit: 422.
    r = await client.post(path, json={"unit_id": str(uuid.uuid4())}, headers=triagist)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"] == "#/unit_id"
    # A unit that cannot take her (men's rooms; another care type than triaged): 422.
    for other, detail in [
        (men, "the unit's rooms are for male patients, the patient is female"),
        (seed.units["leiden-grz"], "the unit offers grz, the placement was triaged for elv_high"),
    ]:
        r = await client.post(path, json={"unit_id": str(other)}, headers=triagist)
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [{"pointer": "#/unit_id", "detail": detail}]
        assert await _snapshot(db, pid, other) == unsuitable[other]
    # No place left: 409 no-capacity, and the placement stays triaged.
    r = await client.post(path, json={"unit_id": str(full)}, headers=triagist)
    assert r.status_code == 409, r.text
    assert r.json()["type"] == "/problems/no-capacity"

    assert await _snapshot(db, pid, unit) == before
    assert await _snapshot(db, pid, full) == before_full

    # And the placement can still be held: exactly one place, one event, two outbox rows more
    # (placement.offer_sent and the new Task's task.requested).
    r = await client.post(path, json={"unit_id": str(unit)}, headers=triagist)
    assert r.status_code == 201, r.text
    after = await _snapshot(db, pid, unit)
    assert after["placement"][0] == "offered"
    assert after["placement"][1:3] == (before["placement"][1] + 1, before["placement"][2] + 1)
    assert after["held"] == (before["held"][0] + 1,)
    assert after["holds"] == (1,)
    assert after["events"] == (before["events"][0] + 1,)
    assert after["outbox"] == (before["outbox"][0] + 2,)
    # A second hold on the same placement: illegal transition, nothing more reserved.
    r = await client.post(path, json={"unit_id": str(unit)}, headers=triagist)
    assert r.status_code == 409, r.text
    assert await _snapshot(db, pid, unit) == after
