"""What the placement pages show: the queue, the archive, one placement with its transfer log.

Every read of placement data writes its NEN 7513 access-log rows (one per placement shown, naming
the person through the audit context) and commits them before anything is returned. A refused read
(403) is logged in its own transaction, because the caller's rolls back.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.audit import service as audit_service
from app.audit.service import AuditContext, AuditEntry
from app.config import Settings
from app.db import Database
from app.enums import CareType, Feature, codes_of
from app.errors import Forbidden, NotFound
from app.pagination import Keyset
from app.placement import access, ownership
from app.placement.models import Placement, PlacementHold, TransferEvent
from app.placement.queue_rules import (
    ENDED_STATES,
    OPEN_STATES,
    by_owner_attention,
    columns,
    minutes_between,
    seconds_left,
    waiting_since,
)
from app.placement.schemas import HoldRead, OwnerRead, PlacementRead, TransferEventRead
from app.placement.service import (
    _visible,
    event_read,
    hold_read,
    owner_read,
    patient_key,
    placement_read,
)
from app.placement.states import FINAL, State
from app.registry.models import Location, Organisation, Subregion, Unit

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class QueueItem:
    id: uuid.UUID
    state: State
    urgency_level: int
    urgency_system: str
    urgency_code: str
    care_type: str
    target_group: str
    sex: str
    birth_year: int
    origin_setting: str
    features: list[Feature]
    patient_key: str
    referrer_organisation_id: uuid.UUID
    referrer_name: str
    subregion_name: str | None
    created_at: datetime
    updated_at: datetime
    medically_ready_at: datetime | None
    waiting_since: datetime
    waiting_minutes: int
    escalation_level: str
    hold_unit_id: uuid.UUID | None
    hold_unit_name: str | None
    hold_organisation_name: str | None
    hold_expires_at: datetime | None
    hold_seconds_left: int | None
    ended_at: datetime | None
    owner: OwnerRead | None = None
    unowned_overdue: bool = False


@dataclass(frozen=True)
class Queue:
    columns: dict[State, list[QueueItem]]
    total: int
    search: str | None
    generated_at: datetime


_HoldUnit = aliased(Unit)
_HoldLocation = aliased(Location)
_HoldOrg = aliased(Organisation)


def _base(ctx: AuditContext) -> Select[Any]:
    stmt = cast(
        "Select[Any]",
        select(
            Placement,
            Organisation.name.label("referrer_name"),
            Subregion.name.label("subregion_name"),
            PlacementHold.expires_at.label("hold_expires_at"),
            PlacementHold.status.label("hold_status"),
            _HoldUnit.id.label("hold_unit_id"),
            _HoldUnit.name.label("hold_unit_name"),
            _HoldOrg.name.label("hold_organisation_name"),
        )
        .join(Organisation, Organisation.id == Placement.referrer_organisation_id)
        .outerjoin(Subregion, Subregion.id == Placement.subregion_id)
        .outerjoin(PlacementHold, PlacementHold.id == Placement.current_hold_id)
        .outerjoin(_HoldUnit, _HoldUnit.id == PlacementHold.unit_id)
        .outerjoin(_HoldLocation, _HoldLocation.id == _HoldUnit.location_id)
        .outerjoin(_HoldOrg, _HoldOrg.id == _HoldLocation.organisation_id),
    )
    return _visible(stmt, ctx)


def _search(stmt: Select[Any], text: str | None, settings: Settings) -> Select[Any]:
    """A placement id, a patient key, the patient's identifier (matched through its key, never
    stored), a care type or a part of the referrer's name."""
    if text is None or not text.strip():
        return stmt
    t = text.strip()
    try:
        return stmt.where(Placement.id == uuid.UUID(t))
    except ValueError:
        pass
    if _HEX64.match(t):
        return stmt.where(Placement.patient_key == t)
    ors = [func.lower(Organisation.name).contains(t.lower(), autoescape=True)]
    if t in {c.value for c in CareType}:
        ors.append(Placement.care_type == t)
    if _IDENTIFIER.match(t):
        ors.append(
            Placement.patient_key == patient_key(t, settings.patient_key_secret.get_secret_value())
        )
    return stmt.where(or_(*ors))


