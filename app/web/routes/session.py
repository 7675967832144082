"""Login, logout and the front door: ``/`` sends each person to the home page of their role."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from app.auth import users as user_service
from app.config import Settings
from app.web.deps import SESSION_COOKIE, OptionalPerson, current_session
from app.web.templating import render, translator

router = APIRouter(include_in_schema=False)


def safe_next(value: str | None) -> str | None:
    """A local path to return to after login; anything else (other hosts, schemes) is dropped."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(c in value for c in "\r\n\\") or len(value) > 2_000:
        return None
    return value


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


@router.get("/")
async def front_door(request: Request) -> Response:
    state = await current_session(request)
    if state is None:
        target = "/ui/login"
    elif state.second_factor_pending:
        target = "/ui/login/totp"
    else:
        target = user_service.role_home(state.principal.roles)
    return RedirectResponse(target, status_code=303)


@router.get("/ui/login")
async def login_page(request: Request, person: OptionalPerson) -> Response:
    if person is not None:
        target = safe_next(request.query_params.get("next")) or user_service.role_home(person.roles)
        return RedirectResponse(target, status_code=303)
    return render(
        request,
        "login.html",
        {"next": safe_next(request.query_params.get("next")) or "", "error": None, "email": ""},
    )


@router.post("/ui/login")
async def login(request: Request) -> Response:
    form = await request.form()
    email = str(form.get("email") or "")[:320]
    password = str(form.get("password") or "")[:1_000]
    next_path = safe_next(str(form.get("next") or ""))
    settings: Settings = request.app.state.settings
    tr = translator(request)
    try:
        user = await user_service.authenticate(
            request.app.state.db,
            email,
            password,
            client_address=_client(request),
            settings=settings,
        )
    except user_service.LoginRefused as refused:
        if refused.reason == "throttled":
            minutes = max(1, -(-(refused.retry_after_seconds or 60) // 60))
            message = tr(
                "Too many failed attempts. For your safety, logging in is blocked for "
                "%(minutes)s more minute(s).",
                minutes=minutes,
            )
            status = 429
            headers = {"Retry-After": str(refused.retry_after_seconds or 60)}
        else:
            message = tr("The email address or password is not correct.")
            status, headers = 401, {}
        return render(
            request,
            "login.html",
            {"next": next_path or "", "error": message, "email": email},
            status_code=status,
            headers=headers,
        )
    second_factor = user_service.needs_second_factor(user)
    token = await user_service.start_session(
        request.app.state.db,
        user,
        client_address=_client(request),
        settings=settings,
        second_factor_done=not second_factor,
    )
    if second_factor:
        target = "/ui/login/totp" + (f"?next={next_path}" if next_path else "")
    else:
        target = next_path or user_service.role_home(user_service.parse_roles_of(user))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await user_service.end_session(request.app.state.db, token)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/ui/login/totp")
async def second_factor_page(request: Request) -> Response:
    state = await current_session(request)
    if state is None:
        return RedirectResponse("/ui/login", status_code=303)
    next_path = safe_next(request.query_params.get("next")) or ""
    if not state.second_factor_pending:
        return RedirectResponse(
            next_path or user_service.role_home(state.principal.roles), status_code=303
        )
    return render(request, "totp_login.html", {"next": next_path, "error": None})


@router.post("/ui/login/totp")
async def second_factor(request: Request) -> Response:
    state = await current_session(request)
    if state is None:
        return RedirectResponse("/ui/login", status_code=303)
    form = await request.form()
    next_path = safe_next(str(form.get("next") or ""))
    settings: Settings = request.app.state.settings
    ok = await user_service.verify_second_factor(
        request.app.state.db,
        state.session_id,
        str(form.get("code") or "")[:20],
        client_address=_client(request),
        settings=settings,
    )
    if ok:
        return RedirectResponse(
            next_path or user_service.role_home(state.principal.roles), status_code=303
        )
    tr = translator(request)
    return render(
        request,
        "totp_login.html",
        {
            "next": next_path or "",
            "error": tr("This code is not right. Enter the code your app shows now."),
        },
        status_code=401,
    )
