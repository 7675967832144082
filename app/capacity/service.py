"""Capacity service: report capacity (single and all-or-nothing bulk), history, availability search.

Rules (docs/domain.md §3.1, issue acceptance): reports are append-only; ``free`` lies in
[0, staffed capacity]; ``reported_at`` is not in the future beyond the clock skew and not older
than the unit's latest report; only the unit's own organisation (or an admin) may report.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Select, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.capacity import admission, ranking
from app.capacity.models import CapacityReport, UnitCapacity
from app.capacity.queries import SearchFilter, search_rows
from app.capacity.schemas import (
    CapacityReportIn,
    CapacityReportItem,
    CapacityReportRead,
    UnitStateRead,
)
from app.config import Settings
from app.db import Database
from app.enums import CareType, Feature, Role, Sex, TargetGroup, codes_of, is_closed, mask_of
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, StaleReport
from app.kpi import episodes
from app.pagination import Keyset
from app.placement import service as placement_service
from app.placement.suitability import ROOM_POLICIES
from app.principal import Principal
from app.realtime.outbox import publish, publish_many
from app.registry.models import Location, Subregion, SubregionNeighbour, Unit
from app.registry.service import resolve_subregion, unit_with_location

log = structlog.get_logger("juisteplek.capacity")

ReportSource = str  # "api", "bulk", "csv", "web"


def _report_read(report: CapacityReport, held: int) -> CapacityReportRead:
    return CapacityReportRead(
        id=report.id,
        unit_id=report.unit_id,
        free=report.free,
        expected_free_24h=report.expected_free_24h,
        reported_at=report.reported_at,
        recorded_at=report.recorded_at,
        source=report.source,
        available=max(0, report.free - held),
    )


async def report_capacity(
    session: AsyncSession,
    principal: Principal,
    unit_id: uuid.UUID,
    body: CapacityReportIn,
    *,
    now: datetime,
    settings: Settings,
    source: ReportSource = "api",
    pointer_prefix: str = "#",
) -> CapacityReportRead:
    """Append a capacity report and make it the unit's current capacity (docs/domain.md §3.1)."""
    principal.require(Role.PROVIDER)
    unit, location = await unit_with_location(session, unit_id)
    principal.require_organisation(location.organisation_id, "capacity")
    if not unit.active:
        raise Conflict(f"Unit {unit_id} is deactivated; reactivate it before reporting.")
    errors = []
    if body.free > unit.staffed_capacity:
        errors.append(
            {
                "pointer": f"{pointer_prefix}/free",
                "detail": f"exceeds staffed capacity {unit.staffed_capacity}",
            }
        )
    if body.expected_free_24h is not None and body.expected_free_24h > unit.staffed_capacity:
        errors.append(
            {
                "pointer": f"{pointer_prefix}/expected_free_24h",
                "detail": f"exceeds staffed capacity {unit.staffed_capacity}",
            }
        )
    reported_at = body.reported_at or now
    if reported_at > now + timedelta(seconds=settings.clock_skew_seconds):
        errors.append(
            {
                "pointer": f"{pointer_prefix}/reported_at",
                "detail": "lies in the future; send the time the count was taken",
            }
        )
    if errors:
        raise InvalidInput(
            "Capacity report refused: "
            + "; ".join(f"{e['pointer']} {e['detail']}" for e in errors),
            errors=errors,
        )
    # The row lock orders concurrent reports and holds on this unit (SQLite: BEGIN IMMEDIATE).
    state = await session.scalar(
        select(UnitCapacity).where(UnitCapacity.unit_id == unit_id).with_for_update()
    )
    if state is None:
        state = UnitCapacity(unit_id=unit_id, free=0, held=0)
        session.add(state)
    if state.reported_at is not None and reported_at < state.reported_at:
        raise StaleReport(
            f"reported_at {reported_at.isoformat()} is older than the unit's latest report "
            f"({state.reported_at.isoformat()}); history is append-only.",
            errors=[{"pointer": f"{pointer_prefix}/reported_at", "detail": "older than latest"}],
        )
    report = CapacityReport(
        unit_id=unit_id,
        free=body.free,
        expected_free_24h=body.expected_free_24h,
        reported_at=reported_at,
        recorded_at=now,
        reported_by_key_id=principal.key_id,
        source=source,
    )
    session.add(report)
    await session.flush()
    await episodes.track_capacity_report(
        await session.connection(),
        report_id=report.id,
        unit_id=unit_id,
        reported_at=reported_at,
        free=report.free,
    )
    state.report_id = report.id
    state.free = report.free
    state.expected_free_24h = report.expected_free_24h
    state.reported_at = reported_at
    # docs/domain.md §3.1: the new report counts places physically free, so holds are recounted
    # against
    # it: still active, or admitted after it was taken. Under the row lock taken above.
    state.held = await placement_service.recount_held(session, unit_id, reported_at)
    await session.flush()
    result = _report_read(report, state.held)
    await publish(
        session,
        topic="capacity",
        event_type="capacity.reported",
        payload={
            **result.model_dump(mode="json"),
            "care_type": unit.care_type,
            "subregion_id": str(location.subregion_id),
        },
        organisation_ids=[location.organisation_id],
    )
    return result


