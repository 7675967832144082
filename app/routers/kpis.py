"""KPI endpoints (docs/domain.md §14): aggregates as JSON or CSV, baselines, inflow reports."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

import orjson
from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import BaseModel

from app.db import utcnow
from app.deps import DbDep, PrincipalDep, SettingsDep, WriteDep, requires
from app.enums import CareType, Role
from app.kpi import service as kpi_service
from app.kpi.schemas import (
    AcpAnswer,
    BaselineIn,
    BaselineRead,
    CapacityAnswer,
    CracksAnswer,
    Definition,
    DemandForecastAnswer,
    EscalationAnswer,
    GgzAnswer,
    GroupBy,
    GuaranteeAnswer,
    InflowAnswer,
    InflowReportIn,
    InflowReportResult,
    LeadTimeAnswer,
    ShortageAnswer,
    WaitingAnswer,
    WrongBedAnswer,
)
from app.routers.common import WRITE_PROBLEMS
from app.schemas import problem_responses

router = APIRouter(prefix="/v1", tags=["kpis"])

FromQ = Annotated[date, Query(alias="from", description="First local date (inclusive)")]
ToQ = Annotated[date, Query(description="Local date after the period (exclusive)")]
GroupQ = Annotated[GroupBy | None, Query(description="Split the answer by one dimension")]
AgeMinQ = Annotated[
    int | None, Query(ge=0, le=120, description="Only patients of at least this age (75)")
]
DefinitionQ = Annotated[
    Definition, Query(description="broad (default) or narrow: awaited care type wlz_*")
]
HospitalQ = Annotated[uuid.UUID | None, Query(description="Referring hospital (organisation id)")]
SubregionQ = Annotated[
    str | None,
    Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="Subregion id or code"),
]
CareTypeQ = Annotated[CareType | None, Query(description="Only this awaited care type")]
AcceptH = Annotated[str | None, Header(alias="Accept", max_length=500)]

KPI_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    **problem_responses(400, 401, 403, 422),
}


def _answer(model: BaseModel, accept: str | None) -> Response:
    if accept is not None and "text/csv" in accept:
        return Response(kpi_service.render_csv(model), media_type="text/csv; charset=utf-8")
    return Response(
        orjson.dumps(model.model_dump(mode="json", by_alias=True)), media_type="application/json"
    )


def _query(kpi: str, start: date, end: date, **kw: object) -> kpi_service.KpiQuery:
    q = kpi_service.KpiQuery(kpi=kpi, period=kpi_service.make_period(start, end), **kw)  # type: ignore[arg-type]
    kpi_service.validate(q)
    return q


@router.get(
    "/kpis/wrong-bed-days",
    response_model=WrongBedAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def wrong_bed_days(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = None,
    age_min: AgeMinQ = None,
    definition: DefinitionQ = "broad",
    hospital: HospitalQ = None,
    subregion: SubregionQ = None,
    care_type: CareTypeQ = None,
) -> Response:
    """Verkeerde-bed days (docs/domain.md §6.1): midnight census of medically-ready intervals;
    like every KPI, for the caller's region (admin: every region)."""
    q = _query(
        "wrong_bed_days",
        from_,
        to,
        group_by=group_by,
        age_min=age_min,
        definition=definition,
        hospital=hospital,
        subregion=subregion,
        care_type=care_type,
    )
    return _answer(await kpi_service.wrong_bed_days(db, principal, q, now=utcnow()), accept)


