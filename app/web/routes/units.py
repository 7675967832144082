"""The provider's capacity page ``/ui/units``: free places per unit and the offers on them.

Built for a phone first: one card per unit with −/+ and a number field, saved in one tap (htmx
swaps the card; without JavaScript the form posts and the page reloads). The offers (holds) on
the organisation's units can be accepted or declined with a reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from app.audit.service import AuditContext
from app.auth import users as user_service
from app.capacity import service as capacity_service
from app.capacity import status as status_service
from app.capacity.schemas import CapacityReportIn, UnitStateRead, UnitStatusCurrent, UnitStatusIn
from app.config import Settings
from app.db import Database, utcnow
from app.enums import NotAcceptingReason
from app.errors import DomainError, Forbidden, InvalidInput
from app.placement import service as placement_service
from app.placement.schemas import DeclineIn, OccurredIn, PlacementRead
from app.placement.states import State
from app.principal import Principal
from app.reportnow import service as report_service
from app.reportnow.service import Banner
from app.web.deps import AuditedPageRoute, ProviderUser
from app.web.pagekit import TZ
from app.web.templating import render, translator

router = APIRouter(include_in_schema=False)
offers = APIRouter(include_in_schema=False, route_class=AuditedPageRoute)

FIELDS = ("free", "expected_free_24h")


def _organisation(person: Principal) -> uuid.UUID:
    if person.organisation_id is None:
        raise Forbidden("This page shows the units of your organisation; you belong to none.")
    return person.organisation_id


def _ctx(request: Request, person: Principal) -> AuditContext:
    return AuditContext(
        principal=person,
        access_point=request.client.host if request.client is not None else None,
        request_id=request.scope.get("state", {}).get("request_id"),
    )


async def _states(
    request: Request, person: Principal, organisation_id: uuid.UUID
) -> tuple[list[UnitStateRead], dict[uuid.UUID, str]]:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    async with db.sessionmaker() as session:
        states = await capacity_service.organisation_unit_states(
            session, person, organisation_id, now=utcnow(), settings=settings
        )
        names = await user_service.actor_names(
            session, [s.reported_by_id for s in states if s.reported_by_id is not None]
        )
    return states, names


async def _statuses(
    request: Request, states: list[UnitStateRead]
) -> dict[uuid.UUID, UnitStatusCurrent]:
    """Whether each unit takes admissions now (``GET /v1/units/{id}/status``)."""
    db: Database = request.app.state.db
    now = utcnow()
    async with db.sessionmaker() as session:
        return {s.unit_id: await status_service.get_status(session, s.unit_id, now) for s in states}


async def _report_requests(request: Request, organisation_id: uuid.UUID) -> list[Banner]:
    db: Database = request.app.state.db
    async with db.sessionmaker() as session:
        return await report_service.open_for_organisation(session, organisation_id, now=utcnow())


async def _offers(
    request: Request, person: Principal, organisation_id: uuid.UUID
) -> list[PlacementRead]:
    """Placements with a live hold on this organisation's units (each read is access-logged)."""
    db: Database = request.app.state.db
    async with db.sessionmaker() as session:
        items, _ = await placement_service.list_placements(
            session,
            _ctx(request, person),
            placement_service.PlacementQuery(states=(State.OFFERED, State.ACCEPTED), limit=100),
        )
    return [
        p
        for p in items
        if p.current_hold is not None
        and p.current_hold.organisation_id == organisation_id
        and p.current_hold.status == "active"
    ]


