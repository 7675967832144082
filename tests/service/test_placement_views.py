"""The placement pages' reads: queue, archive, detail with timeline; every read logged."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.audit.service import AuditContext
from app.auth.service import KeyResolver
from app.config import Settings
from app.db import Database, utcnow
from app.errors import Forbidden, NotFound
from app.placement import service as placement_service
from app.placement import views
from app.placement.schemas import CancelIn, DeclineIn, HoldCreate, PlacementCreate
from app.placement.states import State
from tests.factories import GRZ, Seed, create_placements, placement_body


async def ctx_of(db: Database, key: str) -> AuditContext:
    principal = await KeyResolver(db, ttl=0).resolve(f"Bearer {key}")
    return AuditContext(principal=principal, access_point="127.0.0.1")


async def audit_rows(db: Database, event_code: str) -> list[AuditLog]:
    async with db.sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(AuditLog).where(AuditLog.event_code == event_code).order_by(AuditLog.id)
                )
            ).all()
        )


async def hold(db: Database, settings: Settings, seed: Seed, pid: uuid.UUID, unit: str) -> None:
    ctx = await ctx_of(db, seed.keys["triagist"])
    async with db.sessionmaker() as session:
        await placement_service.place_hold(
            session, ctx, pid, HoldCreate(unit_id=seed.units[unit]), now=utcnow(), settings=settings
        )
        await session.commit()


async def test_queue_columns_visibility_search_and_access_log(
    db: Database, settings: Settings, seed: Seed
) -> None:
    ready = (utcnow() - timedelta(days=2)).isoformat()
    urgent, old, offered = await create_placements(db, settings, seed, 3, **GRZ)
    referrer = await ctx_of(db, seed.keys["referrer"])
    async with db.sessionmaker() as session:
        body = PlacementCreate.model_validate(
            placement_body(patient_identifier="999990123", triage=None, medically_ready_at=ready)
        )
        requested = (
            await placement_service.create_placement(
                session, referrer, body, now=utcnow(), settings=settings
            )
        ).id
        await session.commit()
    await hold(db, settings, seed, offered, "leiden-grz")

    triagist = await ctx_of(db, seed.keys["triagist"])
    async with db.sessionmaker() as session:
        queue = await views.placement_queue(session, triagist, now=utcnow(), settings=settings)
    cols = queue.columns
    assert list(cols) == [State.REQUESTED, State.TRIAGED, State.OFFERED, State.ACCEPTED]
    assert [i.id for i in cols[State.REQUESTED]] == [requested]
    assert {i.id for i in cols[State.TRIAGED]} == {urgent, old}
    (o,) = cols[State.OFFERED]
    assert o.id == offered
    assert o.hold_unit_name == "GRZ Leiden"
    assert o.hold_organisation_name == "Topaz"
    assert o.hold_seconds_left is not None
    assert 0 < o.hold_seconds_left <= 30 * 60
    (r,) = cols[State.REQUESTED]
    assert r.waiting_minutes >= 2 * 24 * 60 - 1  # since medically ready, not since referral
    assert r.referrer_name == "LUMC"
    logged = await audit_rows(db, "placement.queue")
    assert sorted(row.object_id or "" for row in logged) == sorted(
        str(x) for x in (urgent, old, offered, requested)
    )
    assert {row.user_display for row in logged} == {"test triagist"}
    assert all(row.patient_key for row in logged)

    # the patient's identifier finds it through its key; the identifier is not logged
    async with db.sessionmaker() as session:
        found = await views.placement_queue(
            session, triagist, now=utcnow(), settings=settings, search="999990123"
        )
    assert [i.id for c in found.columns.values() for i in c] == [requested]
    async with db.sessionmaker() as session:
        by_org = await views.placement_queue(
            session, triagist, now=utcnow(), settings=settings, search="lum"
        )
    assert by_org.total == 4

    # a provider sees only the placement with a hold on its units
    provider = await ctx_of(db, seed.keys["provider"])
    async with db.sessionmaker() as session:
        theirs = await views.placement_queue(session, provider, now=utcnow(), settings=settings)
    assert [i.id for c in theirs.columns.values() for i in c] == [offered]
    other = await ctx_of(db, seed.other_provider_key)
    async with db.sessionmaker() as session:
        none = await views.placement_queue(session, other, now=utcnow(), settings=settings)
    assert none.total == 0
    analyst = await ctx_of(db, seed.keys["analyst"])
    async with db.sessionmaker() as session:
        with pytest.raises(Forbidden):
            await views.placement_queue(session, analyst, now=utcnow(), settings=settings)


async def test_archive_and_detail_timeline(db: Database, settings: Settings, seed: Seed) -> None:
    (pid, other) = await create_placements(db, settings, seed, 2, **GRZ)
    await hold(db, settings, seed, pid, "leiden-grz")
    provider = await ctx_of(db, seed.keys["provider"])
    async with db.sessionmaker() as session:
        await placement_service.decline(
            session,
            provider,
            pid,
            DeclineIn(reason="staff_shortage"),
            now=utcnow(),
            settings=settings,
        )
        await session.commit()
    triagist = await ctx_of(db, seed.keys["triagist"])
    async with db.sessionmaker() as session:
        await placement_service.cancel(
            session, triagist, other, CancelIn(reason="recovered"), now=utcnow(), settings=settings
        )
        await session.commit()

    async with db.sessionmaker() as session:
        archived, nxt = await views.placement_archive(
            session, triagist, now=utcnow(), settings=settings
        )
    assert [i.id for i in archived] == [other]
    assert nxt is None
    assert archived[0].state is State.CANCELLED
    assert archived[0].ended_at is not None

    detail = await views.placement_detail(db, triagist, pid, now=utcnow())
    assert detail.placement.state is State.TRIAGED
    assert [t.event.type for t in detail.timeline] == [
        "request_created",
        "triaged",
        "offer_sent",
        "offer_declined",
    ]
    declined = detail.timeline[-1]
    assert declined.unit_name == "GRZ Leiden"
    assert declined.event.reason == "staff_shortage"
    assert declined.actor_organisation_name == "Topaz"
    assert [(h.status, name) for h, name in detail.holds] == [("declined", "GRZ Leiden")]
    assert detail.can_manage
    assert not detail.is_receiver
    assert detail.hold is None
    (row,) = await audit_rows(db, "placement.page")
    assert (row.object_id, row.action, row.outcome) == (str(pid), "R", "success")

    # the provider that declined may still see it; another provider gets 403, logged
    await views.placement_detail(db, provider, pid, now=utcnow())
    outsider = await ctx_of(db, seed.other_provider_key)
    with pytest.raises(Forbidden):
        await views.placement_detail(db, outsider, pid, now=utcnow())
    denied = [r for r in await audit_rows(db, "placement.page") if r.outcome == "failure"]
    assert [(r.object_id, r.user_display) for r in denied] == [(str(pid), "other provider")]
    assert denied[0].patient_key == row.patient_key
    with pytest.raises(NotFound):
        await views.placement_detail(db, triagist, uuid.uuid4(), now=utcnow())