@router.get(
    "/kpis/inflow",
    response_model=InflowAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def inflow(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = None,
    age_min: AgeMinQ = None,
    subregion: SubregionQ = None,
) -> Response:
    """SEH75 / HAP75 / RAV75 from inflow reports (docs/domain.md §6.2), per source."""
    q = _query("inflow", from_, to, group_by=group_by, age_min=age_min, subregion=subregion)
    return _answer(await kpi_service.inflow(db, principal, q, now=utcnow()), accept)


@router.get(
    "/kpis/lead-times",
    response_model=LeadTimeAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def lead_times(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = "care_type",
    age_min: AgeMinQ = None,
    definition: DefinitionQ = "broad",
    hospital: HospitalQ = None,
    subregion: SubregionQ = None,
    care_type: CareTypeQ = None,
) -> Response:
    """time_to_triage and time_to_placement, median and P90 (docs/domain.md §6.4)."""
    q = _query(
        "lead_times",
        from_,
        to,
        group_by=group_by,
        age_min=age_min,
        definition=definition,
        hospital=hospital,
        subregion=subregion,
        care_type=care_type,
    )
    return _answer(await kpi_service.lead_times(db, principal, q, now=utcnow()), accept)


@router.get(
    "/kpis/escalations",
    response_model=EscalationAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def escalations(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = None,
    age_min: AgeMinQ = None,
    definition: DefinitionQ = "broad",
    hospital: HospitalQ = None,
    subregion: SubregionQ = None,
    care_type: CareTypeQ = None,
) -> Response:
    """Escalation rate, escalations by level, decline reasons (docs/domain.md §6.4, §8)."""
    q = _query(
        "escalations",
        from_,
        to,
        group_by=group_by,
        age_min=age_min,
        definition=definition,
        hospital=hospital,
        subregion=subregion,
        care_type=care_type,
    )
    return _answer(await kpi_service.escalations(db, principal, q, now=utcnow()), accept)


@router.get(
    "/kpis/capacity",
    response_model=CapacityAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def capacity(
    db: DbDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = "care_type",
    subregion: SubregionQ = None,
    care_type: CareTypeQ = None,
) -> Response:
    """Stale-report share and occupancy at each local midnight (docs/domain.md §6.4)."""
    q = _query("capacity", from_, to, group_by=group_by, subregion=subregion, care_type=care_type)
    answer = await kpi_service.capacity(db, principal, q, now=utcnow(), settings=settings)
    return _answer(answer, accept)


@router.get(
    "/kpis/ggz-crisis-within-norm",
    response_model=GgzAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def ggz_crisis_within_norm(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = None,
    subregion: SubregionQ = None,
) -> Response:
    """GGZ crisis assessment within the urgency norm (docs/domain.md §6.3, §12.4)."""
    q = _query("ggz_crisis_within_norm", from_, to, group_by=group_by, subregion=subregion)
    answer = await kpi_service.ggz_crisis_within_norm(db, principal, q, now=utcnow())
    return _answer(answer, accept)


@router.get(
    "/kpi-baselines",
    response_model=list[BaselineRead],
    responses=problem_responses(400, 401, 403, 422),
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def list_baselines(db: DbDep, principal: PrincipalDep) -> list[BaselineRead]:
    """Loaded baselines (docs/domain.md §12.2)."""
    return await kpi_service.list_baselines(db, principal)


@router.put(
    "/kpi-baselines",
    response_model=list[BaselineRead],
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def put_baselines(
    body: Annotated[list[BaselineIn], Body(min_length=1, max_length=200)], write: WriteDep
) -> Response:
    """Admins load fixed baselines; one per (kpi, year, scope), a re-load replaces it."""
    items = await kpi_service.put_baselines(write.session, write.principal, body, now=utcnow())
    return await write.commit(items)


@router.post(
    "/inflow-reports",
    response_model=InflowReportResult,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER, Role.REFERRER)],
)
async def report_inflow(body: InflowReportIn, write: WriteDep) -> Response:
    """Aggregated SEH/HAP/RAV contacts (docs/domain.md §6.2); a re-sent line replaces its count."""
    result = await kpi_service.report_inflow(write.session, write.principal, body, now=utcnow())
    return await write.commit(result)


# --- admission guarantee (docs/domain.md §6.5) ----------------------------------------------------


@router.get(
    "/kpis/admission-guarantee",
    response_model=GuaranteeAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def admission_guarantee(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = None,
    age_min: AgeMinQ = None,
    hospital: HospitalQ = None,
    subregion: SubregionQ = None,
    care_type: Annotated[
        CareType | None, Query(description="respite or observation (default: both)")
    ] = None,
) -> Response:
    """Share of respite and observation requests placed within 24 h (docs/domain.md §6.5)."""
    q = _query(
        "admission_guarantee",
        from_,
        to,
        group_by=group_by,
        age_min=age_min,
        hospital=hospital,
        subregion=subregion,
        care_type=care_type,
    )
    return _answer(await kpi_service.admission_guarantee(db, principal, q, now=utcnow()), accept)


# --- Wlz-crisis waiting (docs/domain.md §6.7) ----------------------------------------------------


@router.get(
    "/kpis/wlz-crisis-waiting",
    response_model=WaitingAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def wlz_crisis_waiting(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    hospital: HospitalQ = None,
    subregion: SubregionQ = None,
) -> Response:
    """Patients waiting for a Wlz-crisis place at each local midnight of the period, up to now
    (docs/domain.md §6.7)."""
    q = _query("wlz_crisis_waiting", from_, to, hospital=hospital, subregion=subregion)
    return _answer(await kpi_service.wlz_crisis_waiting(db, principal, q, now=utcnow()), accept)


# --- advance care planning (docs/domain.md §6.8) --------------------------------------------------


@router.get(
    "/kpis/advance-care-planning",
    response_model=AcpAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def advance_care_planning(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = None,
    age_min: Annotated[
        int | None, Query(ge=65, le=120, description="A higher age floor than 65")
    ] = None,
    definition: DefinitionQ = "broad",
    hospital: HospitalQ = None,
    subregion: SubregionQ = None,
    care_type: CareTypeQ = None,
) -> Response:
    """Share of referrals of patients aged 65+ with advance care planning recorded, by
    ``group_by`` (also ``patient_group``) (docs/domain.md §6.8)."""
    q = _query(
        "advance_care_planning",
        from_,
        to,
        group_by=group_by,
        age_min=age_min,
        definition=definition,
        hospital=hospital,
        subregion=subregion,
        care_type=care_type,
    )
    return _answer(await kpi_service.advance_care_planning(db, principal, q, now=utcnow()), accept)


# --- between the cracks (docs/domain.md §6.9) -----------------------------------------------------


@router.get(
    "/kpis/between-the-cracks",
    response_model=CracksAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def between_the_cracks(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    group_by: GroupQ = None,
    age_min: AgeMinQ = None,
    definition: DefinitionQ = "broad",
    hospital: HospitalQ = None,
    subregion: SubregionQ = None,
    care_type: CareTypeQ = None,
) -> Response:
    """Requests over their care type's norm, cancelled without a place, or re-referred within
    30 days, by ``group_by`` (also ``patient_group``) (docs/domain.md §6.9)."""
    q = _query(
        "between_the_cracks",
        from_,
        to,
        group_by=group_by,
        age_min=age_min,
        definition=definition,
        hospital=hospital,
        subregion=subregion,
        care_type=care_type,
    )
    return _answer(await kpi_service.between_the_cracks(db, principal, q, now=utcnow()), accept)


# --- shortage (docs/domain.md §6.10) --------------------------------------------------------------


@router.get(
    "/kpis/shortage",
    response_model=ShortageAnswer,
    responses=KPI_RESPONSES,
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def shortage(
    db: DbDep,
    principal: PrincipalDep,
    from_: FromQ,
    to: ToQ,
    accept: AcceptH = None,
    subregion: SubregionQ = None,
    care_type: CareTypeQ = None,
) -> Response:
    """Holds refused for no capacity and searches with no result, per local date, care type and
    subregion (docs/domain.md §6.10)."""
    q = _query("shortage", from_, to, subregion=subregion, care_type=care_type)
    return _answer(await kpi_service.shortage(db, principal, q, now=utcnow()), accept)


# --- demand forecast (docs/domain.md §6.6) --------------------------------------------------------


@router.get(
    "/forecast/demand",
    response_model=DemandForecastAnswer,
    responses=problem_responses(400, 401, 403, 422),
    dependencies=[requires(Role.ANALYST, Role.TRIAGIST)],
)
async def demand_forecast(
    db: DbDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    care_type: CareTypeQ = None,
    subregion: SubregionQ = None,
    history_days: Annotated[
        int, Query(ge=28, le=730, description="Complete local days of history to learn from")
    ] = 365,
) -> Response:
    """Expected requests per day for the next 14 days per care type and subregion, with an 80 %
    interval and the places available now; the method's back-test error on the same history
    (docs/domain.md §6.6)."""
    answer = await kpi_service.demand_forecast(
        db,
        principal,
        now=utcnow(),
        settings=settings,
        history_days=history_days,
        care_type=care_type,
        subregion=subregion,
    )
    return _answer(answer, None)