async def report_bulk(
    session: AsyncSession,
    principal: Principal,
    items: Sequence[CapacityReportItem],
    *,
    now: datetime,
    settings: Settings,
) -> list[CapacityReportRead]:
    """All-or-nothing: the first refused item aborts the whole batch (the caller rolls back)."""
    seen: set[uuid.UUID] = set()
    out = []
    for index, item in enumerate(items):
        if item.unit_id in seen:
            raise InvalidInput(
                f"Unit {item.unit_id} appears twice in one batch.",
                errors=[{"pointer": f"#/{index}/unit_id", "detail": "duplicate unit in batch"}],
            )
        seen.add(item.unit_id)
        try:
            out.append(
                await report_capacity(
                    session,
                    principal,
                    item.unit_id,
                    CapacityReportIn(
                        free=item.free,
                        expected_free_24h=item.expected_free_24h,
                        reported_at=item.reported_at,
                    ),
                    now=now,
                    settings=settings,
                    source="bulk",
                    pointer_prefix=f"#/{index}",
                )
            )
        except NotFound as exc:
            raise InvalidInput(
                f"Item {index}: {exc.detail}",
                errors=[{"pointer": f"#/{index}/unit_id", "detail": "unknown unit"}],
            ) from exc
    return out


async def capacity_history(
    session: AsyncSession,
    unit_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[CapacityReportRead], str | None]:
    """Reports of a unit, newest first; ``available`` is as computed at the time of each report."""
    await unit_with_location(session, unit_id)
    stmt: Select[Any] = select(CapacityReport).where(CapacityReport.unit_id == unit_id)
    if since is not None:
        stmt = stmt.where(CapacityReport.reported_at >= since)
    if until is not None:
        stmt = stmt.where(CapacityReport.reported_at < until)
    reports, nxt = await Keyset(CapacityReport.id, descending=True).scalars(
        session, stmt, cursor, limit
    )
    return [_report_read(r, 0) for r in reports], nxt


# --- search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchQuery:
    care_types: tuple[CareType, ...]
    target_groups: tuple[TargetGroup, ...] = ()
    sex: Sex | None = None
    features: tuple[Feature, ...] = ()
    subregion: str | None = None
    near: str | None = None
    include_stale: bool = False
    escalate: bool = False
    limit: int = 50
    include_not_accepting: bool = False
    admitting_at: datetime | None = None  # default: now
    include_partners: bool = False


def parse_near(near: str) -> tuple[float, float]:
    parts = near.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        lat, lon = float(parts[0]), float(parts[1])
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError
    except ValueError as exc:
        raise InvalidInput(
            f"near={near!r} is not 'latitude,longitude' in degrees.",
            errors=[{"pointer": "query:near", "detail": "expected e.g. 52.1601,4.4970"}],
        ) from exc
    return lat, lon


