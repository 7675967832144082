"""Holds on units (docs/domain.md §3.1, §12.6): the hot reservation path and the ``held`` count.

A hold is ONE conditional UPDATE ``held = held + 1 WHERE free - held > 0`` on the unit's capacity
row: atomic on PostgreSQL (row lock, re-checked after waiting) and on SQLite (``BEGIN IMMEDIATE``);
never read-then-write, which SQLite would silently let overbook. The path is
hand-written SQL through the engine, not ORM entities, because it is the write hot path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    TextClause,
    TextualSelect,
    Uuid,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.types import TypeEngine

from app.audit import service as audit_service
from app.audit.service import AuditContext, AuditEntry
from app.config import Settings
from app.db import UTCDateTime, driver_args, driver_connection
from app.errors import InvalidInput, NotFound
from app.placement import access, events, task_events
from app.placement.errors import (
    ConcurrentChange,
    ConsentRequired,
    InvalidTransition,
    NoCapacity,
    UnitNotAccepting,
)
from app.placement.schemas import HoldCreate, HoldRead
from app.placement.states import (
    Action,
    EventType,
    IllegalTransition,
    Move,
    State,
    move,
    next_state,
)
from app.placement.suitability import hold_misfits
from app.realtime.outbox import publish
from app.triage.urgency import hold_expiry

_UUID = Uuid()
_TS = UTCDateTime()

# What a hold needs to know of the placement and of the unit (when active), in one read.
_SELECT_PLACEMENT = (
    "SELECT p.state, p.version, p.region_id, p.referrer_organisation_id, p.consent_given_at,"
    " p.urgency_level, p.last_event_at, p.event_seq, p.patient_key, p.care_type, p.sex,"
    " u.unit_org, u.unit_care_type, u.unit_sex_policy"
    " FROM placement p LEFT JOIN (SELECT l.organisation_id AS unit_org,"
    "   unit.care_type AS unit_care_type, unit.sex_policy AS unit_sex_policy"
    "   FROM unit JOIN location l ON l.id = unit.location_id"
    "   WHERE unit.id = :unit_id AND unit.active) u ON true"
    " WHERE p.id = :placement_id"
)
_PLACEMENT_COLUMNS: dict[str, TypeEngine[Any] | type[TypeEngine[Any]]] = {
    "state": String,
    "version": Integer,
    "region_id": _UUID,
    "referrer_organisation_id": _UUID,
    "consent_given_at": _TS,
    "urgency_level": Integer,
    "last_event_at": _TS,
    "event_seq": Integer,
    "patient_key": String,
    "care_type": String,
    "sex": String,
    "unit_org": _UUID,
    "unit_care_type": String,
    "unit_sex_policy": String,
}
_LOAD = (
    text(_SELECT_PLACEMENT)
    .bindparams(bindparam("placement_id", type_=_UUID), bindparam("unit_id", type_=_UUID))
    .columns(**_PLACEMENT_COLUMNS)
)
# A unit closed to admissions (a status reason whose ``closed_until`` has not passed) reserves
# nothing: the status is checked in the reservation statement itself, under the same row lock.
_RESERVE = text(
    "UPDATE unit_capacity SET held = held + 1"
    " WHERE unit_id = :unit_id AND free - held > 0"
    " AND (closed_reason IS NULL OR closed_until <= :now)"
).bindparams(bindparam("unit_id", type_=_UUID), bindparam("now", type_=_TS))
_CLOSURE = (
    text(
        "SELECT closed_reason, closed_detail, closed_until FROM unit_capacity"
        " WHERE unit_id = :unit_id AND closed_reason IS NOT NULL"
        " AND (closed_until IS NULL OR closed_until > :now)"
    )
    .bindparams(bindparam("unit_id", type_=_UUID), bindparam("now", type_=_TS))
    .columns(closed_reason=String, closed_detail=String, closed_until=_TS)
)
_INSERT_HOLD = text(
    "INSERT INTO placement_hold (id, placement_id, unit_id, organisation_id, status, created_at,"
    " expires_at) VALUES (:id, :placement_id, :unit_id, :org, 'active', :now, :expires_at)"
).bindparams(
    bindparam("id", type_=_UUID),
    bindparam("placement_id", type_=_UUID),
    bindparam("unit_id", type_=_UUID),
    bindparam("org", type_=_UUID),
    bindparam("now", type_=_TS),
    bindparam("expires_at", type_=_TS),
)


def _sql_states(states: Iterable[State]) -> str:
    """``'a', 'b'``: states as SQL string literals. ``State(...)`` refuses anything that is not
    a state's name, so nothing else reaches the SQL text."""
    names = [State(s).value for s in states]
    if not names:
        raise ValueError("not state names: none given")
    return ", ".join(f"'{n}'" for n in names)