def _item(row: Any, now: datetime) -> QueueItem:
    p: Placement = row.Placement
    since = waiting_since(p.medically_ready_at, p.created_at)
    state = State(p.state)
    ended = p.transferred_at if state is State.TRANSFERRED else p.cancelled_at
    active_hold = row.hold_status == "active"
    owner = owner_read(p)
    return QueueItem(
        id=p.id,
        state=state,
        urgency_level=p.urgency_level,
        urgency_system=p.urgency_system,
        urgency_code=p.urgency_code,
        care_type=p.care_type,
        target_group=p.target_group,
        sex=p.sex,
        birth_year=p.birth_year,
        origin_setting=p.origin_setting,
        features=codes_of(p.feature_mask, Feature),
        patient_key=p.patient_key,
        referrer_organisation_id=p.referrer_organisation_id,
        referrer_name=row.referrer_name,
        subregion_name=row.subregion_name,
        created_at=p.created_at,
        updated_at=p.updated_at,
        medically_ready_at=p.medically_ready_at,
        waiting_since=since,
        waiting_minutes=minutes_between(since, ended or now),
        escalation_level=p.escalation_level,
        hold_unit_id=row.hold_unit_id,
        hold_unit_name=row.hold_unit_name,
        hold_organisation_name=row.hold_organisation_name,
        hold_expires_at=row.hold_expires_at if active_hold and state is State.OFFERED else None,
        hold_seconds_left=(
            seconds_left(row.hold_expires_at, now)
            if active_hold and state is State.OFFERED
            else None
        ),
        ended_at=ended,
        owner=owner,
        unowned_overdue=ownership.unowned_overdue(
            has_owner=owner is not None,
            is_open=state not in FINAL,
            created_at=p.created_at,
            urgency_level=p.urgency_level,
            now=now,
        ),
    )


async def _log_shown(
    session: AsyncSession,
    ctx: AuditContext,
    event_code: str,
    items: Sequence[QueueItem],
    detail: dict[str, Any],
    now: datetime,
) -> None:
    entries = [
        AuditEntry(
            event_code=event_code,
            action="E",
            object_id=str(i.id),
            patient_key=i.patient_key,
            detail=detail,
        )
        for i in items
    ] or [AuditEntry(event_code=event_code, action="E", detail=detail | {"returned": 0})]
    await audit_service.append(session, ctx, entries, now=now)
    await session.commit()


async def placement_queue(
    session: AsyncSession,
    ctx: AuditContext,
    *,
    now: datetime,
    settings: Settings,
    search: str | None = None,
    limit: int = 500,
) -> Queue:
    """Open placements the person may see (triagist: its region; referrer: its own), one column
    per state, most urgent and longest waiting first; each one shown is logged."""
    stmt = _search(_base(ctx), search, settings).where(
        Placement.state.in_([s.value for s in OPEN_STATES])
    )
    rows = (await session.execute(stmt.order_by(Placement.created_at).limit(limit))).all()
    items = [_item(r, now) for r in rows]
    await _log_shown(
        session, ctx, "placement.queue", items, {"search": search} if search else {}, now
    )
    return Queue(columns=columns(items), total=len(items), search=search, generated_at=now)


BOARD_CASES = 20  # open cases listed on the board; the queue has them all


@dataclass(frozen=True)
class OpenCases:
    """The board's panel of open cases with their owners (docs/board-and-placements.md)."""

    items: list[QueueItem]
    total: int
    unowned: int
    unowned_overdue: int
    generated_at: datetime


