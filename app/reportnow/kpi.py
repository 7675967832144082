"""The report-now response times as a KPI spec (docs/domain.md §6.4).

The spec lives with report requests, above the KPI machinery it uses: the KPI package answers
it like any other spec but does not know the report-request tables.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from app.db import Database
from app.kpi.specs import N_, Column, KpiQuery, KpiSpec, from_attrs, no_rows
from app.principal import Principal
from app.reportnow import service
from app.reportnow.schemas import ReportResponseRead, ReportResponsesAnswer


async def _report_responses(
    db: Database, principal: Principal, q: KpiQuery, now: datetime
) -> BaseModel:
    """The answer of ``GET /v1/kpis/report-requests`` (its route lives with report requests)."""
    return await service.response_times(db, principal, q.period, now=now)


REPORT_REQUESTS = KpiSpec(
    name="report_requests",
    title=N_("Report-now response times"),
    answer=ReportResponsesAnswer,
    doc="Response times per organisation to the report requests made in the period.",
    fetch=no_rows,  # answered_by reads its rows
    read=from_attrs(ReportResponseRead),
    filters=(),
    answered_by=_report_responses,
    routed=False,
    calendar=False,
    notes=(),
    key="organisation_name",
    columns=(
        Column("targeted"),
        Column("answered"),
        Column("answered_within_deadline"),
        Column("share_within_deadline", chart=True, share=True),
        Column("median_answer_seconds"),
    ),
)