async def _scope(db: Database, ref: str, escalate: bool) -> ranking.Scope | None:
    # On a read connection: a search may run beside its caller's open write (triage).
    async with db.read() as conn, AsyncSession(bind=conn) as session:
        own = await resolve_subregion(session, ref)
        neighbours = (
            await session.scalars(
                select(SubregionNeighbour.neighbour_id)
                .where(SubregionNeighbour.subregion_id == own.id)
                .order_by(SubregionNeighbour.rank)
            )
        ).all()
        region_subs = (
            await session.scalars(select(Subregion.id).where(Subregion.region_id == own.region_id))
        ).all()
    return ranking.search_scope(own.id, neighbours, region_subs, escalate=escalate)


@dataclass
class ScopeResolver:
    """Subregion reference -> search scope, memoised per app instance.

    The subregion graph is reference data (written by the registry loader, not the API), so a
    search need not spend three queries and a second connection on it; a changed graph is seen
    within ``ttl`` seconds.
    """

    db: Database
    ttl: float = 60.0
    _cache: dict[tuple[str, bool], tuple[float, ranking.Scope | None]] = field(default_factory=dict)

    async def resolve(self, ref: str | None, escalate: bool) -> ranking.Scope | None:
        if ref is None:
            return None
        now = time.monotonic()
        hit = self._cache.get((ref, escalate))
        if hit is not None and hit[0] > now:
            return hit[1]
        scope = await _scope(self.db, ref, escalate)  # unknown refs raise and are not kept
        if len(self._cache) > 1_000:
            self._cache.clear()
        self._cache[(ref, escalate)] = (now + self.ttl, scope)
        return scope


@dataclass(frozen=True, slots=True)
class LocalHits:
    """This region's ranked hits for a query, with what the answer and the partner search need:
    the subregion scope, the point searched near, and the care types asked for."""

    items: list[dict[str, Any]]
    scope: ranking.Scope | None
    near: tuple[float, float] | None
    care_types: tuple[str, ...]


async def search_local(
    db: Database,
    principal: Principal,
    q: SearchQuery,
    *,
    now: datetime,
    settings: Settings,
    scopes: ScopeResolver | None = None,
) -> LocalHits:
    """This region's free places matching the query, ranked as docs/domain.md §8 describes
    (``app.flows.search`` adds partner regions' units and counts a search without result).

    The hits are plain data: this is the hot read path, and building models only to serialise
    them again would double its CPU cost.
    """
    principal.require(Role.TRIAGIST, Role.REFERRER, Role.PROVIDER)
    if scopes is not None:
        scope = await scopes.resolve(q.subregion, q.escalate)
    else:
        scope = None if q.subregion is None else await _scope(db, q.subregion, q.escalate)
    near = parse_near(q.near) if q.near is not None else None
    f = SearchFilter(
        care_types=tuple(c.value for c in q.care_types),
        target_group_mask=mask_of(q.target_groups, TargetGroup),
        feature_mask=mask_of(q.features, Feature),
        sex_policies=None if q.sex is None else ROOM_POLICIES[q.sex],
        subregion_ids=None if scope is None else scope.subregion_ids,
        fresh_bed_after=None if q.include_stale else now - settings.stale_after("elv_low"),
        fresh_district_nursing_after=(
            None if q.include_stale else now - settings.stale_after("district_nursing")
        ),
        near=None if near is None else (near[0], near[1], ranking.lon_scale(near[0])),
        limit=q.limit,
        now=now,
        include_not_accepting=q.include_not_accepting,
    )
    async with db.read() as conn:
        rows = await search_rows(conn, f)
    at = q.admitting_at or now
    items = admission.order_hits([_hit(row, q, scope, near, now, settings, at) for row in rows])
    return LocalHits(items=items, scope=scope, near=near, care_types=f.care_types)


