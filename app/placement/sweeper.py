"""Background sweep (docs/domain.md §8, §12.6): release expired holds, auto-escalate overdue
placements. The loop that runs it (app/flows/background.py) also reopens units whose closure
ended and purges idempotency records past their retention.

Expiry and escalation deadlines are columns, so the sweep is stateless: any instance may run it,
after a restart too, and two instances racing are safe (each change is version-checked). Tests call
``sweep(db, now=...)`` directly; the app runs it in a loop from its lifespan
(``app.flows.background.sweeper_running``).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from app.db import Database
from app.placement import holds, ownership
from app.placement.errors import ConcurrentChange
from app.placement.models import Placement, PlacementHold
from app.placement.schemas import EscalationLevel, SweepResult
from app.placement.service import _transition, unowned_overdue_clause
from app.placement.states import FINAL, Action, State
from app.realtime.outbox import publish
from app.triage.urgency import escalation_window

log = structlog.get_logger("juisteplek.sweeper")
BATCH = 200


async def expire_hold(
    db: Database, hold_id: uuid.UUID, *, now: datetime, public_url: str | None = None
) -> bool:
    """Release one hold nobody accepted before ``expires_at``: offered -> triaged, hold_expired."""
    async with db.sessionmaker() as session:
        hold = await session.get(PlacementHold, hold_id)
        if hold is None or hold.status != "active" or hold.accepted_at is not None:
            return False
        if hold.expires_at > now:
            return False
        p = await session.get(Placement, hold.placement_id)
        if p is None or p.state != State.OFFERED or p.current_hold_id != hold.id:
            return False
        conn = await session.connection()
        if not await holds.release(
            conn, hold.id, hold.unit_id, status="expired", reason="expired", now=now
        ):
            return False
        hold.status = "expired"
        hold.released_at = now
        hold.release_reason = "expired"
        p.current_hold_id = None
        # The clinical time of an expiry is the deadline itself, whenever the sweep ran.
        at = max(hold.expires_at, p.last_event_at)
        await _transition(
            session,
            None,
            p,
            Action.EXPIRE,
            at=at,
            now=now,
            hold=hold,
            reason="expired",
            payload={"expires_at": hold.expires_at},
            public_url=public_url,
        )
        await session.commit()
        return True


async def escalate(db: Database, placement_id: uuid.UUID, *, now: datetime) -> bool:
    """No acceptance within the window of §8: escalate from subregion to region (auto only)."""
    async with db.sessionmaker() as session:
        p = await session.get(Placement, placement_id)
        if (
            p is None
            or p.escalation_due_at is None
            or p.escalation_due_at > now
            or p.state not in (State.TRIAGED, State.OFFERED)
        ):
            return False
        due = p.escalation_due_at
        p.escalation_level = EscalationLevel.REGION.value
        p.escalation_due_at = None
        window = escalation_window(p.urgency_level)
        await _transition(
            session,
            None,
            p,
            Action.ESCALATE,
            at=max(due, p.last_event_at),
            now=now,
            level=EscalationLevel.REGION.value,
            reason="no_acceptance_within_window",
            payload={
                "window_minutes": int(window.total_seconds() // 60),
                "urgency_level": p.urgency_level,
                "automatic": True,
            },
        )
        await session.commit()
        return True


async def announce_unowned(db: Database, placement_id: uuid.UUID, *, now: datetime) -> bool:
    """Publish ``placement.unowned_overdue`` once for an open case nobody has taken in time
    (docs/domain.md §15.1). A stream and webhook message only: the transfer log is unchanged."""
    async with db.sessionmaker() as session:
        p = await session.get(Placement, placement_id)
        if p is None or p.unowned_alerted_at is not None:
            return False
        overdue = ownership.unowned_overdue(
            has_owner=p.owner_since is not None,
            is_open=State(p.state) not in FINAL,
            created_at=p.created_at,
            urgency_level=p.urgency_level,
            now=now,
        )
        if not overdue:
            return False
        p.unowned_alerted_at = now
        await session.flush()  # version-checked: a concurrent take or sweep wins
        deadline = ownership.unowned_deadline(p.created_at, p.urgency_level)
        await publish(
            session,
            topic="placement",
            event_type="placement.unowned_overdue",
            payload={
                "placement_id": p.id,
                "state": p.state,
                "event": "unowned_overdue",
                "care_type": p.care_type,
                "urgency_level": p.urgency_level,
                "overdue_since": deadline,
            },
            region_id=p.region_id,
            organisation_ids=[p.referrer_organisation_id],
        )
        await session.commit()
        return True


async def sweep(db: Database, *, now: datetime, public_url: str | None = None) -> SweepResult:
    """One pass: every hold expired at ``now`` and every placement overdue at ``now``."""
    expired = escalated = 0
    while True:
        async with db.read() as conn:
            hold_ids = (
                await conn.scalars(
                    select(PlacementHold.id)
                    .where(
                        PlacementHold.status == "active",
                        PlacementHold.accepted_at.is_(None),
                        PlacementHold.expires_at <= now,
                    )
                    .order_by(PlacementHold.expires_at)
                    .limit(BATCH)
                )
            ).all()
        done = 0
        for hold_id in hold_ids:
            with contextlib.suppress(ConcurrentChange):
                done += await expire_hold(db, hold_id, now=now, public_url=public_url)
        expired += done
        if len(hold_ids) < BATCH or done == 0:
            break
    while True:
        async with db.read() as conn:
            due_ids = (
                await conn.scalars(
                    select(Placement.id)
                    .where(
                        Placement.escalation_due_at <= now,
                        Placement.state.in_([State.TRIAGED.value, State.OFFERED.value]),
                    )
                    .order_by(Placement.escalation_due_at)
                    .limit(BATCH)
                )
            ).all()
        done = 0
        for placement_id in due_ids:
            with contextlib.suppress(ConcurrentChange):
                done += await escalate(db, placement_id, now=now)
        escalated += done
        if len(due_ids) < BATCH or done == 0:
            break
    unowned = 0
    while True:
        async with db.read() as conn:
            unowned_ids = (
                await conn.scalars(
                    select(Placement.id)
                    .where(unowned_overdue_clause(now), Placement.unowned_alerted_at.is_(None))
                    .order_by(Placement.created_at)
                    .limit(BATCH)
                )
            ).all()
        done = 0
        for placement_id in unowned_ids:
            with contextlib.suppress(ConcurrentChange, StaleDataError):
                done += await announce_unowned(db, placement_id, now=now)
        unowned += done
        if len(unowned_ids) < BATCH or done == 0:
            break
    return SweepResult(expired_holds=expired, escalated=escalated, unowned_overdue=unowned)
