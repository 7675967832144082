"""Triage endpoints (docs/domain.md §4, §12.1): rule sets, questionnaire, triage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.db import utcnow
from app.enums import Role
from app.flows import triage as triage_flow
from app.flows.triage import TriageAdvice
from app.http.audited import AuditCtx, AuditedRoute
from app.http.deps import (
    DbDep,
    SessionDep,
    SettingsDep,
    WriteDep,
    authenticated,
    requires,
)
from app.routers.common import READ_PROBLEMS, WRITE_PROBLEMS
from app.schemas import problem_responses
from app.triage import service as triage_service
from app.triage.schemas import (
    Questionnaire,
    RuleSetList,
    RuleSetRead,
    RuleSetUpload,
    TriageRequest,
)

router = APIRouter(prefix="/v1/triage", tags=["triage"])
# A triage may touch a placement: a refusal (403) there is written to the NEN 7513 access log.
audited = APIRouter(prefix="/v1", tags=["triage"], route_class=AuditedRoute)

# 409: the active rule set was stored under an engine version that no longer loads it.
READ_OR_CONFLICT = {**READ_PROBLEMS, **problem_responses(409)}

Version = Annotated[
    str, Path(max_length=60, pattern=r"^[a-z0-9][a-z0-9_.-]*$", examples=["west-2026.1"])
]


@audited.post(
    "/triage",
    response_model=TriageAdvice,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.TRIAGIST, Role.REFERRER)],
)
async def triage(
    body: TriageRequest, write: WriteDep, db: DbDep, ctx: AuditCtx, settings: SettingsDep
) -> Response:
    """Answers in, advice out: outcome, care types, target group, urgency, rationale, open
    questions in asking order; with ``search`` the free places, with ``placement_id`` stored on
    the placement (requested -> triaged)."""
    advice = await triage_flow.triage(write.session, db, ctx, body, now=utcnow(), settings=settings)
    return await write.commit(advice)


@router.get(
    "/rules", response_model=RuleSetList, responses=READ_PROBLEMS, dependencies=[authenticated()]
)
async def list_rule_sets(session: SessionDep) -> RuleSetList:
    """Every rule-set version with its check report; the active one is marked."""
    return await triage_service.list_rule_sets(session, now=utcnow())


@router.post(
    "/rules",
    status_code=201,
    response_model=RuleSetRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def load_rule_set(body: RuleSetUpload, write: WriteDep) -> Response:
    """Admin: load a region's own rule set (YAML text). Refused sets are a 422 naming rule and
    line; a set with check errors is stored but cannot be activated."""
    result = await triage_service.load_rule_set(write.session, write.principal, body, now=utcnow())
    write.headers["Location"] = f"/v1/triage/rules/{result.version}"
    return await write.commit(result, status_code=201)


@router.get(
    "/rules/{version}",
    response_model=RuleSetRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_rule_set(version: Version, session: SessionDep) -> RuleSetRead:
    """One version with its YAML source and check report."""
    return await triage_service.get_rule_set(session, version, now=utcnow())


@router.post(
    "/rules/{version}/activate",
    response_model=RuleSetRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def activate_rule_set(version: Version, write: WriteDep) -> Response:
    """Admin: make this version the one every triage uses (409 with the report on errors)."""
    result = await triage_service.activate_rule_set(
        write.session, write.principal, version, now=utcnow()
    )
    return await write.commit(result)


@router.get(
    "/questions",
    response_model=Questionnaire,
    responses=READ_OR_CONFLICT,
    dependencies=[authenticated()],
)
async def questionnaire(session: SessionDep) -> Questionnaire:
    """The active rule set's questions in asking order, with Dutch and English text and help."""
    return await triage_service.questionnaire(session, now=utcnow())
