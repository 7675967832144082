"""Capacity endpoints: report capacity, history, availability search."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response

from app.capacity import hours as hours_service
from app.capacity import service as capacity_service
from app.capacity import status as status_service
from app.capacity.schemas import (
    AdmissionHoursIn,
    AdmissionHoursRead,
    AvailabilityResult,
    CapacityReportIn,
    CapacityReportItem,
    CapacityReportRead,
    UnitStatusCurrent,
    UnitStatusIn,
    UnitStatusRead,
)
from app.db import utcnow
from app.enums import CareType, Feature, Role, Sex, TargetGroup
from app.flows import search as search_flow
from app.http.deps import (
    DbDep,
    PrincipalDep,
    ScopesDep,
    SessionDep,
    SettingsDep,
    WriteDep,
    authenticated,
    requires,
)
from app.routers.common import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    CursorQ,
    IncludePartnersQ,
    LimitQ,
    NearQ,
    json_response,
)
from app.routers.exchange import CSV_REQUEST_BODY, csv_upload
from app.schemas import Page, UtcDateTime

router = APIRouter(prefix="/v1", tags=["capacity"])


@router.put(
    "/units/{unit_id}/capacity",
    response_model=CapacityReportRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER)],
)
async def report_capacity(
    unit_id: uuid.UUID, body: CapacityReportIn, write: WriteDep, settings: SettingsDep
) -> Response:
    """A provider reports the free places of one of its own units (appended to the history)."""
    report = await capacity_service.report_capacity(
        write.session, write.principal, unit_id, body, now=utcnow(), settings=settings
    )
    return await write.commit(report)


@router.post(
    "/capacity-reports",
    status_code=201,
    response_model=list[CapacityReportRead],
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER), Depends(csv_upload)],
    openapi_extra=CSV_REQUEST_BODY,
)
async def report_capacity_bulk(
    body: Annotated[list[CapacityReportItem], Body(min_length=1, max_length=1000)],
    write: WriteDep,
    settings: SettingsDep,
) -> Response:
    """Several reports at once, all-or-nothing: one refused item refuses the batch.

    Also takes `text/csv` (columns `unit_id` or `external_id`, `free`, `expected_free_24h`,
    `reported_at`; others ignored, so a capacity snapshot can be sent back), up to 10,000 lines;
    a refused upload names every bad line and column (`/lines/<n>/<column>`)."""
    reports = await capacity_service.report_bulk(
        write.session, write.principal, body, now=utcnow(), settings=settings
    )
    return await write.commit(reports, status_code=201)


@router.get(
    "/units/{unit_id}/capacity-history",
    response_model=Page[CapacityReportRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def capacity_history(
    unit_id: uuid.UUID,
    session: SessionDep,
    cursor: CursorQ = None,
    limit: LimitQ = 100,
    since: Annotated[UtcDateTime | None, Query(alias="from")] = None,
    until: Annotated[UtcDateTime | None, Query(alias="to")] = None,
) -> Page[CapacityReportRead]:
    """The unit's reports, newest first: its occupancy time series."""
    items, nxt = await capacity_service.capacity_history(
        session, unit_id, cursor=cursor, limit=limit, since=since, until=until
    )
    return Page(items=items, next_cursor=nxt)


@router.get(
    "/availability",
    response_model=AvailabilityResult,
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.TRIAGIST, Role.REFERRER, Role.PROVIDER)],
)
async def search_availability(
    db: DbDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    scopes: ScopesDep,
    care_type: Annotated[list[CareType], Query(min_length=1, max_length=len(CareType))],
    target_group: Annotated[list[TargetGroup], Query(max_length=len(TargetGroup))] = [],  # noqa: B006
    sex: Sex | None = None,
    features: Annotated[list[Feature], Query(max_length=len(Feature))] = [],  # noqa: B006
    subregion: Annotated[str | None, Query(max_length=64, description="id or code")] = None,
    near: NearQ = None,
    include_stale: bool = False,
    escalate: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    include_not_accepting: Annotated[
        bool,
        Query(
            description=(
                "Also list units closed to admissions (marked accepting: false, after the open "
                "ones, whatever their free places)"
            )
        ),
    ] = False,
    admitting_at: Annotated[
        UtcDateTime | None,
        Query(
            description="When the patient would arrive (default now): units admitting then are "
            "listed first, the others after them with next_admission_at"
        ),
    ] = None,
    include_partners: IncludePartnersQ = False,
) -> Response:
    """Free places, ranked: own subregion, neighbours in escalation order, distance, freshness;
    units admitting at ``admitting_at`` (their admission hours) before those that do not."""
    result = await search_flow.search_availability(
        db,
        principal,
        capacity_service.SearchQuery(
            care_types=tuple(care_type),
            target_groups=tuple(target_group),
            sex=sex,
            features=tuple(features),
            subregion=subregion,
            near=near,
            include_stale=include_stale,
            escalate=escalate,
            limit=limit,
            include_not_accepting=include_not_accepting,
            admitting_at=admitting_at,
            include_partners=include_partners,
        ),
        now=utcnow(),
        settings=settings,
        scopes=scopes,
    )
    return json_response(result)


@router.get(
    "/units/{unit_id}/admission-hours",
    response_model=AdmissionHoursRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_admission_hours(unit_id: uuid.UUID, session: SessionDep) -> AdmissionHoursRead:
    """The unit's weekly admission hours and exceptions (local time in the Netherlands), and
    whether it admits now."""
    return await hours_service.get_hours(session, unit_id, now=utcnow())


@router.put(
    "/units/{unit_id}/admission-hours",
    response_model=AdmissionHoursRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER)],
)
async def set_admission_hours(
    unit_id: uuid.UUID, body: AdmissionHoursIn, write: WriteDep
) -> Response:
    """Replace the unit's admission hours (its provider or an admin): ``always_open`` for 24/7,
    else weekly hours; exceptions close a date or give it other hours."""
    result = await hours_service.set_hours(
        write.session, write.principal, unit_id, body, now=utcnow()
    )
    return await write.commit(result)


@router.put(
    "/units/{unit_id}/status",
    response_model=UnitStatusCurrent,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER)],
)
async def set_unit_status(unit_id: uuid.UUID, body: UnitStatusIn, write: WriteDep) -> Response:
    """A provider closes one of its units to admissions (reason, detail, expected ``until``) or
    reopens it (``accepting: true``). A closed unit reopens by itself at ``until``; holds on it
    are refused with 409 ``unit-not-accepting`` until then."""
    status = await status_service.set_status(
        write.session, write.principal, unit_id, body, now=utcnow()
    )
    return await write.commit(status)


@router.get(
    "/units/{unit_id}/status",
    response_model=UnitStatusCurrent,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_unit_status(unit_id: uuid.UUID, session: SessionDep) -> UnitStatusCurrent:
    """Whether the unit takes admissions now, and if not why and until when."""
    return await status_service.get_status(session, unit_id, utcnow())


@router.get(
    "/units/{unit_id}/status-history",
    response_model=Page[UnitStatusRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def unit_status_history(
    unit_id: uuid.UUID,
    session: SessionDep,
    cursor: CursorQ = None,
    limit: LimitQ = 100,
) -> Page[UnitStatusRead]:
    """The unit's status changes (closed with reason and until, reopened), newest first."""
    items, nxt = await status_service.status_history(session, unit_id, cursor=cursor, limit=limit)
    return Page(items=items, next_cursor=nxt)