async def open_cases(
    session: AsyncSession, ctx: AuditContext, *, now: datetime, limit: int = BOARD_CASES
) -> OpenCases:
    """Open placements the person may see, those nobody has owned for too long first
    (``by_owner_attention``), at most ``limit``; each one shown is logged (``placement.board``),
    the counts cover them all."""
    stmt = _base(ctx).where(Placement.state.in_([s.value for s in OPEN_STATES]))
    rows = (await session.execute(stmt.order_by(Placement.created_at).limit(500))).all()
    items = by_owner_attention(_item(r, now) for r in rows)
    shown = items[:limit]
    await _log_shown(session, ctx, "placement.board", shown, {"listed": len(items)}, now)
    return OpenCases(
        items=shown,
        total=len(items),
        unowned=sum(1 for i in items if i.owner is None),
        unowned_overdue=sum(1 for i in items if i.unowned_overdue),
        generated_at=now,
    )


async def placement_archive(
    session: AsyncSession,
    ctx: AuditContext,
    *,
    now: datetime,
    settings: Settings,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[QueueItem], str | None]:
    """Ended placements (transferred, cancelled), most recently changed first; logged."""
    stmt = _search(_base(ctx), search, settings).where(
        Placement.state.in_([s.value for s in ENDED_STATES])
    )
    order = Keyset(Placement.updated_at, Placement.id, descending=True)
    shown, nxt = await order.rows(session, stmt, cursor, limit, lambda row: row.Placement)
    items = [_item(r, now) for r in shown]
    await _log_shown(
        session,
        ctx,
        "placement.archive",
        items,
        {"search": search} if search else {},
        now,
    )
    return items, nxt


@dataclass(frozen=True)
class TimelineEntry:
    event: TransferEventRead
    unit_name: str | None
    actor_organisation_name: str | None


@dataclass(frozen=True)
class PlacementDetail:
    placement: PlacementRead
    referrer_name: str
    subregion_name: str | None
    waiting_since: datetime
    waiting_minutes: int
    hold: HoldRead | None
    hold_unit_name: str | None
    hold_organisation_name: str | None
    hold_seconds_left: int | None
    holds: list[tuple[HoldRead, str]]  # every hold with its unit's name, oldest first
    timeline: list[TimelineEntry]
    can_manage: bool
    is_receiver: bool


async def _names(
    session: AsyncSession, unit_ids: set[uuid.UUID], org_ids: set[uuid.UUID]
) -> tuple[dict[uuid.UUID, tuple[str, str]], dict[uuid.UUID, str]]:
    units: dict[uuid.UUID, tuple[str, str]] = {}
    orgs: dict[uuid.UUID, str] = {}
    if unit_ids:
        rows = await session.execute(
            select(Unit.id, Unit.name, Organisation.name.label("org"))
            .join(Location, Location.id == Unit.location_id)
            .join(Organisation, Organisation.id == Location.organisation_id)
            .where(Unit.id.in_(unit_ids))
        )
        units = {r.id: (r.name, r.org) for r in rows}
    if org_ids:
        rows = await session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(org_ids))
        )
        orgs = {r.id: r.name for r in rows}
    return units, orgs


def _unit(units: dict[uuid.UUID, tuple[str, str]], unit_id: uuid.UUID) -> tuple[str, str]:
    return units.get(unit_id, (str(unit_id), ""))


