"""The person's own account: the second factor (TOTP, enrolled with a QR code) and password."""

from __future__ import annotations

import io

import segno
from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from app.auth import users as user_service
from app.config import Settings
from app.db import Database
from app.web.deps import WebUser, current_session
from app.web.routes.session import safe_next
from app.web.templating import render, translator

router = APIRouter(include_in_schema=False)


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def qr_svg(uri: str) -> Markup:
    """The provisioning URI as an inline SVG QR code (rendered here, no external service)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(
        out, kind="svg", scale=5, border=2, xmldecl=False, svgns=True, title="QR code"
    )
    # segno writes only its own markup; the URI inside it is XML-escaped by segno.
    return Markup(out.getvalue().decode("utf-8"))  # noqa: S704


@router.get("/ui/account")
async def account(request: Request, person: WebUser) -> Response:
    state = await current_session(request)
    settings: Settings = request.app.state.settings
    tr = translator(request)
    return render(
        request,
        "account.html",
        {
            "totp_enrolled": state is not None and state.totp_enrolled,
            "totp_required": user_service.totp_required_for(person.roles, settings),
            "errors": {},
            "notice": {"password": tr("Your password has been changed.")}.get(
                request.query_params.get("changed") or ""
            ),
        },
    )


@router.post("/ui/account/password")
async def change_password(request: Request, person: WebUser) -> Response:
    tr = translator(request)
    form = await request.form()
    current = str(form.get("current_password") or "")[:1_000]
    new = str(form.get("new_password") or "")[:1_000]
    repeat = str(form.get("repeat_password") or "")[:1_000]
    state = await current_session(request)
    assert person.user_id is not None
    assert state is not None
    codes = (
        await user_service.change_password(
            request.app.state.db,
            person.user_id,
            current,
            new,
            keep_session_id=state.session_id,
        )
        if new == repeat
        else {"repeat": "different"}
    )
    if not codes:
        return RedirectResponse("/ui/account?changed=password", status_code=303)
    messages = {
        "wrong": tr("This is not your current password."),
        "too_short": tr(
            "Choose a password of at least %(n)s characters.", n=user_service.MIN_PASSWORD_LENGTH
        ),
        "unchanged": tr("Choose a password other than the current one."),
        "different": tr("The two new passwords differ."),
    }
    settings: Settings = request.app.state.settings
    return render(
        request,
        "account.html",
        {
            "totp_enrolled": state.totp_enrolled,
            "totp_required": user_service.totp_required_for(person.roles, settings),
            "errors": {field: messages[code] for field, code in codes.items()},
            "notice": None,
        },
        status_code=422,
    )


@router.get("/ui/account/totp")
async def totp_page(request: Request, person: WebUser) -> Response:
    db: Database = request.app.state.db
    assert person.user_id is not None
    assert person.user_email is not None
    secret, active = await user_service.begin_totp_enrolment(db, person.user_id)
    return render(
        request,
        "totp_enrol.html",
        {
            "active": active,
            "secret": None if active else secret,
            "qr": None if active else qr_svg(user_service.totp_uri(secret, person.user_email)),
            "error": None,
            "next": safe_next(request.query_params.get("next")) or "",
        },
    )


@router.post("/ui/account/totp")
async def totp_confirm(request: Request, person: WebUser) -> Response:
    db: Database = request.app.state.db
    assert person.user_id is not None
    assert person.user_email is not None
    tr = translator(request)
    form = await request.form()
    next_path = safe_next(str(form.get("next") or ""))
    if await user_service.confirm_totp_enrolment(db, person.user_id, str(form.get("code") or "")):
        return RedirectResponse(next_path or user_service.role_home(person.roles), status_code=303)
    secret, active = await user_service.begin_totp_enrolment(db, person.user_id)
    return render(
        request,
        "totp_enrol.html",
        {
            "active": active,
            "secret": None if active else secret,
            "qr": None if active else qr_svg(user_service.totp_uri(secret, person.user_email)),
            "error": tr("This code is not right. Enter the code your app shows now."),
            "next": next_path or "",
        },
        status_code=422,
    )
