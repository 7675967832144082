"""A unit's admission status: closed for a while (reason, detail, expected end) or accepting.

Every change is an append-only ``unit_status`` row (the history); the current status is copied
onto the unit's ``unit_capacity`` row in the same transaction, under the row lock that orders
reports and holds, so the hold refuses a closed unit in its one reservation statement. A closed
unit reopens by itself at ``until``: the status is derived from the time, so nothing has to
run for that; the sweep (``reopen_due``) only records the reopening and announces it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.capacity.models import UnitCapacity, UnitStatus
from app.capacity.schemas import UnitStatusCurrent, UnitStatusIn, UnitStatusRead
from app.db import Database
from app.enums import NotAcceptingReason, Role, is_closed
from app.errors import Conflict, InvalidInput
from app.pagination import Keyset
from app.principal import Principal
from app.realtime.outbox import publish
from app.registry.service import unit_with_location

STATUS_EVENT = "unit.status_changed"


def status_errors(body: UnitStatusIn, now: datetime) -> list[dict[str, str]]:
    """What is wrong with a status change, one entry per field (empty when it is valid)."""
    errors = []
    if body.accepting:
        for name in ("reason", "until"):
            if getattr(body, name) is not None:
                errors.append({"pointer": f"#/{name}", "detail": "only for accepting: false"})
        return errors
    if body.reason is None:
        errors.append({"pointer": "#/reason", "detail": "required when accepting is false"})
    elif body.reason == NotAcceptingReason.OTHER and not (body.detail or "").strip():
        errors.append({"pointer": "#/detail", "detail": "required when reason is 'other'"})
    if body.until is not None and body.until <= now:
        errors.append({"pointer": "#/until", "detail": "must lie in the future"})
    return errors


def current(state: UnitCapacity | None, unit_id: uuid.UUID, now: datetime) -> UnitStatusCurrent:
    reason = None if state is None else state.closed_reason
    if state is None or reason is None or not is_closed(reason, state.closed_until, now):
        return UnitStatusCurrent(
            unit_id=unit_id,
            accepting=True,
            not_accepting_reason=None,
            not_accepting_detail=None,
            not_accepting_until=None,
            changed_at=None if state is None else state.status_changed_at,
        )
    return UnitStatusCurrent(
        unit_id=unit_id,
        accepting=False,
        not_accepting_reason=NotAcceptingReason(reason),
        not_accepting_detail=state.closed_detail,
        not_accepting_until=state.closed_until,
        changed_at=state.status_changed_at,
    )


def _read(row: UnitStatus) -> UnitStatusRead:
    return UnitStatusRead.model_validate(row, from_attributes=True)


async def set_status(
    session: AsyncSession,
    principal: Principal,
    unit_id: uuid.UUID,
    body: UnitStatusIn,
    *,
    now: datetime,
) -> UnitStatusCurrent:
    """Close a unit to admissions or reopen it: a provider for its own organisation's units,
    or an admin. The change is appended to the history and published (stream and webhooks)."""
    principal.require(Role.PROVIDER)
    unit, location = await unit_with_location(session, unit_id)
    principal.require_organisation(location.organisation_id, "the status")
    if not unit.active:
        raise Conflict(f"Unit {unit_id} is deactivated; reactivate it before changing its status.")
    errors = status_errors(body, now)
    if errors:
        raise InvalidInput(
            "Status refused: " + "; ".join(f"{e['pointer']} {e['detail']}" for e in errors),
            errors=errors,
        )
    # The row lock orders this change with the unit's reports and holds (SQLite: BEGIN IMMEDIATE).
    state = await session.scalar(
        select(UnitCapacity).where(UnitCapacity.unit_id == unit_id).with_for_update()
    )
    if state is None:
        state = UnitCapacity(unit_id=unit_id, free=0, held=0)
        session.add(state)
    detail = body.detail.strip() if body.detail and body.detail.strip() else None
    row = UnitStatus(
        unit_id=unit_id,
        accepting=body.accepting,
        reason=None if body.accepting else body.reason,
        detail=detail,
        until=None if body.accepting else body.until,
        changed_at=now,
        changed_by_key_id=principal.key_id,
    )
    session.add(row)
    state.closed_reason = row.reason
    state.closed_detail = None if body.accepting else detail
    state.closed_until = row.until
    state.status_changed_at = now
    await session.flush()
    result = current(state, unit_id, now)
    await publish(
        session,
        topic="capacity",
        event_type=STATUS_EVENT,
        payload={
            **result.model_dump(mode="json"),
            "care_type": unit.care_type,
            "location_id": str(location.id),
            "organisation_id": str(location.organisation_id),
            "subregion_id": str(location.subregion_id),
        },
        organisation_ids=[location.organisation_id],
    )
    return result


async def get_status(session: AsyncSession, unit_id: uuid.UUID, now: datetime) -> UnitStatusCurrent:
    await unit_with_location(session, unit_id)
    state = await session.get(UnitCapacity, unit_id)
    return current(state, unit_id, now)


async def status_history(
    session: AsyncSession, unit_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[UnitStatusRead], str | None]:
    """The unit's status changes, newest first."""
    await unit_with_location(session, unit_id)
    stmt: Any = select(UnitStatus).where(UnitStatus.unit_id == unit_id)
    rows, nxt = await Keyset(UnitStatus.id, descending=True).scalars(session, stmt, cursor, limit)
    return [_read(r) for r in rows], nxt


async def reopen_due(db: Database, *, now: datetime, batch: int = 200) -> int:
    """Record the reopening of every unit whose closure ended at its ``until`` by ``now``.

    The unit is open from ``until`` on whether or not this runs (the status is derived from the
    time); this appends the ``accepting`` row at ``until`` to the history and publishes
    ``unit.status_changed`` so the stream and webhooks hear of it. Safe to run on several app
    instances at once: each unit is re-checked under its row lock."""
    done = 0
    while True:
        async with db.read() as conn:
            due = (
                await conn.scalars(
                    select(UnitCapacity.unit_id)
                    .where(
                        UnitCapacity.closed_reason.is_not(None),
                        UnitCapacity.closed_until <= now,
                    )
                    .order_by(UnitCapacity.closed_until)
                    .limit(batch)
                )
            ).all()
        reopened = 0
        for unit_id in due:
            reopened += await _reopen(db, unit_id, now=now)
        done += reopened
        if len(due) < batch or reopened == 0:
            return done


async def _reopen(db: Database, unit_id: uuid.UUID, *, now: datetime) -> bool:
    async with db.sessionmaker() as session:
        state = await session.scalar(
            select(UnitCapacity).where(UnitCapacity.unit_id == unit_id).with_for_update()
        )
        if (
            state is None
            or state.closed_reason is None
            or state.closed_until is None
            or state.closed_until > now
        ):
            return False
        unit, location = await unit_with_location(session, unit_id)
        at = state.closed_until
        session.add(
            UnitStatus(unit_id=unit_id, accepting=True, changed_at=at, changed_by_key_id=None)
        )
        state.closed_reason = state.closed_detail = state.closed_until = None
        state.status_changed_at = at
        await session.flush()
        result = current(state, unit_id, now)
        await publish(
            session,
            topic="capacity",
            event_type=STATUS_EVENT,
            payload={
                **result.model_dump(mode="json"),
                "automatic": True,
                "care_type": unit.care_type,
                "location_id": str(location.id),
                "organisation_id": str(location.organisation_id),
                "subregion_id": str(location.subregion_id),
            },
            organisation_ids=[location.organisation_id],
        )
        await session.commit()
        return True