def offer_statements(hold: Move) -> tuple[TextClause, TextualSelect]:
    """The hold's state change, generated from the state table's ``hold`` move (``states.move``):
    ``SET state`` is its target and ``WHERE state IN (...)`` lists exactly its source states, so
    the SQL has no copy of the transition of its own. Returns the two forms:

    - the single conditional UPDATE (SQLite, after ``_LOAD``), guarded by the version read;
    - PostgreSQL's load + offer in one statement: a data-modifying CTE reads the placement (as
      ``_LOAD`` does) and, in the same statement, moves it when every check the caller makes
      afterwards can pass (version, state, consent, active unit). A data-modifying CTE sees its
      statement's snapshot, so ``p`` holds the values from before the update, which the caller
      needs for its errors and the transfer event; when a check then fails in Python, the caller
      raises and its transaction rolls back. SQLite has no data-modifying CTEs.
    """
    target, sources = _sql_states([hold.target]), _sql_states(hold.sources)
    offer = text(
        f"UPDATE placement SET state = {target}, version = version + 1,"  # noqa: S608 - no input
        " event_seq = event_seq + 1, current_hold_id = :hold_id, last_event_at = :at,"
        " updated_at = :now"
        f" WHERE id = :placement_id AND version = :version AND state IN ({sources})"
    ).bindparams(
        bindparam("hold_id", type_=_UUID),
        bindparam("at", type_=_TS),
        bindparam("now", type_=_TS),
        bindparam("placement_id", type_=_UUID),
    )
    load_offer = (
        text(
            f"WITH p AS ({_SELECT_PLACEMENT}),"  # noqa: S608 - module constants, no input
            f" o AS (UPDATE placement SET state = {target}, version = placement.version + 1,"
            " event_seq = placement.event_seq + 1, current_hold_id = :hold_id,"
            " last_event_at = greatest(CASE WHEN CAST(:given AS timestamptz) IS NULL"
            " THEN greatest(:now, p.last_event_at) ELSE :given END, p.last_event_at),"
            " updated_at = :now"
            " FROM p WHERE placement.id = :placement_id AND placement.version = p.version"
            f" AND placement.state IN ({sources}) AND p.state IN ({sources})"
            " AND p.consent_given_at IS NOT NULL AND p.unit_org IS NOT NULL"
            " RETURNING placement.id)"
            " SELECT p.*, (SELECT count(*) FROM o) AS moved FROM p"
        )
        .bindparams(
            bindparam("placement_id", type_=_UUID),
            bindparam("unit_id", type_=_UUID),
            bindparam("hold_id", type_=_UUID),
            bindparam("given", type_=_TS),
            bindparam("now", type_=_TS),
        )
        .columns(**_PLACEMENT_COLUMNS, moved=Integer)
    )
    return offer, load_offer


_HOLD = move(Action.HOLD)
_OFFER, _LOAD_OFFER = offer_statements(_HOLD)
# PostgreSQL: the conditional reservation and the hold insert as one statement (the four
# statements SQLite runs take two there): no row reserved, no hold inserted.
_RESERVE_HOLD = text(
    "WITH r AS (UPDATE unit_capacity SET held = held + 1"
    " WHERE unit_id = :unit_id AND free - held > 0"
    " AND (closed_reason IS NULL OR closed_until <= :now) RETURNING unit_id)"
    " INSERT INTO placement_hold (id, placement_id, unit_id, organisation_id, status, created_at,"
    " expires_at) SELECT :id, :placement_id, r.unit_id, :org, 'active', :now, :expires_at FROM r"
).bindparams(
    bindparam("id", type_=_UUID),
    bindparam("placement_id", type_=_UUID),
    bindparam("unit_id", type_=_UUID),
    bindparam("org", type_=_UUID),
    bindparam("now", type_=_TS),
    bindparam("expires_at", type_=_TS),
)
_RELEASE = text(
    "UPDATE placement_hold SET status = :status, released_at = :now, release_reason = :reason"
    " WHERE id = :hold_id AND status = 'active'"
).bindparams(bindparam("now", type_=_TS), bindparam("hold_id", type_=_UUID))
_UNHOLD = text(
    "UPDATE unit_capacity SET held = held - 1 WHERE unit_id = :unit_id AND held > 0"
).bindparams(bindparam("unit_id", type_=_UUID))
# An admitted patient stays counted until a report taken after the arrival (docs/domain.md §3.1); a
# report already taken at or after the (clinical) arrival time counted the patient itself.
_ADMIT_UNHOLD = text(
    "UPDATE unit_capacity SET held = held - 1"
    " WHERE unit_id = :unit_id AND held > 0 AND reported_at IS NOT NULL"
    " AND reported_at >= :admitted_at"
).bindparams(bindparam("unit_id", type_=_UUID), bindparam("admitted_at", type_=_TS))
_RECOUNT = text(
    "SELECT (SELECT count(*) FROM placement_hold WHERE unit_id = :unit_id AND status = 'active')"
    " + (SELECT count(*) FROM placement_hold WHERE unit_id = :unit_id AND status = 'admitted'"
    "    AND admitted_at > :reported_at)"
).bindparams(bindparam("unit_id", type_=_UUID), bindparam("reported_at", type_=_TS))


