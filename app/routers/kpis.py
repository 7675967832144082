"""KPI endpoints (docs/domain.md §14): one route per KPI spec (``app.kpi.specs``), answered as
JSON or CSV by the one KPI service function; baselines, inflow reports and the demand forecast."""

from __future__ import annotations

import inspect
import uuid
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Query, Response
from pydantic import BaseModel

from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Role
from app.http.deps import DbDep, PrincipalDep, SettingsDep, WriteDep, requires
from app.kpi import service as kpi_service
from app.kpi.schemas import (
    BaselineIn,
    BaselineRead,
    Definition,
    DemandForecastAnswer,
    GroupBy,
    InflowReportIn,
    InflowReportResult,
)
from app.kpi.specs import SPECS, KpiSpec
from app.principal import Principal
from app.routers.common import WRITE_PROBLEMS
from app.schemas import problem_responses

router = APIRouter(prefix="/v1", tags=["kpis"])

FromQ = Annotated[date, Query(alias="from", description="First local date (inclusive)")]
ToQ = Annotated[date, Query(description="Local date after the period (exclusive)")]
GroupQ = Annotated[GroupBy | None, Query(description="Split the answer by one dimension")]
AGE_MIN_DOC = "Only patients of at least this age (75)"
CARE_TYPE_DOC = "Only this awaited care type"
DefinitionQ = Annotated[
    Definition, Query(description="broad (default) or narrow: awaited care type wlz_*")
]
HospitalQ = Annotated[uuid.UUID | None, Query(description="Referring hospital (organisation id)")]
SubregionQ = Annotated[
    str | None,
    Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="Subregion id or code"),
]
CareTypeQ = Annotated[CareType | None, Query(description=CARE_TYPE_DOC)]
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


def _filter_param(spec: KpiSpec[Any], name: str) -> inspect.Parameter:
    """The query parameter of one of the spec's filters."""
    doc = spec.param_docs.get(name)
    kind = inspect.Parameter.KEYWORD_ONLY
    if name == "age_min":
        age = Query(ge=spec.age_floor, le=120, description=doc or AGE_MIN_DOC)
        return inspect.Parameter(name, kind, default=None, annotation=Annotated[int | None, age])
    if name == "definition":
        return inspect.Parameter(name, kind, default="broad", annotation=DefinitionQ)
    if name == "hospital":
        return inspect.Parameter(name, kind, default=None, annotation=HospitalQ)
    if name == "subregion":
        return inspect.Parameter(name, kind, default=None, annotation=SubregionQ)
    care = Query(description=doc or CARE_TYPE_DOC)
    return inspect.Parameter(name, kind, default=None, annotation=Annotated[CareType | None, care])


def _kpi_route(spec: KpiSpec[Any]) -> None:
    """``GET /v1/kpis/<slug>``: the spec's question as query parameters, its answer as JSON or
    CSV (Accept: text/csv)."""

    async def endpoint(
        db: Database,
        principal: Principal,
        settings: Settings,
        from_: date,
        to: date,
        accept: str | None = None,
        group_by: str | None = None,
        **filters: Any,
    ) -> Response:
        q = kpi_service.KpiQuery(
            kpi=spec.name,
            period=kpi_service.make_period(from_, to),
            group_by=group_by,
            **filters,
        )
        answer = await kpi_service.answer(db, principal, spec, q, now=utcnow(), settings=settings)
        return _answer(answer, accept)

    kind = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("db", kind, annotation=DbDep),
        inspect.Parameter("principal", kind, annotation=PrincipalDep),
        inspect.Parameter("settings", kind, annotation=SettingsDep),
        inspect.Parameter("from_", kind, annotation=FromQ),
        inspect.Parameter("to", kind, annotation=ToQ),
        inspect.Parameter("accept", kind, default=None, annotation=AcceptH),
    ]
    if spec.has_group_by:
        params.append(
            inspect.Parameter("group_by", kind, default=spec.group_default, annotation=GroupQ)
        )
    params += [_filter_param(spec, name) for name in spec.filters]
    endpoint.__signature__ = inspect.Signature(params, return_annotation=Response)  # type: ignore[attr-defined]
    endpoint.__doc__ = spec.doc
    router.add_api_route(
        f"/kpis/{spec.slug}",
        endpoint,
        methods=["GET"],
        name=spec.name,
        response_model=spec.answer,
        responses=KPI_RESPONSES,
        dependencies=[requires(*spec.roles)],
    )


for _spec in SPECS.values():
    if _spec.routed:
        _kpi_route(_spec)


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