def _hit(
    row: Mapping[str, Any],
    q: SearchQuery,
    scope: ranking.Scope | None,
    near: tuple[float, float] | None,
    now: datetime,
    settings: Settings,
    at: datetime,
) -> dict[str, Any]:
    rank = 0 if scope is None else scope.rank_of(row["subregion_id"])
    admits_now, next_admission_at = admission.admission_fields(row["admission_hours"], at)
    stale = ranking.is_stale(row["reported_at"], now, settings.stale_after(row["care_type"]))
    closed = is_closed(row["closed_reason"], row["closed_until"], now)
    return {
        "unit_id": row["unit_id"],
        "unit_name": row["unit_name"],
        "care_type": row["care_type"],
        "label": row["label"],
        "target_groups": codes_of(row["target_group_mask"], TargetGroup),
        "sex_policy": row["sex_policy"],
        "features": codes_of(row["feature_mask"], Feature),
        "staffed_capacity": row["staffed_capacity"],
        "available": max(0, row["free"] - row["held"]),
        "reported_free": row["free"],
        "held": row["held"],
        "expected_free_24h": row["expected_free_24h"],
        "organisation": {"id": row["organisation_id"], "name": row["organisation_name"]},
        "location": {
            "id": row["location_id"],
            "name": row["location_name"],
            "address": row["address"],
            "postcode": row["postcode"],
            "municipality": row["municipality"],
            "latitude": row["latitude"],
            "longitude": row["longitude"],
            "phone": row["phone"],
        },
        "subregion": {
            "id": row["subregion_id"],
            "code": row["subregion_code"],
            "name": row["subregion_name"],
        },
        "escalation_level": "subregion" if rank == 0 and scope is not None else "region",
        "escalation_rank": rank,
        "distance_km": (
            None
            if near is None
            else round(ranking.haversine_km(near[0], near[1], row["latitude"], row["longitude"]), 2)
        ),
        "reported_at": row["reported_at"],
        "age_minutes": ranking.age_minutes(row["reported_at"], now),
        "stale": stale,
        "accepting": not closed,
        "not_accepting_reason": row["closed_reason"] if closed else None,
        "not_accepting_detail": row["closed_detail"] if closed else None,
        "not_accepting_until": row["closed_until"] if closed else None,
        "admits_now": admits_now,
        "next_admission_at": next_admission_at,
        "source": None,  # a unit of this region (partner units carry theirs)
        "matched_because": ranking.match_reasons(
            care_type=row["care_type"],
            wanted_target_groups=[g.value for g in q.target_groups],
            sex=None if q.sex is None else q.sex.value,
            sex_policy=row["sex_policy"],
            wanted_features=[x.value for x in q.features],
            subregion_code=row["subregion_code"],
            escalation_rank=None if scope is None else rank,
            stale=stale,
        ),
    }