async def placement_detail(
    db: Database, ctx: AuditContext, placement_id: uuid.UUID, *, now: datetime
) -> PlacementDetail:
    """One placement, its holds and its transfer log as a timeline; the read is logged (R).

    Raises 404 for an unknown placement and 403 (logged as a failed read) for a person who may
    not see it."""
    async with db.sessionmaker() as session:
        p = await session.get(Placement, placement_id)
        if p is None:
            raise NotFound(f"No placement {placement_id}.")
        hold_rows = (
            await session.scalars(
                select(PlacementHold)
                .where(PlacementHold.placement_id == placement_id)
                .order_by(PlacementHold.created_at)
            )
        ).all()
        try:
            access.require_view(
                ctx.principal,
                p.referrer_organisation_id,
                p.region_id,
                [access.HoldFact(h.id, h.organisation_id, h.status) for h in hold_rows],
            )
        except Forbidden as exc:
            await session.rollback()
            denied: Forbidden | None = exc
        else:
            denied = None
        if denied is None:
            events = (
                await session.scalars(
                    select(TransferEvent)
                    .where(TransferEvent.placement_id == placement_id)
                    .order_by(TransferEvent.seq)
                )
            ).all()
            current = next((h for h in hold_rows if h.id == p.current_hold_id), None)
            unit_ids = {h.unit_id for h in hold_rows} | {e.unit_id for e in events if e.unit_id}
            org_ids = {p.referrer_organisation_id} | {
                e.actor_organisation_id for e in events if e.actor_organisation_id
            }
            units, orgs = await _names(session, unit_ids, org_ids)
            subregion_name = (
                None
                if p.subregion_id is None
                else await session.scalar(
                    select(Subregion.name).where(Subregion.id == p.subregion_id)
                )
            )
            read = placement_read(p, current)
            since = waiting_since(p.medically_ready_at, p.created_at)
            ended = p.transferred_at or p.cancelled_at
            active = current is not None and current.status == "active"
            detail = PlacementDetail(
                placement=read,
                referrer_name=orgs.get(p.referrer_organisation_id, ""),
                subregion_name=subregion_name,
                waiting_since=since,
                waiting_minutes=minutes_between(since, ended or now),
                hold=None if current is None else hold_read(current),
                hold_unit_name=None if current is None else _unit(units, current.unit_id)[0],
                hold_organisation_name=(
                    None if current is None else _unit(units, current.unit_id)[1]
                ),
                hold_seconds_left=(
                    seconds_left(current.expires_at, now)
                    if active and current is not None and p.state == State.OFFERED
                    else None
                ),
                holds=[(hold_read(h), _unit(units, h.unit_id)[0]) for h in hold_rows],
                timeline=[
                    TimelineEntry(
                        event=event_read(e),
                        unit_name=None if e.unit_id is None else _unit(units, e.unit_id)[0],
                        actor_organisation_name=(
                            None
                            if e.actor_organisation_id is None
                            else orgs.get(e.actor_organisation_id)
                        ),
                    )
                    for e in events
                ],
                can_manage=access.can_manage(
                    ctx.principal, p.referrer_organisation_id, p.region_id
                ),
                is_receiver=access.is_receiving_provider(
                    ctx.principal, None if current is None else current.organisation_id
                )
                or (ctx.principal.is_admin and current is not None),
            )
            await audit_service.append(
                session,
                ctx,
                [
                    AuditEntry(
                        event_code="placement.page",
                        action="R",
                        object_id=str(p.id),
                        patient_key=p.patient_key,
                        detail={"events": len(events)},
                    )
                ],
                now=now,
            )
            await session.commit()
            return detail
    assert denied is not None
    await audit_service.log_denied(
        db,
        ctx,
        event_code="placement.page",
        action="R",
        object_id=str(placement_id),
        detail={"status": 403, "reason": denied.detail},
        patient_keys=patient_keys,
    )
    raise denied


async def patient_keys(
    session: AsyncSession, placement_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Placement id -> patient key, for the access log (ids of no placement are left out)."""
    if not placement_ids:
        return {}
    rows = await session.execute(
        select(Placement.id, Placement.patient_key).where(Placement.id.in_(list(placement_ids)))
    )
    return dict(rows.all())


async def ended_holds(session: AsyncSession, placement_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Unit id -> how this placement's last hold on it ended (declined, expired)."""
    ended = await session.execute(
        select(PlacementHold.unit_id, PlacementHold.status)
        .where(
            PlacementHold.placement_id == placement_id,
            PlacementHold.status.in_(("declined", "expired")),
        )
        .order_by(PlacementHold.created_at)
    )
    return dict(ended.all())