async def _page(
    request: Request,
    person: Principal,
    *,
    errors: dict[uuid.UUID, dict[str, str]] | None = None,
    values: dict[uuid.UUID, dict[str, str]] | None = None,
    notice: str | None = None,
    saved: str | None = None,
    status_errors: dict[uuid.UUID, str] | None = None,
    status_code: int = 200,
) -> Response:
    organisation_id = _organisation(person)
    states, names = await _states(request, person, organisation_id)
    statuses = await _statuses(request, states)
    unit_names = {s.unit_id: s.name for s in states}
    return render(
        request,
        "units.html",
        {
            "units": states,
            "reporters": names,
            "offers": await _offers(request, person, organisation_id),
            "report_requests": await _report_requests(request, organisation_id),
            "unit_names": unit_names,
            "errors": errors or {},
            "values": values or {},
            "notice": notice,
            "saved_unit": saved,
            "statuses": statuses,
            "status_errors": status_errors or {},
            "closing_reasons": list(NotAcceptingReason),
        },
        status_code=status_code,
    )


@router.get("/ui/units")
async def units_page(request: Request, person: ProviderUser) -> Response:
    tr = translator(request)
    notices = {
        "accepted": tr("Offer accepted."),
        "declined": tr("Offer declined."),
        "closed": tr("The unit is closed to admissions."),
        "reopened": tr("The unit takes admissions again."),
    }
    saved = request.query_params.get("saved")
    shown = request.query_params.get("offer") or request.query_params.get("status") or ""
    return await _page(request, person, notice=notices.get(shown), saved=saved)


def _parse(form: dict[str, Any]) -> tuple[dict[str, int | None], dict[str, str], dict[str, str]]:
    """The form's counts, the fields that are not whole numbers, and the raw values."""
    tr_errors: dict[str, str] = {}
    parsed: dict[str, int | None] = {}
    raw: dict[str, str] = {}
    for name in FIELDS:
        text = str(form.get(name) or "").strip()
        raw[name] = text
        if not text:
            parsed[name] = None
            continue
        if not text.isdigit() or len(text) > 6:
            tr_errors[name] = "not_a_count"
            continue
        parsed[name] = int(text)
    if parsed.get("free") is None and "free" not in tr_errors:
        tr_errors["free"] = "required"
    return parsed, tr_errors, raw


@router.post("/ui/units/{unit_id}/capacity")
async def report(request: Request, unit_id: uuid.UUID, person: ProviderUser) -> Response:
    """Save one unit's free places (and expected free in 24 h) as a capacity report."""
    tr = translator(request)
    form = dict(await request.form())
    parsed, codes, raw = _parse(form)
    messages = {
        "not_a_count": tr("Enter a whole number of 0 or more."),
        "required": tr("Enter the number of free places."),
    }
    errors = {name: messages[code] for name, code in codes.items()}
    if not errors:
        db: Database = request.app.state.db
        settings: Settings = request.app.state.settings
        try:
            async with db.sessionmaker() as session:
                await capacity_service.report_capacity(
                    session,
                    person,
                    unit_id,
                    CapacityReportIn(
                        free=parsed["free"] or 0, expected_free_24h=parsed["expected_free_24h"]
                    ),
                    now=utcnow(),
                    settings=settings,
                    source="web",
                )
                await session.commit()
        except (InvalidInput, ValidationError) as exc:
            errors = _field_errors(tr, exc)
    is_htmx = request.headers.get("hx-request") == "true"
    if errors:
        if is_htmx:
            return await _card(request, person, unit_id, errors=errors, values=raw)
        return await _page(
            request, person, errors={unit_id: errors}, values={unit_id: raw}, status_code=422
        )
    if is_htmx:
        return await _card(request, person, unit_id, saved=True)
    return RedirectResponse(f"/ui/units?saved={unit_id}#unit-{unit_id}", status_code=303)


def _local_datetime(text: str) -> datetime | None:
    """A ``datetime-local`` field (the region's time) as an aware datetime; empty = None."""
    text = text.strip()
    if not text:
        return None
    naive = datetime.fromisoformat(text)  # ValueError: not a date and time
    return naive.replace(tzinfo=TZ) if naive.tzinfo is None else naive


