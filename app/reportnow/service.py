"""Report now (docs/report-requests.md): a triagist asks the providers of some care types and
subregions to report their capacity within N minutes, and sees per unit who answered and when.

A request targets the region's active units that match, as they are when it is made (a
snapshot). A unit has answered when a capacity report of it was recorded at or after the
request's ``created_at``: the first such report is the answer (found by query, see
``app.reportnow.models``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.capacity.models import CapacityReport
from app.db import Database
from app.enums import Role
from app.errors import Forbidden, InvalidInput, NotFound
from app.kpi import formulas as f
from app.kpi import queries
from app.pagination import Keyset
from app.principal import Principal
from app.realtime.outbox import publish
from app.registry.models import Location, Organisation, Subregion, Unit
from app.registry.service import find_subregion
from app.reportnow.models import ReportRequest, ReportRequestUnit
from app.reportnow.schemas import (
    ReportRequestCreate,
    ReportRequestProgress,
    ReportRequestRead,
    ReportRequestUnitRead,
    ReportResponseRead,
    ReportResponsesAnswer,
)

EVENT_CREATED = "report_request.created"
# The units page shows a request's banner this long after its deadline while units still owe.
BANNER_AFTER_DEADLINE = timedelta(hours=12)


def _split(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


async def _region_of(principal: Principal, wanted: uuid.UUID | None) -> uuid.UUID:
    if principal.is_admin:
        region = wanted or principal.region_id
        if region is None:
            raise InvalidInput(
                "Name the region (region_id): this admin key belongs to none.",
                errors=[{"pointer": "#/region_id", "detail": "required for this key"}],
            )
        return region
    if wanted is not None and wanted != principal.region_id:
        raise Forbidden("A triagist asks the providers of its own region only.")
    if principal.region_id is None:
        raise Forbidden("This key belongs to no region.")
    return principal.region_id


async def create(
    session: AsyncSession, principal: Principal, body: ReportRequestCreate, *, now: datetime
) -> ReportRequestRead:
    """Make the request, snapshot its units and announce it (``report_request.created``) to the
    organisations concerned and the region's triagists; the caller commits."""
    principal.require(Role.TRIAGIST)
    region_id = await _region_of(principal, body.region_id)
    subregion_ids: list[uuid.UUID] = []
    for index, ref in enumerate(body.subregions):
        sub = await find_subregion(session, ref)
        if sub is None or sub.region_id != region_id:
            raise InvalidInput(
                f"Unknown subregion {ref!r} in this region.",
                errors=[{"pointer": f"#/subregions/{index}", "detail": "no such subregion"}],
            )
        subregion_ids.append(sub.id)
    care_types = list(dict.fromkeys(c.value for c in body.care_types))
    stmt = (
        select(Unit.id, Location.organisation_id)
        .join(Location, Location.id == Unit.location_id)
        .join(Subregion, Subregion.id == Location.subregion_id)
        .where(Subregion.region_id == region_id, Unit.active, Location.active)
        .order_by(Unit.id)
    )
    if care_types:
        stmt = stmt.where(Unit.care_type.in_(care_types))
    if subregion_ids:
        stmt = stmt.where(Location.subregion_id.in_(subregion_ids))
    targets = (await session.execute(stmt)).all()
    if not targets:
        raise InvalidInput(
            "No active unit matches these care types and subregions: nobody to ask.",
            errors=[{"pointer": "#/care_types", "detail": "no matching active unit"}],
        )
    request = ReportRequest(
        id=uuid.uuid4(),
        region_id=region_id,
        created_by_key_id=principal.key_id,
        created_by_organisation_id=principal.organisation_id,
        care_types=",".join(care_types),
        subregion_ids=",".join(str(s) for s in dict.fromkeys(subregion_ids)),
        message=body.message,
        within_minutes=body.within_minutes,
        created_at=now,
        deadline_at=now + timedelta(minutes=body.within_minutes),
    )
    session.add(request)
    await session.flush()
    session.add_all(
        ReportRequestUnit(request_id=request.id, unit_id=unit_id, organisation_id=org_id)
        for unit_id, org_id in targets
    )
    await session.flush()
    await publish(
        session,
        topic="report_request",
        event_type=EVENT_CREATED,
        payload={
            "report_request_id": request.id,
            "deadline_at": request.deadline_at,
            "within_minutes": request.within_minutes,
            "care_types": care_types,
            "subregion_ids": _split(request.subregion_ids),
            "message": request.message,
            "units": [{"unit_id": u, "organisation_id": o} for u, o in targets],
        },
        region_id=region_id,
        organisation_ids={o for _, o in targets},
    )
    return await _read(session, request, principal, now=now)