def _driver_args(conn: AsyncConnection, stmt: Any, params: dict[str, Any]) -> list[Any]:
    args = driver_args(conn, stmt, params)
    if args is None:  # both statements take exactly the values given
        raise RuntimeError("the hold's statements must run on the driver")
    return args


async def place_hold(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: HoldCreate,
    *,
    now: datetime,
    settings: Settings,
) -> HoldRead:
    """Reserve one place on ``body.unit_id`` for the placement: triaged -> offered (§12.6, §13).

    409 ``unit-not-accepting`` when the unit is closed to admissions, ``no-capacity`` when it has
    no place left; the caller's transaction then rolls back.
    """
    conn = await session.connection()
    # PostgreSQL runs the hold in two statements (its data-modifying CTEs), SQLite in four.
    postgresql = conn.dialect.name == "postgresql"
    hold_id = uuid.uuid4()
    if postgresql:
        params = {
            "placement_id": placement_id,
            "unit_id": body.unit_id,
            "hold_id": hold_id,
            "given": body.occurred_at,
            "now": now,
        }
        # Straight to the driver (``app.db.driver_args``): the hold is the write hot path.
        driver = await driver_connection(conn)
        p = await driver.fetchrow(*_driver_args(conn, _LOAD_OFFER, params))
    else:
        params = {"placement_id": placement_id, "unit_id": body.unit_id}
        p = (await conn.execute(_LOAD, params)).mappings().first()
    if p is None:
        raise NotFound(f"No placement {placement_id}.")
    access.require_manage(ctx.principal, p["referrer_organisation_id"], p["region_id"])
    try:
        after = next_state(State(p["state"]), Action.HOLD)
    except IllegalTransition as exc:
        raise InvalidTransition.of(exc) from None
    if p["consent_given_at"] is None:
        raise ConsentRequired(
            "The patient's consent to share with follow-up care is not recorded; post a "
            "consent_given event first (docs/domain.md §10)."
        )
    if p["unit_org"] is None:
        raise UnknownUnit(
            f"Unit {body.unit_id} does not exist or is deactivated.",
            errors=[{"pointer": "#/unit_id", "detail": "unknown or inactive unit"}],
        )
    misfits = hold_misfits(
        care_type=p["care_type"],
        sex=p["sex"],
        unit_care_type=p["unit_care_type"],
        unit_sex_policy=p["unit_sex_policy"],
    )
    if misfits:
        raise InvalidInput(
            f"Unit {body.unit_id} cannot take this patient: {'; '.join(misfits)}.",
            errors=[{"pointer": "#/unit_id", "detail": misfit} for misfit in misfits],
        )
    at = events.occurred_at(
        body.occurred_at,
        now=now,
        previous=p["last_event_at"],
        skew=timedelta(seconds=settings.clock_skew_seconds),
    )
    if postgresql:
        moved = p["moved"]
    else:
        offered = await conn.execute(
            _OFFER,
            {
                "hold_id": hold_id,
                "at": max(at, p["last_event_at"]),
                "now": now,
                "placement_id": placement_id,
                "version": p["version"],
            },
        )
        moved = offered.rowcount
    if moved != 1:
        raise ConcurrentChange("The placement changed while the hold was placed; read it again.")
    expires_at = now + hold_expiry(p["urgency_level"])
    hold = {
        "id": hold_id,
        "placement_id": placement_id,
        "unit_id": body.unit_id,
        "org": p["unit_org"],
        "now": now,
        "expires_at": expires_at,
    }
    if postgresql:
        status = await driver.execute(*_driver_args(conn, _RESERVE_HOLD, hold))
        reserved = 1 if status == "INSERT 0 1" else 0
    else:
        reserved = (await conn.execute(_RESERVE, {"unit_id": body.unit_id, "now": now})).rowcount
    if reserved != 1:
        # Only a refused hold reads why: the closure or, failing that, no place left.
        closure = (await conn.execute(_CLOSURE, {"unit_id": body.unit_id, "now": now})).first()
        if closure is not None:
            raise _not_accepting(
                body.unit_id, closure.closed_reason, closure.closed_detail, closure.closed_until
            )
        raise NoCapacity(
            f"Unit {body.unit_id} is full: no place is left to hold.",
            extra={"unit_id": str(body.unit_id)},
        )
    if not postgresql:
        await conn.execute(_INSERT_HOLD, hold)
    await events.append(
        conn,
        placement_id=placement_id,
        seq=p["event_seq"] + 1,
        event_type=EventType.OFFER_SENT,
        occurred_at=at,
        recorded_at=now,
        actor_key_id=ctx.principal.key_id,
        actor_organisation_id=ctx.principal.organisation_id,
        from_state=p["state"],
        to_state=after,
        unit_id=body.unit_id,
        hold_id=hold_id,
        payload={"expires_at": expires_at},
    )
    await publish(
        session,
        topic="placement",
        event_type="placement.offer_sent",
        payload={
            "placement_id": placement_id,
            "state": after,
            "event": EventType.OFFER_SENT,
            "seq": p["event_seq"] + 1,
            "unit_id": body.unit_id,
            "hold_id": hold_id,
            "expires_at": expires_at,
        },
        region_id=p["region_id"],
        organisation_ids=[p["referrer_organisation_id"], p["unit_org"]],
    )
    await task_events.notify(
        session,
        hold_id=hold_id,
        created=True,
        public_url=settings.public_url,
        region_id=p["region_id"],
        organisation_ids=[p["referrer_organisation_id"], p["unit_org"]],
    )
    await audit_service.append(
        session,
        ctx,
        [
            AuditEntry(
                event_code="placement.hold",
                action="U",
                object_id=str(placement_id),
                patient_key=p["patient_key"],
                detail={"unit_id": body.unit_id, "hold_id": hold_id},
            )
        ],
        now=now,
    )
    return HoldRead(
        id=hold_id,
        placement_id=placement_id,
        unit_id=body.unit_id,
        organisation_id=p["unit_org"],
        status="active",
        created_at=now,
        expires_at=expires_at,
    )


