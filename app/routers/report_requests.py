"""Report now (docs/report-requests.md): ask providers to refresh their capacity, follow who
answered, and the response-time KPI."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.db import utcnow
from app.enums import Role
from app.http.deps import DbDep, PrincipalDep, SessionDep, WriteDep, authenticated, requires
from app.kpi import service as kpi_service
from app.reportnow import service as report_service
from app.reportnow.kpi import REPORT_REQUESTS
from app.reportnow.schemas import ReportRequestCreate, ReportRequestRead, ReportResponsesAnswer
from app.routers.common import READ_PROBLEMS, WRITE_PROBLEMS, CursorQ
from app.schemas import Page

router = APIRouter(prefix="/v1", tags=["report-requests"])


@router.post(
    "/report-requests",
    status_code=201,
    response_model=ReportRequestRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.TRIAGIST)],
)
async def create_report_request(body: ReportRequestCreate, write: WriteDep) -> Response:
    """Triagist or admin: ask the providers of these care types and subregions to report within
    ``within_minutes``. The matching active units are targeted (a snapshot); each targeted
    organisation gets ``report_request.created`` on its stream and webhooks."""
    created = await report_service.create(write.session, write.principal, body, now=utcnow())
    write.headers["Location"] = f"/v1/report-requests/{created.id}"
    return await write.commit(created, status_code=201)


@router.get(
    "/report-requests",
    response_model=Page[ReportRequestRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_report_requests(
    session: SessionDep,
    principal: PrincipalDep,
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[ReportRequestRead]:
    """Newest first, each with its progress: admin all, a triagist its region's, a provider
    those that asked it (with its own units)."""
    items, nxt = await report_service.list_requests(
        session, principal, cursor=cursor, limit=limit, now=utcnow()
    )
    return Page(items=items, next_cursor=nxt)


@router.get(
    "/report-requests/{request_id}",
    response_model=ReportRequestRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_report_request(
    request_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> ReportRequestRead:
    """Per targeted unit: whether and when it answered (its first capacity report after the
    request), and the progress: answered / targeted, overdue after the deadline."""
    return await report_service.get(session, principal, request_id, now=utcnow())


@router.get(
    "/kpis/report-requests",
    response_model=ReportResponsesAnswer,
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def report_request_kpi(
    db: DbDep,
    principal: PrincipalDep,
    from_: Annotated[date, Query(alias="from", description="First local date (inclusive)")],
    to: Annotated[date, Query(description="Local date after the period (exclusive)")],
) -> ReportResponsesAnswer:
    """Response times per organisation to the report requests made in the period: targeted,
    answered, answered within the deadline (and its share), median answer time."""
    q = kpi_service.KpiQuery(kpi="report_requests", period=kpi_service.make_period(from_, to))
    return await kpi_service.answer(db, principal, REPORT_REQUESTS, q, now=utcnow())