async def report_ages(db: Database, now: datetime) -> dict[str, float]:
    """Age in seconds of the oldest current report per care type (for /metrics)."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(Unit.care_type, func.min(UnitCapacity.reported_at))
                .join(UnitCapacity, UnitCapacity.unit_id == Unit.id)
                .join(Location, Location.id == Unit.location_id)
                .where(Unit.active, UnitCapacity.reported_at.is_not(None))
                .group_by(Unit.care_type)
            )
        ).all()
    return {
        care_type: (now - oldest).total_seconds()
        for care_type, oldest in rows
        if oldest is not None
    }


# --- many reports in one statement per step (CSV uploads) ---------------------------------------


_REPORTS = cast(Table, CapacityReport.__table__)
_STATES = cast(Table, UnitCapacity.__table__)


@dataclass(frozen=True, slots=True)
class _Target:
    """A unit a bulk report is for, as the checks and the event need it."""

    unit_id: uuid.UUID
    care_type: str
    staffed: int
    active: bool
    organisation_id: uuid.UUID
    subregion_id: uuid.UUID
    reported_at: datetime | None
    has_state: bool


@dataclass(frozen=True)
class BulkItem:
    """One report of a large upload; ``pointer`` locates it in the upload (``/lines/17``) and
    ``unit_field`` names the column that identified the unit."""

    pointer: str
    unit_id: uuid.UUID
    report: CapacityReportIn
    unit_field: str = "unit_id"


async def report_many(
    session: AsyncSession,
    principal: Principal,
    items: Sequence[BulkItem],
    *,
    now: datetime,
    settings: Settings,
    source: ReportSource = "csv",
) -> list[CapacityReportRead]:
    """All-or-nothing, under the rules of ``report_capacity``, with every refused item named.

    Set-based: the units are read and locked in one query, reports, KPI days, current state and
    outbox events are written with one statement each, so thousands of reports take about as
    many round trips as one. 403 when any item is a unit of another organisation, else 422.
    """
    principal.require(Role.PROVIDER)
    problems: list[tuple[int, dict[str, str]]] = []  # (item index, error): named in upload order
    forbidden: list[dict[str, str]] = []

    def refuse(index: int, pointer: str, detail: str) -> None:
        problems.append((index, {"pointer": pointer, "detail": detail}))

    seen: dict[uuid.UUID, str] = {}
    for index, item in enumerate(items):
        if item.unit_id in seen:
            refuse(
                index,
                f"{item.pointer}/{item.unit_field}",
                f"the unit appears again (first at {seen[item.unit_id]})",
            )
        else:
            seen[item.unit_id] = item.pointer
    # Locked in id order, so two uploads with overlapping units cannot deadlock each other.
    ids = sorted(seen)
    found: dict[uuid.UUID, _Target] = {}
    columns = (
        Unit.id,
        Unit.care_type,
        Unit.staffed_capacity,
        Unit.active,
        Location.organisation_id,
        Location.subregion_id,
    )
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        # Core rows, not ORM objects: loading thousands of instances costs more than the writes.
        # The row locks order this upload after concurrent reports and holds on these units.
        locked_rows = await session.execute(
            select(*columns, UnitCapacity.reported_at)
            .join(Unit, Unit.id == UnitCapacity.unit_id)
            .join(Location, Location.id == Unit.location_id)
            .where(UnitCapacity.unit_id.in_(chunk))
            .order_by(UnitCapacity.unit_id)
            .with_for_update(of=UnitCapacity)
        )
        for locked in locked_rows:
            found[locked[0]] = _Target(*locked, has_state=True)
        missing = [u for u in chunk if u not in found]
        if missing:  # units without a capacity row yet (every unit gets one when created)
            bare_rows = await session.execute(
                select(*columns)
                .join(Location, Location.id == Unit.location_id)
                .where(Unit.id.in_(missing))
            )
            for bare in bare_rows:
                found[bare[0]] = _Target(*bare, reported_at=None, has_state=False)
    skew = now + timedelta(seconds=settings.clock_skew_seconds)
    for index, item in enumerate(items):
        p = item.pointer
        hit = found.get(item.unit_id)
        if hit is None:
            refuse(index, f"{p}/{item.unit_field}", "unknown unit")
            continue
        if not (principal.is_admin or principal.organisation_id == hit.organisation_id):
            forbidden.append(
                {"pointer": f"{p}/{item.unit_field}", "detail": "unit of another organisation"}
            )
            continue
        if not hit.active:
            refuse(index, f"{p}/{item.unit_field}", "unit is deactivated")
        body = item.report
        for name, value in (("free", body.free), ("expected_free_24h", body.expected_free_24h)):
            if value is not None and value > hit.staffed:
                refuse(index, f"{p}/{name}", f"exceeds staffed capacity {hit.staffed}")
        at = body.reported_at or now
        if at > skew:
            refuse(index, f"{p}/reported_at", "lies in the future")
        elif hit.reported_at is not None and at < hit.reported_at:
            refuse(
                index,
                f"{p}/reported_at",
                f"older than the unit's latest report ({hit.reported_at.isoformat()})",
            )
    if forbidden:
        raise Forbidden(
            "This key's organisation may not report capacity of another organisation's units: "
            + ", ".join(e["pointer"] for e in forbidden),
            errors=forbidden,
        )
    if problems:
        errors = [e for _, e in sorted(problems, key=lambda p: p[0])]
        raise InvalidInput(
            f"{len(errors)} problem(s); nothing was written: "
            + "; ".join(f"{e['pointer']} {e['detail']}" for e in errors[:20])
            + ("; ..." if len(errors) > 20 else ""),
            errors=errors,
        )
    conn = await session.connection()
    report_rows: list[dict[str, Any]] = [
        {
            "unit_id": item.unit_id,
            "free": item.report.free,
            "expected_free_24h": item.report.expected_free_24h,
            "reported_at": item.report.reported_at or now,
            "recorded_at": now,
            "reported_by_key_id": principal.key_id,
            "source": source,
        }
        for item in items
    ]
    inserted = await conn.execute(
        insert(_REPORTS).returning(_REPORTS.c.id, sort_by_parameter_order=True),
        report_rows,
    )
    report_ids = [int(i) for i in inserted.scalars().all()]
    await episodes.track_capacity_reports(
        conn,
        [
            (rid, row["unit_id"], row["reported_at"], row["free"])
            for rid, row in zip(report_ids, report_rows, strict=True)
        ],
    )
    missing = [u for u in ids if not found[u].has_state]
    if missing:
        await conn.execute(
            insert(_STATES),
            [{"unit_id": u, "free": 0, "held": 0} for u in missing],
        )
    held = await placement_service.recount_held_many(
        session, {row["unit_id"]: row["reported_at"] for row in report_rows}
    )
    await conn.execute(
        update(_STATES)
        .where(_STATES.c.unit_id == bindparam("b_unit_id"))
        .values(
            report_id=bindparam("b_report_id"),
            free=bindparam("b_free"),
            expected_free_24h=bindparam("b_expected"),
            reported_at=bindparam("b_reported_at"),
            held=bindparam("b_held"),
        ),
        [
            {
                "b_unit_id": row["unit_id"],
                "b_report_id": rid,
                "b_free": row["free"],
                "b_expected": row["expected_free_24h"],
                "b_reported_at": row["reported_at"],
                "b_held": held[row["unit_id"]],
            }
            for rid, row in zip(report_ids, report_rows, strict=True)
        ],
    )
    results = []
    events: list[tuple[str, dict[str, Any], list[uuid.UUID]]] = []
    for rid, row in zip(report_ids, report_rows, strict=True):
        target = found[row["unit_id"]]
        result = CapacityReportRead(
            id=rid,
            unit_id=row["unit_id"],
            free=row["free"],
            expected_free_24h=row["expected_free_24h"],
            reported_at=row["reported_at"],
            recorded_at=now,
            source=source,
            available=max(0, row["free"] - held[row["unit_id"]]),
        )
        results.append(result)
        events.append(
            (
                "capacity.reported",
                {
                    **result.model_dump(mode="json"),
                    "care_type": target.care_type,
                    "subregion_id": str(target.subregion_id),
                },
                [target.organisation_id],
            )
        )
    await publish_many(session, topic="capacity", events=events)
    return results


async def organisation_unit_states(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    *,
    now: datetime,
    settings: Settings,
) -> list[UnitStateRead]:
    """The active units of one organisation with their current capacity (its own provider, or
    an admin): what the capacity page shows, in name order."""
    principal.require(Role.PROVIDER)
    principal.require_organisation(organisation_id, "capacity")
    rows = (
        await session.execute(
            select(
                Unit.id,
                Unit.name,
                Unit.care_type,
                Unit.staffed_capacity,
                Location.name.label("location_name"),
                UnitCapacity.free,
                UnitCapacity.expected_free_24h,
                UnitCapacity.held,
                UnitCapacity.reported_at,
                CapacityReport.reported_by_key_id,
                CapacityReport.source,
            )
            .join(Location, Location.id == Unit.location_id)
            .outerjoin(UnitCapacity, UnitCapacity.unit_id == Unit.id)
            .outerjoin(CapacityReport, CapacityReport.id == UnitCapacity.report_id)
            .where(Location.organisation_id == organisation_id, Unit.active.is_(True))
            .order_by(Location.name, Unit.name, Unit.id)
        )
    ).all()
    states = []
    for r in rows:
        reported = r.reported_at is not None
        held = r.held or 0
        states.append(
            UnitStateRead(
                unit_id=r.id,
                name=r.name,
                care_type=CareType(r.care_type),
                location_name=r.location_name,
                staffed_capacity=r.staffed_capacity,
                free=r.free if reported else None,
                expected_free_24h=r.expected_free_24h if reported else None,
                held=held,
                available=max(0, r.free - held) if reported else None,
                reported_at=r.reported_at,
                reported_by_id=r.reported_by_key_id,
                source=r.source,
                stale=not reported or now - r.reported_at > settings.stale_after(r.care_type),
            )
        )
    return states
