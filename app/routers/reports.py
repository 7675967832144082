"""Reports for the ROAZ: the monthly figures as JSON (the printable page is /ui/reports/roaz)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.db import utcnow
from app.enums import Role
from app.http.deps import DbDep, KeyOrPersonDep, SettingsDep, requires
from app.kpi import report as report_service
from app.kpi.report import RoazReport
from app.schemas import problem_responses

router = APIRouter(prefix="/v1", tags=["kpis"])

MonthQ = Annotated[
    str,
    Query(min_length=1, max_length=20, description="The month as YYYY-MM", examples=["2026-11"]),
]


@router.get(
    "/reports/roaz",
    response_model=RoazReport,
    responses=problem_responses(400, 401, 403, 422),
    dependencies=[requires(Role.ANALYST, session_ok=True)],
)
async def roaz_report(
    db: DbDep, principal: KeyOrPersonDep, settings: SettingsDep, month: MonthQ
) -> RoazReport:
    """The monthly ROAZ report (analysts and admins): the region's KPIs for the month against
    the same month last year and the baseline, per subregion, the top decline reasons,
    escalations, the stale-capacity share and the KPI definition version. Every figure names
    the KPI endpoint query that gives the same number. A logged-in person's session may read
    it too (the report page links here)."""
    return await report_service.roaz_report(db, principal, month, now=utcnow(), settings=settings)
