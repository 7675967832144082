"""Placement pages: the queue and archive ``/ui/placements``, the referrer's desk
``/ui/placements/new``, one placement ``/ui/placements/{id}`` with triage, search, hold and the
provider's and case owner's actions.

Every page that shows patient data writes its NEN 7513 rows through the placement services
(naming the person); writes are committed before the redirect that answers them. Forms are plain
HTML forms (they work without JavaScript); htmx only adds the live advice and live refreshes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from app.audit.service import AuditContext
from app.capacity import service as capacity_service
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Feature, Role, Sex, TargetGroup
from app.errors import DomainError, InvalidInput
from app.flows import search as search_flow
from app.flows import triage as triage_flow
from app.http.deps import SessionDep
from app.placement import cases as placement_cases
from app.placement import service as placement_service
from app.placement import views
from app.placement.schemas import (
    CancelIn,
    DeclineIn,
    EventIn,
    HoldCreate,
    OccurredIn,
    OriginSetting,
    OwnerIn,
    PlacementCreate,
)
from app.placement.states import CANCEL_REASONS, DECLINE_REASONS, State
from app.realtime import service as realtime_service
from app.triage import service as triage_service
from app.triage.preview import preview
from app.triage.schemas import TriageRequest
from app.web.deps import AuditedPageRoute, WebAudit, WebUser
from app.web.pagekit import TZ
from app.web.templating import render

router = APIRouter(include_in_schema=False, route_class=AuditedPageRoute)
# Reads of one placement log their own refusals (``views.placement_detail``).
detail_router = APIRouter(include_in_schema=False)

NTS_CODES = ["U0", "U1", "U2", "U3", "U4", "U5"]


def _db(request: Request) -> tuple[Database, Settings]:
    return request.app.state.db, request.app.state.settings


def _can_refer(person: Any) -> bool:
    return bool(person.is_admin or {Role.REFERRER, Role.TRIAGIST} & person.roles)


async def _queue_context(request: Request, ctx: AuditContext) -> dict[str, Any]:
    db, settings = _db(request)
    params = request.query_params
    tab = "archive" if params.get("tab") == "archive" else "queue"
    view = "list" if params.get("view") == "list" else "board"
    search = (params.get("q") or "").strip()[:100] or None
    values: dict[str, Any] = {"tab": tab, "view": view, "search": search or ""}
    async with db.sessionmaker() as session:
        if tab == "archive":
            items, nxt = await views.placement_archive(
                session,
                ctx,
                now=utcnow(),
                settings=settings,
                search=search,
                cursor=params.get("cursor") or None,
            )
            values |= {"archive": items, "next_cursor": nxt}
        else:
            values["queue"] = await views.placement_queue(
                session, ctx, now=utcnow(), settings=settings, search=search
            )
    return values


@router.get("/ui/placements")
async def placements_page(request: Request, person: WebUser, ctx: WebAudit) -> Response:
    values = await _queue_context(request, ctx)
    db, _ = _db(request)
    values |= {
        "after": await realtime_service.latest_id(db),
        "can_refer": _can_refer(person),
        "created": request.query_params.get("created"),
    }
    return render(request, "placements/page.html", values)


@router.get("/ui/placements/queue")
async def placements_fragment(request: Request, person: WebUser, ctx: WebAudit) -> Response:
    values = await _queue_context(request, ctx)
    return render(request, "placements/queue.html", values)


# --- the referrer's desk ---------------------------------------------------------------------


def _form_context(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "origins": list(OriginSetting),
        "sexes": list(Sex),
        "care_types": list(CareType),
        "target_groups": list(TargetGroup),
        "features": list(Feature),
        "nts_codes": NTS_CODES,
    }


def _require_referrer(person: Any) -> None:
    person.require(Role.REFERRER, Role.TRIAGIST)


@router.get("/ui/placements/new")
async def new_placement_page(request: Request, person: WebUser) -> Response:
    _require_referrer(person)
    values = {"origin_setting": "hospital_ward", "urgency_code": "U3", "features": []}
    return render(request, "placements/new.html", _form_context(values, {}))


def _local_datetime(text: str) -> datetime | None:
    """A ``datetime-local`` field (the region's time) as an aware datetime; empty = None."""
    text = text.strip()
    if not text:
        return None
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date and time") from None
    return naive.replace(tzinfo=TZ) if naive.tzinfo is None else naive


def _referral_body(form: FormData) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The form as a ``PlacementCreate`` body, the values to show again, and field errors."""
    values: dict[str, Any] = {
        k: str(form.get(k) or "").strip()[:500]
        for k in (
            "patient_identifier",
            "birth_year",
            "sex",
            "origin_setting",
            "medically_ready_at",
            "care_type",
            "target_group",
            "care_needs",
            "urgency_code",
            "subregion",
        )
    }
    values["features"] = [str(f) for f in form.getlist("features")][:10]
    values["consent"] = form.get("consent") == "1"
    errors: dict[str, str] = {}
    body: dict[str, Any] = {
        "patient_identifier": values["patient_identifier"],
        "sex": values["sex"] or None,
        "origin_setting": values["origin_setting"] or None,
        "care_type": values["care_type"] or None,
        "target_group": values["target_group"] or None,
        "features": values["features"],
        "urgency": {"system": "nts", "code": values["urgency_code"] or "U3"},
        "care_needs": values["care_needs"] or None,
        "subregion": values["subregion"] or None,
    }
    try:
        body["birth_year"] = int(values["birth_year"])
    except ValueError:
        errors["birth_year"] = "Enter a year, e.g. 1941."
        body["birth_year"] = 1900
    try:
        ready = _local_datetime(values["medically_ready_at"])
    except ValueError:
        errors["medically_ready_at"] = "Enter a date and time."
        ready = None
    body["medically_ready_at"] = None if ready is None else ready.isoformat()
    if values["consent"]:
        body["consent_given_at"] = utcnow().isoformat()
    return body, values, errors


def _field_errors(exc: ValidationError | InvalidInput) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(exc, ValidationError):
        for detail in exc.errors():
            loc = [str(x) for x in detail["loc"]]
            out.setdefault(loc[0] if loc else "form", detail["msg"])
    else:
        for item in exc.errors or []:
            pointer = str(item.get("pointer", ""))
            name = pointer.removeprefix("#/").split("/")[0] or "form"
            out.setdefault(name, str(item.get("detail", "")))
    return out


@router.post("/ui/placements/new")
async def create_placement(request: Request, person: WebUser, ctx: WebAudit) -> Response:
    """A referral from the transfer desk: the identifier is pseudonymised by the service (only
    its key is stored); a field the service refuses is shown next to its field."""
    _require_referrer(person)
    db, settings = _db(request)
    body, values, errors = _referral_body(await request.form())
    if not errors:
        try:
            create = PlacementCreate.model_validate(body)
            async with db.sessionmaker() as session:
                created = await placement_service.create_placement(
                    session, ctx, create, now=utcnow(), settings=settings
                )
                await session.commit()
            return RedirectResponse(f"/ui/placements/{created.id}?created=1", status_code=303)
        except (ValidationError, InvalidInput) as exc:
            errors = _field_errors(exc)
    return render(request, "placements/new.html", _form_context(values, errors), status_code=422)


# --- one placement -----------------------------------------------------------------------------


def _answers(form: FormData, question_ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for qid in question_ids:
        value = str(form.get(f"q_{qid}") or "")
        if value == "true":
            out[qid] = True
        elif value == "false":
            out[qid] = False
        elif value:
            out[qid] = value[:60]
    return out


async def _detail_context(
    request: Request,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    *,
    answers: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    db, settings = _db(request)
    now = utcnow()
    detail = await views.placement_detail(db, ctx, placement_id, now=now)
    p = detail.placement
    values: dict[str, Any] = {
        "d": detail,
        "p": p,
        "error": error,
        "decline_reasons": DECLINE_REASONS,
        "cancel_reasons": CANCEL_REASONS,
        "care_types": list(CareType),
        "after": await realtime_service.latest_id(db),
        "escalate": request.query_params.get("escalate") == "1",
        "created": request.query_params.get("created") == "1",
    }
    if p.state is State.REQUESTED and detail.can_manage:
        async with db.sessionmaker() as session:
            values["triage"] = await preview(
                session, answers or {}, urgency_level=p.urgency.level, now=now
            )
    if p.state is State.TRIAGED and detail.can_manage:
        values["search"] = await search_flow.search_for_placement(
            db,
            ctx,
            placement_id,
            capacity_service.SearchQuery(care_types=(), escalate=values["escalate"], limit=30),
            now=now,
            settings=settings,
            scopes=request.app.state.scope_resolver,
        )
    return values


@detail_router.get("/ui/placements/{placement_id}")
async def placement_page(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    values = await _detail_context(request, ctx, placement_id)
    return render(request, "placements/detail.html", values)


@detail_router.get("/ui/placements/{placement_id}/panel")
async def placement_panel(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    """The changing part of the page (state, actions, search, timeline), for live refresh."""
    values = await _detail_context(request, ctx, placement_id)
    return render(request, "placements/panel.html", values)


@router.post("/ui/placements/{placement_id}/triage/preview")
async def triage_preview(request: Request, placement_id: uuid.UUID, person: WebUser) -> Response:
    """The advice for the answers so far (nothing stored, no patient data read)."""
    person.require(Role.TRIAGIST, Role.REFERRER)
    db, _ = _db(request)
    form = await request.form()
    try:
        level = int(str(form.get("urgency_level") or ""))
    except ValueError:
        level = None
    async with db.sessionmaker() as session:
        active = await triage_service.questionnaire(session, now=utcnow())
        result = await preview(
            session,
            _answers(form, [q.id for q in active.questions]),
            urgency_level=level if level is not None and 0 <= level <= 5 else None,
            now=utcnow(),
        )
    return render(request, "placements/advice.html", {"triage": result})


# The session is typed through its dependency alias: the web layer imports no SQLAlchemy.
Action = Callable[[SessionDep, AuditContext, uuid.UUID, FormData], Awaitable[object]]


async def _act(
    request: Request, ctx: AuditContext, placement_id: uuid.UUID, action: Action
) -> Response:
    """Run one action in its own transaction, committed before the redirect; a refusal other
    than 403 is shown on the placement's page next to the actions."""
    db, _ = _db(request)
    form = await request.form()
    try:
        async with db.sessionmaker() as session:
            await action(session, ctx, placement_id, form)
            await session.commit()
    except ValidationError as exc:
        return await _refused(request, ctx, placement_id, "; ".join(_field_errors(exc).values()))
    except DomainError as exc:
        if exc.status == 403:
            raise
        return await _refused(request, ctx, placement_id, exc.detail, status=exc.status)
    return RedirectResponse(f"/ui/placements/{placement_id}", status_code=303)


async def _refused(
    request: Request, ctx: AuditContext, placement_id: uuid.UUID, message: str, status: int = 422
) -> Response:
    values = await _detail_context(request, ctx, placement_id, error=message)
    return render(request, "placements/detail.html", values, status_code=status)


@router.post("/ui/placements/{placement_id}/triage")
async def triage(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    db, settings = _db(request)

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        active = await triage_service.questionnaire(session, now=utcnow())
        override = str(form.get("override_care_type") or "") or None
        body = TriageRequest.model_validate(
            {
                "answers": _answers(form, [q.id for q in active.questions]),
                "placement_id": str(pid),
                "override_care_type": override,
                "override_reason": str(form.get("override_reason") or "").strip()[:1000] or None,
            }
        )
        await triage_flow.triage(session, db, c, body, now=utcnow(), settings=settings)

    return await _act(request, ctx, placement_id, run)


@router.post("/ui/placements/{placement_id}/hold")
async def hold(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    _, settings = _db(request)

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        body = HoldCreate.model_validate({"unit_id": str(form.get("unit_id") or "")})
        await placement_service.place_hold(session, c, pid, body, now=utcnow(), settings=settings)

    return await _act(request, ctx, placement_id, run)


@router.post("/ui/placements/{placement_id}/accept")
async def accept(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    _, settings = _db(request)

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        await placement_service.accept(
            session, c, pid, OccurredIn(), now=utcnow(), settings=settings
        )

    return await _act(request, ctx, placement_id, run)


def _reason_fields(form: FormData) -> dict[str, str | None]:
    """A decline or cancel form's reason code and free text, as the API's body takes them."""
    text = str(form.get("reason_text") or "").strip()[:500]
    return {"reason": str(form.get("reason") or ""), "reason_text": text or None}


@router.post("/ui/placements/{placement_id}/decline")
async def decline(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    _, settings = _db(request)

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        body = DeclineIn.model_validate(_reason_fields(form))
        await placement_service.decline(session, c, pid, body, now=utcnow(), settings=settings)

    return await _act(request, ctx, placement_id, run)


@router.post("/ui/placements/{placement_id}/admit")
async def admit(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    _, settings = _db(request)

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        await placement_service.admit(
            session, c, pid, OccurredIn(), now=utcnow(), settings=settings
        )

    return await _act(request, ctx, placement_id, run)


@router.post("/ui/placements/{placement_id}/cancel")
async def cancel(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    _, settings = _db(request)

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        body = CancelIn.model_validate(_reason_fields(form))
        await placement_service.cancel(session, c, pid, body, now=utcnow(), settings=settings)

    return await _act(request, ctx, placement_id, run)


@router.post("/ui/placements/{placement_id}/consent")
async def consent(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    _, settings = _db(request)

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        await placement_service.record_event(
            session, c, pid, EventIn(type="consent_given"), now=utcnow(), settings=settings
        )

    return await _act(request, ctx, placement_id, run)


@router.post("/ui/placements/{placement_id}/owner")
async def take_case(
    request: Request, placement_id: uuid.UUID, person: WebUser, ctx: WebAudit
) -> Response:
    """Take the case (``PUT /v1/placements/{id}/owner`` with ``{"action": "take"}``)."""

    async def run(session: SessionDep, c: AuditContext, pid: uuid.UUID, form: FormData) -> None:
        await placement_cases.change_owner(session, c, pid, OwnerIn(action="take"), now=utcnow())

    return await _act(request, ctx, placement_id, run)