def _may_see_all(principal: Principal, request: ReportRequest) -> bool:
    return principal.is_admin or (
        Role.TRIAGIST in principal.roles and principal.region_id == request.region_id
    )


async def _read(
    session: AsyncSession, request: ReportRequest, principal: Principal, *, now: datetime
) -> ReportRequestRead:
    answered = (
        select(func.min(CapacityReport.recorded_at))
        .where(
            CapacityReport.unit_id == ReportRequestUnit.unit_id,
            CapacityReport.recorded_at >= request.created_at,
        )
        .correlate(ReportRequestUnit)
        .scalar_subquery()
    )
    stmt = (
        select(
            ReportRequestUnit.unit_id,
            Unit.name,
            Unit.care_type,
            ReportRequestUnit.organisation_id,
            Organisation.name,
            answered,
        )
        .join(Unit, Unit.id == ReportRequestUnit.unit_id)
        .join(Organisation, Organisation.id == ReportRequestUnit.organisation_id)
        .where(ReportRequestUnit.request_id == request.id)
        .order_by(Organisation.name, Unit.name, ReportRequestUnit.unit_id)
    )
    rows = (await session.execute(stmt)).all()
    past_deadline = now > request.deadline_at
    units = []
    for unit_id, unit_name, care_type, org_id, org_name, at in rows:
        within = (
            (at <= request.deadline_at) if at is not None else (False if past_deadline else None)
        )
        units.append(
            ReportRequestUnitRead(
                unit_id=unit_id,
                unit_name=unit_name,
                care_type=care_type,
                organisation_id=org_id,
                organisation_name=org_name,
                answered_at=at,
                answer_seconds=None if at is None else (at - request.created_at).total_seconds(),
                within_deadline=within,
            )
        )
    if not _may_see_all(principal, request):
        units = [u for u in units if u.organisation_id == principal.organisation_id]
    answered_count = sum(u.answered_at is not None for u in units)
    return ReportRequestRead(
        id=request.id,
        region_id=request.region_id,
        care_types=_split(request.care_types),
        subregion_ids=[uuid.UUID(s) for s in _split(request.subregion_ids)],
        message=request.message,
        within_minutes=request.within_minutes,
        created_at=request.created_at,
        deadline_at=request.deadline_at,
        created_by_organisation_id=request.created_by_organisation_id,
        progress=ReportRequestProgress(
            targeted=len(units),
            answered=answered_count,
            answered_within_deadline=sum(u.within_deadline is True for u in units),
            overdue=past_deadline and answered_count < len(units),
        ),
        units=units,
    )


def _targets_organisation(organisation_id: uuid.UUID | None) -> object:
    return exists().where(
        ReportRequestUnit.request_id == ReportRequest.id,
        ReportRequestUnit.organisation_id == organisation_id,
    )


async def get(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, now: datetime
) -> ReportRequestRead:
    request = await session.get(ReportRequest, request_id)
    if request is None:
        raise NotFound(f"No report request {request_id}.")
    if not _may_see_all(principal, request):
        targeted = await session.scalar(
            select(func.count())
            .select_from(ReportRequestUnit)
            .where(
                ReportRequestUnit.request_id == request.id,
                ReportRequestUnit.organisation_id == principal.organisation_id,
            )
        )
        if not (Role.PROVIDER in principal.roles and targeted):
            raise Forbidden("This key may not see this report request.")
    return await _read(session, request, principal, now=now)


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    *,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> tuple[list[ReportRequestRead], str | None]:
    """Newest first: admin all, a triagist its region's, a provider those that asked it."""
    stmt = select(ReportRequest)
    if not principal.is_admin:
        visible = []
        if Role.TRIAGIST in principal.roles and principal.region_id is not None:
            visible.append(ReportRequest.region_id == principal.region_id)
        if Role.PROVIDER in principal.roles and principal.organisation_id is not None:
            visible.append(_targets_organisation(principal.organisation_id))  # type: ignore[arg-type]
        if not visible:
            raise Forbidden("Report requests are for triagists, providers and admins.")
        stmt = stmt.where(or_(*visible))
    order = Keyset(ReportRequest.created_at, ReportRequest.id, descending=True)
    found, nxt = await order.scalars(session, stmt, cursor, limit)
    return [await _read(session, r, principal, now=now) for r in found], nxt