class UnknownUnit(InvalidInput):
    """The unit is not an active unit of this instance (it may be a partner region's)."""


def _not_accepting(
    unit_id: uuid.UUID, reason: str, detail: str | None, until: datetime | None
) -> UnitNotAccepting:
    when = "until reopened by its provider" if until is None else f"until {until.isoformat()}"
    because = reason if detail is None else f"{reason}: {detail}"
    return UnitNotAccepting(
        f"Unit {unit_id} takes no admissions ({because}), {when}.",
        extra={
            "unit_id": str(unit_id),
            "reason": reason,
            "reason_detail": detail,
            "until": None if until is None else until.isoformat(),
        },
    )


async def release(
    conn: AsyncConnection,
    hold_id: uuid.UUID,
    unit_id: uuid.UUID,
    *,
    status: str,
    reason: str,
    now: datetime,
) -> bool:
    """End an active hold (declined, expired, cancelled) and give its place back."""
    done = await conn.execute(
        _RELEASE, {"status": status, "now": now, "reason": reason, "hold_id": hold_id}
    )
    if done.rowcount != 1:
        return False
    await conn.execute(_UNHOLD, {"unit_id": unit_id})
    return True


async def admitted(conn: AsyncConnection, unit_id: uuid.UUID, admitted_at: datetime) -> None:
    """Adjust ``held`` for a hold that just became admitted at ``admitted_at``."""
    await conn.execute(_ADMIT_UNHOLD, {"unit_id": unit_id, "admitted_at": admitted_at})


async def recount_held_many(
    session: AsyncSession, reported_at: dict[uuid.UUID, datetime]
) -> dict[uuid.UUID, int]:
    """``recount_held`` for many units at once (each with its own report time), in two queries
    per thousand units instead of one per unit."""
    from app.placement.models import PlacementHold

    held = dict.fromkeys(reported_at, 0)
    if not reported_at:
        return held
    ids = list(reported_at)
    earliest = min(reported_at.values())
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        active = await session.execute(
            select(PlacementHold.unit_id, func.count())
            .where(PlacementHold.unit_id.in_(chunk), PlacementHold.status == "active")
            .group_by(PlacementHold.unit_id)
        )
        for unit_id, count in active.all():
            held[unit_id] += int(count)
        admitted = await session.execute(
            select(PlacementHold.unit_id, PlacementHold.admitted_at).where(
                PlacementHold.unit_id.in_(chunk),
                PlacementHold.status == "admitted",
                PlacementHold.admitted_at > earliest,
            )
        )
        for unit_id, admitted_at in admitted.all():
            if admitted_at is not None and admitted_at > reported_at[unit_id]:
                held[unit_id] += 1
    return held


async def recount_held(session: AsyncSession, unit_id: uuid.UUID, reported_at: datetime) -> int:
    """``held`` as docs/domain.md §3.1 defines it for a report taken at ``reported_at``: active
    holds
    plus holds admitted after that report."""
    conn = await session.connection()
    value = (
        await conn.execute(_RECOUNT, {"unit_id": unit_id, "reported_at": reported_at})
    ).scalar()
    return int(value or 0)
