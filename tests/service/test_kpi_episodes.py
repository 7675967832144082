"""The KPI summaries (app.kpi.episodes) the services keep with each write equal a rebuild from
the logs: placement first-event times (first by ``seq``, so back-dated events and
ready -> revoked -> ready do not move them), escalation level, expired holds, and the capacity
census days. The property tests (test_kpi_sql_properties) check both paths against the
reference on random logs; these tests check that every service write path keeps them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, text

from app.db import Database, utcnow
from app.kpi import episodes
from app.kpi.models import KpiCapacityDay, KpiPlacementDecline, KpiReadyInterval
from app.placement import sweeper
from app.placement.models import Placement
from tests.conftest import auth
from tests.factories import Seed, placement_body

Snapshot = tuple[
    dict[uuid.UUID, tuple[Any, ...]],
    list[tuple[Any, ...]],
    list[tuple[Any, ...]],
    list[tuple[Any, ...]],
]
COLUMNS = [
    "kpi_requested_at",
    "kpi_triaged_at",
    "kpi_accepted_at",
    "kpi_ready_at",
    "kpi_cancelled_at",
    "kpi_escalated",
    "kpi_expired_holds",
]


async def snapshot(db: Database) -> Snapshot:
    async with db.engine.connect() as conn:
        placements = {
            r[0]: tuple(r[1:])
            for r in await conn.execute(
                select(Placement.id, *[getattr(Placement, c) for c in COLUMNS])
            )
        }
        declines = sorted(
            tuple(r)
            for r in await conn.execute(
                select(
                    KpiPlacementDecline.placement_id,
                    KpiPlacementDecline.reason,
                    KpiPlacementDecline.declines,
                )
            )
        )
        days = sorted(
            tuple(r)
            for r in await conn.execute(
                select(
                    KpiCapacityDay.unit_id,
                    KpiCapacityDay.day_no,
                    KpiCapacityDay.report_id,
                    KpiCapacityDay.reported_at,
                    KpiCapacityDay.free,
                )
            )
        )
        intervals = sorted(
            tuple(r)
            for r in await conn.execute(
                select(
                    KpiReadyInterval.placement_id,
                    KpiReadyInterval.start_seq,
                    KpiReadyInterval.start_at,
                    KpiReadyInterval.start_day,
                    KpiReadyInterval.start_year,
                    KpiReadyInterval.end_at,
                    KpiReadyInterval.end_day,
                    KpiReadyInterval.end_kind,
                    KpiReadyInterval.backdated,
                )
            )
        )
    return placements, declines, days, intervals


async def rebuilt(db: Database) -> Snapshot:
    async with db.engine.begin() as conn:
        await episodes.rebuild(conn)
    return await snapshot(db)


async def ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def iso(t: datetime) -> str:
    return t.isoformat()


async def test_service_writes_keep_the_kpi_summaries_equal_to_a_rebuild(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    ref, tri, prov = seed.keys["referrer"], seed.keys["triagist"], seed.keys["provider"]
    unit = seed.units["leiden-elv-high"]
    now = utcnow()
    t0 = now - timedelta(hours=10)

    # A: request back-dated to t0, ready reported at create for t0 + 1 h (after the triage in
    # the log: no event is dated before the previous one); then revoked and ready again.
    a = await ok(
        await client.post(
            "/v1/placements",
            json=placement_body(
                occurred_at=iso(t0), medically_ready_at=iso(t0 + timedelta(hours=1))
            ),
            headers=auth(ref),
        )
    )
    events = f"/v1/placements/{a['id']}/events"
    for kind, at in (("ready_revoked", 80), ("medically_ready", 100)):
        body = {"type": kind, "occurred_at": iso(t0 + timedelta(minutes=at))}
        await ok(await client.post(events, json=body, headers=auth(ref)))
    for level in ("region", "national"):
        body = {"type": "escalated", "level": level, "reason": "none free"}
        await ok(await client.post(events, json=body, headers=auth(ref)))
    holds = f"/v1/placements/{a['id']}/holds"
    await ok(await client.post(holds, json={"unit_id": str(unit)}, headers=auth(tri)))
    await ok(
        await client.post(
            f"/v1/placements/{a['id']}/decline",
            json={"reason": "staff_shortage"},
            headers=auth(prov),
        ),
        200,
    )
    await ok(await client.post(holds, json={"unit_id": str(unit)}, headers=auth(tri)))
    await ok(
        await client.post(f"/v1/placements/{a['id']}/accept", json={}, headers=auth(prov)), 200
    )
    await ok(await client.post(f"/v1/placements/{a['id']}/admit", json={}, headers=auth(prov)), 200)

    # B: a hold that expires and an automatic escalation (the sweeper's writes).
    b = await ok(await client.post("/v1/placements", json=placement_body(), headers=auth(ref)))
    await ok(
        await client.post(
            f"/v1/placements/{b['id']}/holds", json={"unit_id": str(unit)}, headers=auth(tri)
        )
    )
    result = await sweeper.sweep(db, now=utcnow() + timedelta(minutes=31))
    assert result.model_dump() == {"expired_holds": 1, "escalated": 1, "unowned_overdue": 0}

    # C: requested without triage, ready, moved to another hospital (a hospital-to-hospital
    # transfer ends the interval), ready there, then cancelled (died: ends the second interval
    # by death).
    c = await ok(
        await client.post("/v1/placements", json=placement_body(triage=None), headers=auth(ref))
    )
    c_events = f"/v1/placements/{c['id']}/events"
    for kind in ("medically_ready", "hospital_admitted", "medically_ready"):
        await ok(await client.post(c_events, json={"type": kind}, headers=auth(ref)))
    await ok(
        await client.post(
            f"/v1/placements/{c['id']}/cancel", json={"reason": "died"}, headers=auth(ref)
        ),
        200,
    )

    # Capacity: single reports and a bulk one (the census day keeps the latest).
    for free in (3, 2):
        r = await client.put(f"/v1/units/{unit}/capacity", json={"free": free}, headers=auth(prov))
        await ok(r, 200)
    bulk = [{"unit_id": str(unit), "free": 4}]
    await ok(await client.post("/v1/capacity-reports", json=bulk, headers=auth(prov)))

    kept = await snapshot(db)
    placements, declines, days, intervals = kept
    pa = placements[uuid.UUID(a["id"])]
    assert pa[0] == t0
    assert pa[2] is not None
    assert pa[3] == t0 + timedelta(hours=1)  # the first ready, not the second
    assert pa[5:] == (2, 0)
    assert placements[uuid.UUID(b["id"])][5:] == (1, 1)
    pc = placements[uuid.UUID(c["id"])]
    assert pc[1] is None
    assert pc[4] is not None
    assert declines == [(uuid.UUID(a["id"]), "staff_shortage", 1)]
    ends = sorted((r[0] == uuid.UUID(a["id"]), r[7]) for r in intervals)
    # A: ready -> revoked -> ready -> admitted at the provider; C: h2h transfer, then death.
    assert ends == [
        (False, "died"),
        (False, "hospital_transfer"),
        (True, "revoked"),
        (True, "transferred"),
    ]
    a_first = next(r for r in intervals if r[0] == uuid.UUID(a["id"]) and r[7] == "revoked")
    assert a_first[2] == t0 + timedelta(hours=1)
    assert a_first[5] == t0 + timedelta(minutes=80)
    assert days
    assert kept == await rebuilt(db)


async def test_a_rebuild_replaces_whatever_the_summaries_held(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    ref = seed.keys["referrer"]
    await ok(await client.post("/v1/placements", json=placement_body(), headers=auth(ref)))
    kept = await snapshot(db)
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE placement SET kpi_escalated = 2, kpi_expired_holds = 7, kpi_ready_at = NULL"
            )
        )
    assert await rebuilt(db) == kept