async def open_requests(
    session: AsyncSession, principal: Principal, *, now: datetime, limit: int = 20
) -> list[ReportRequestRead]:
    """The requests still being followed, newest first: some targeted unit has not answered and
    the deadline is ahead or passed less than ``BANNER_AFTER_DEADLINE`` ago (the board's list;
    visibility as ``list_requests``, among the newest ``limit``)."""
    found, _ = await list_requests(session, principal, cursor=None, limit=limit, now=now)
    return [
        r
        for r in found
        if r.progress.answered < r.progress.targeted and r.deadline_at > now - BANNER_AFTER_DEADLINE
    ]


@dataclass(frozen=True, slots=True)
class Banner:
    """An open request for the units page: the organisation's units that still owe a report."""

    request_id: uuid.UUID
    deadline_at: datetime
    message: str | None
    overdue: bool
    unit_names: list[str]


async def open_for_organisation(
    session: AsyncSession, organisation_id: uuid.UUID, *, now: datetime
) -> list[Banner]:
    """Requests whose deadline is ahead (or passed less than ``BANNER_AFTER_DEADLINE`` ago) with
    units of ``organisation_id`` that have not answered yet, soonest deadline first."""
    answered = exists().where(
        CapacityReport.unit_id == ReportRequestUnit.unit_id,
        CapacityReport.recorded_at >= ReportRequest.created_at,
    )
    rows = (
        await session.execute(
            select(ReportRequest.id, ReportRequest.deadline_at, ReportRequest.message, Unit.name)
            .join(ReportRequestUnit, ReportRequestUnit.request_id == ReportRequest.id)
            .join(Unit, Unit.id == ReportRequestUnit.unit_id)
            .where(
                ReportRequestUnit.organisation_id == organisation_id,
                ReportRequest.deadline_at > now - BANNER_AFTER_DEADLINE,
                ~answered,
            )
            .order_by(ReportRequest.deadline_at, ReportRequest.id, Unit.name)
        )
    ).all()
    banners: dict[uuid.UUID, Banner] = {}
    for request_id, deadline, message, unit_name in rows:
        banner = banners.setdefault(
            request_id, Banner(request_id, deadline, message, deadline < now, [])
        )
        banner.unit_names.append(unit_name)
    return list(banners.values())


async def response_times(
    db: Database, principal: Principal, period: f.Period, *, now: datetime
) -> ReportResponsesAnswer:
    """``GET /v1/kpis/report-requests``: per organisation, how fast and how often it answered.
    Asked through its KPI spec (``app.reportnow.kpi.REPORT_REQUESTS``), whose roles the KPI service
    checks; the caller's region scopes the rows."""
    from app.kpi.service import scope_region

    async with db.read() as conn:
        rows = await queries.report_responses(conn, period, region_id=scope_region(principal))
        names = {
            uuid.UUID(str(k)): v
            for k, v in (
                await conn.execute(
                    select(Organisation.id, Organisation.name).where(
                        Organisation.id.in_([uuid.UUID(r.organisation_id) for r in rows])
                    )
                )
            ).all()
        }
    return ReportResponsesAnswer(
        period_from=period.start.isoformat(),
        period_to=period.end.isoformat(),
        rows=[_response_read(r, names) for r in rows],
        notes=[
            "Units targeted by report requests made in the period (local dates, end exclusive); "
            "a unit answered with its first capacity report recorded at or after the request; "
            "the median of an even count is the mean of the two middle values."
        ],
        computed_at=now,
    )


def _response_read(r: f.ReportResponseSummary, names: dict[uuid.UUID, str]) -> ReportResponseRead:
    org = uuid.UUID(r.organisation_id)
    return ReportResponseRead(
        organisation_id=org,
        organisation_name=names.get(org, ""),
        targeted=r.targeted,
        answered=r.answered,
        answered_within_deadline=r.within_deadline,
        share_within_deadline=r.share_within_deadline,
        median_answer_seconds=None if r.median_us is None else r.median_us / 1_000_000,
    )


__all__: Sequence[str] = (
    "Banner",
    "create",
    "get",
    "list_requests",
    "open_for_organisation",
    "response_times",
)
