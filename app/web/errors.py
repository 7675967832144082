"""HTML error pages for ``/ui``: login redirects, 403 (logged when audited), 404, problems.

The API keeps its RFC 9457 problem documents; a path under ``/ui`` gets a page in the person's
language instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from app.audit.service import AuditContext
from app.errors import DomainError, Forbidden
from app.http.audit import client_ip, log_refusal, request_id
from app.principal import Principal
from app.web.deps import LoginRequired
from app.web.templating import render, translator

Handler = Callable[[Request, Exception], Awaitable[Response]]


def is_page(request: Request) -> bool:
    path = request.url.path
    return path == "/" or (path.startswith("/ui") and not path.startswith("/ui/static"))


def error_page(request: Request, status: int, message: str) -> Response:
    tr = translator(request)
    titles = {
        400: tr("The request could not be read"),
        403: tr("No access"),
        404: tr("Page not found"),
        405: tr("Not allowed"),
        409: tr("Conflict"),
        422: tr("Check your input"),
    }
    return render(
        request,
        "error.html",
        {
            "status": status,
            "title": titles.get(status, tr("Something went wrong")),
            "message": message,
        },
        status_code=status,
    )


def csrf_refused(request: Request) -> Response:
    tr = translator(request)
    return error_page(
        request,
        403,
        tr(
            "This form was not sent from a page of this site or has expired. "
            "Reload the page and try again."
        ),
    )


def _page_context(request: Request, person: Principal) -> AuditContext:
    # A page has no on-behalf-of or purpose headers: the person acts for themselves.
    return AuditContext(
        principal=person, access_point=client_ip(request), request_id=request_id(request)
    )


def install_page_handlers(app: FastAPI) -> None:
    """Wrap the app's handlers: pages get HTML, the API keeps its problem documents."""
    handlers: dict[type[Exception], Handler] = {
        k: v  # type: ignore[misc]  # Starlette types the handler map loosely
        for k, v in app.exception_handlers.items()
        if isinstance(k, type)
    }

    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)

    def wrap(kind: type[Exception]) -> Handler:
        api = handlers[kind]

        async def handler(request: Request, exc: Exception) -> Response:
            if not is_page(request):
                return await api(request, exc)
            if isinstance(exc, Forbidden):
                await log_refusal(request, exc, _page_context)
            if isinstance(exc, DomainError):
                return error_page(request, exc.status, exc.detail)
            if isinstance(exc, StarletteHTTPException):
                tr = translator(request)
                message = (
                    tr("There is no page at this address.")
                    if exc.status_code == 404
                    else str(exc.detail)
                )
                return error_page(request, exc.status_code, message)
            return await api(request, exc)

        return handler

    app.add_exception_handler(LoginRequired, on_login_required)
    for kind in (Forbidden, DomainError, StarletteHTTPException):
        if kind in handlers:
            app.add_exception_handler(kind, wrap(kind))
