"""FHIR R4 endpoints (``application/fhir+json``): metadata, registry and capacity reads and
searches, capacity writes as MeasureReports, transfers as ServiceRequest and Task negotiation.
Every error here is an ``OperationOutcome``.

Not in the OpenAPI document: FHIR clients read the server's contract from ``/fhir/metadata``
(the CapabilityStatement), and the resource shapes are FHIR's, not this API's schemas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request, Response

from app.audit.service import AuditContext
from app.db import utcnow
from app.enums import Role
from app.errors import MalformedRequest, NotFound
from app.exchange import fhir, task_service
from app.exchange import service as exchange_service
from app.http.deps import (
    PrincipalDep,
    SessionDep,
    SettingsDep,
    WriteDep,
    authenticated,
    public,
    requires,
)
from app.principal import Principal

router = APIRouter(prefix="/fhir", tags=["fhir"], include_in_schema=False)

READABLE = {"Organization", "Location", "HealthcareService", "Measure", "MeasureReport"}
SEARCHABLE = READABLE - {"Measure"}
IdPath = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


def fhir_response(
    resource: Mapping[str, Any], *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """The resource, validated against its R4B model, as ``application/fhir+json``."""
    return Response(
        orjson.dumps(fhir.validated(resource)),
        status_code=status_code,
        media_type=fhir.FHIR_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def outcome_response(
    status: int,
    detail: str,
    errors: Sequence[Mapping[str, Any]] | None,
    headers: Mapping[str, str] | None,
) -> Response:
    """Every error under ``/fhir`` (registered with ``errors.render_errors_under``)."""
    body = fhir.operation_outcome(status=status, detail=detail, errors=errors)
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=fhir.FHIR_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def audit_context_of(
    request: Request, principal: Principal, event: tuple[str, str]
) -> AuditContext:
    """The access-log context of a FHIR request on placement data. ``event`` (code, action) is
    also what a refusal (403) is logged as, in its own transaction, as on the placement routes.
    """
    request.state.audit_event = event
    return AuditContext(
        principal=principal,
        on_behalf_of=(request.headers.get("X-On-Behalf-Of") or "")[:200] or None,
        access_point=request.client.host if request.client is not None else None,
        request_id=request.scope.get("state", {}).get("request_id"),
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


async def _json_body(request: Request) -> Any:
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequest(
            f"The body is not JSON: {exc}", errors=[{"pointer": "$this", "detail": "not JSON"}]
        ) from exc


@router.get("/metadata", dependencies=[public()])
async def metadata(request: Request) -> Response:
    """The CapabilityStatement: what this FHIR server offers (no key needed)."""
    return fhir_response(
        fhir.capability_statement(
            base_url=_base(request), version=request.app.version, now=utcnow()
        )
    )


# --- transfers as Task negotiation (before the generic routes, which they would match) --------


@router.get("/ServiceRequest/{resource_id}", dependencies=[authenticated()])
async def read_service_request(
    resource_id: IdPath, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """A placement as a pseudonymous ServiceRequest (the read is access-logged)."""
    resource = await task_service.read_service_request(
        session,
        audit_context_of(request, principal, ("fhir.service_request.read", "R")),
        resource_id,
        now=utcnow(),
    )
    return fhir_response(resource)


@router.get("/Task", dependencies=[authenticated()])
async def search_tasks(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    """A provider system's worklist: ``owner``, ``status``, ``focus``, ``_count``."""
    bundle = await task_service.search_tasks(
        session,
        audit_context_of(request, principal, ("fhir.task.search", "E")),
        task_service.TaskSearch(params=request.query_params.multi_items(), base_url=_base(request)),
        now=utcnow(),
    )
    return fhir_response(bundle)


@router.get("/Task/{resource_id}", dependencies=[authenticated()])
async def read_task(
    resource_id: IdPath, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    """One hold as a Task (the read is access-logged)."""
    resource = await task_service.read_task(
        session,
        audit_context_of(request, principal, ("fhir.task.read", "R")),
        resource_id,
        now=utcnow(),
    )
    return fhir_response(resource)


@router.put("/Task/{resource_id}", dependencies=[authenticated()])
async def answer_task(
    resource_id: IdPath, request: Request, write: WriteDep, settings: SettingsDep
) -> Response:
    """The owner answers: ``accepted`` (accept) or ``rejected`` with a decline code (decline)."""
    data = await _json_body(request)
    resource = await task_service.answer_task(
        write.session,
        audit_context_of(request, write.principal, ("fhir.task.update", "U")),
        resource_id,
        data,
        now=utcnow(),
        settings=settings,
    )
    return await write.commit_response(fhir_response(resource))


@router.get("/{resource_type}", dependencies=[authenticated()])
async def search(
    resource_type: Annotated[str, Path(max_length=40)],
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> Response:
    if resource_type not in SEARCHABLE:
        raise NotFound(f"No search for {resource_type} here; see /fhir/metadata.")
    bundle = await exchange_service.search(
        session,
        principal,
        exchange_service.SearchRequest(
            resource_type=resource_type,
            params=request.query_params.multi_items(),
            base_url=_base(request),
        ),
        now=utcnow(),
    )
    return fhir_response(bundle)


@router.get("/{resource_type}/{resource_id}", dependencies=[authenticated()])
async def read(
    resource_type: Annotated[str, Path(max_length=40)],
    resource_id: IdPath,
    session: SessionDep,
    principal: PrincipalDep,
) -> Response:
    if resource_type not in READABLE:
        raise NotFound(f"No {resource_type} resources here; see /fhir/metadata.")
    resource = await exchange_service.read(
        session, principal, resource_type, resource_id, now=utcnow()
    )
    return fhir_response(resource)


@router.post("/MeasureReport", dependencies=[requires(Role.PROVIDER)])
async def create_measure_report(
    request: Request, write: WriteDep, settings: SettingsDep
) -> Response:
    """A provider's capacity as a MeasureReport (the rules of PUT /v1/units/{id}/capacity)."""
    data = await _json_body(request)
    location, resource = await exchange_service.post_measure_report(
        write.session, write.principal, data, now=utcnow(), settings=settings
    )
    return await write.commit_response(
        fhir_response(
            resource, status_code=201, headers={"Location": f"{_base(request)}/{location}"}
        )
    )


@router.post("", dependencies=[requires(Role.PROVIDER)])
async def transaction(request: Request, write: WriteDep, settings: SettingsDep) -> Response:
    """A transaction Bundle of MeasureReports: all written or none."""
    data = await _json_body(request)
    bundle = await exchange_service.post_transaction(
        write.session, write.principal, data, now=utcnow(), settings=settings
    )
    return await write.commit_response(fhir_response(bundle))