@router.post("/ui/units/{unit_id}/status")
async def change_status(request: Request, unit_id: uuid.UUID, person: ProviderUser) -> Response:
    """Close a unit to admissions (reason, detail, optional until) or reopen it: the service of
    ``PUT /v1/units/{id}/status``; another organisation's unit is refused (403)."""
    tr = translator(request)
    form = await request.form()
    accepting = str(form.get("accepting") or "") == "true"
    db: Database = request.app.state.db
    try:
        until = None if accepting else _local_datetime(str(form.get("until") or ""))
        body = UnitStatusIn.model_validate(
            {"accepting": True}
            if accepting
            else {
                "accepting": False,
                "reason": str(form.get("reason") or "") or None,
                "detail": str(form.get("detail") or "").strip()[:500] or None,
                "until": until,
            }
        )
        async with db.sessionmaker() as session:
            await status_service.set_status(session, person, unit_id, body, now=utcnow())
            await session.commit()
    except ValueError:  # pydantic's ValidationError included
        message = tr("Choose a reason, and a date and time in the future (if any).")
        return await _page(request, person, status_errors={unit_id: message}, status_code=422)
    except InvalidInput as exc:
        return await _page(request, person, status_errors={unit_id: exc.detail}, status_code=422)
    shown = "reopened" if accepting else "closed"
    return RedirectResponse(f"/ui/units?status={shown}#unit-{unit_id}", status_code=303)


def _field_errors(tr: Any, exc: InvalidInput | ValidationError) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return {
            str(e["loc"][0]): tr("Enter a whole number of 0 or more.")
            for e in exc.errors()
            if e["loc"]
        }
    found: dict[str, str] = {}
    for error in exc.errors or []:
        name = str(error.get("pointer", "")).removeprefix("#/")
        if name in FIELDS:
            detail = str(error.get("detail", ""))
            if detail.startswith("exceeds staffed capacity"):
                found[name] = tr(
                    "More than the staffed capacity (%(n)s).", n=detail.rsplit(" ", 1)[-1]
                )
            else:
                found[name] = detail
    return found or {"free": exc.detail}


async def _card(
    request: Request,
    person: Principal,
    unit_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    saved: bool = False,
) -> Response:
    states, names = await _states(request, person, _organisation(person))
    unit = next((s for s in states if s.unit_id == unit_id), None)
    if unit is None:
        raise Forbidden("This unit is not one of your organisation's units.")
    return render(
        request,
        "fragments/unit_card.html",
        {
            "unit": unit,
            "statuses": await _statuses(request, [unit]),
            "status_errors": {},
            "closing_reasons": list(NotAcceptingReason),
            "reporters": names,
            "unit_errors": errors or {},
            "unit_values": values or {},
            "saved": saved,
        },
    )


@offers.post("/ui/units/offers/{placement_id}/accept")
async def accept_offer(request: Request, placement_id: uuid.UUID, person: ProviderUser) -> Response:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    async with db.sessionmaker() as session:
        await placement_service.accept(
            session,
            _ctx(request, person),
            placement_id,
            OccurredIn(),
            now=utcnow(),
            settings=settings,
        )
        await session.commit()
    return RedirectResponse("/ui/units?offer=accepted#offers", status_code=303)


@offers.post("/ui/units/offers/{placement_id}/decline")
async def decline_offer(
    request: Request, placement_id: uuid.UUID, person: ProviderUser
) -> Response:
    db: Database = request.app.state.db
    settings: Settings = request.app.state.settings
    tr = translator(request)
    form = await request.form()
    reason_text = str(form.get("reason_text") or "").strip()[:500] or None
    try:
        body = DeclineIn.model_validate({"reason": form.get("reason"), "reason_text": reason_text})
    except ValidationError:
        return await _page(
            request,
            person,
            notice=tr("Choose a reason (and describe it when you choose 'Other reason')."),
            status_code=422,
        )
    async with db.sessionmaker() as session:
        try:
            await placement_service.decline(
                session, _ctx(request, person), placement_id, body, now=utcnow(), settings=settings
            )
        except DomainError:
            await session.rollback()
            raise
        await session.commit()
    return RedirectResponse("/ui/units?offer=declined#offers", status_code=303)
