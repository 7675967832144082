"""Dependencies of web pages: the logged-in person, role checks, the access-log context.

A page that needs a person declares ``person: WebUser`` (any logged-in person) or
``person: Annotated[Principal, Depends(require_role(Role.PROVIDER))]``. Nobody logged in: a 303
to ``/ui/login``. Wrong role or organisation: a 403 page (written to the NEN 7513 access log on
routes declared with ``route_class=AuditedPageRoute``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.audit.service import AuditContext
from app.auth import users as user_service
from app.config import Settings
from app.enums import Role
from app.errors import Forbidden
from app.principal import Principal

SESSION_COOKIE = user_service.SESSION_COOKIE


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to the login page."""

    def __init__(self, next_path: str, *, page: str = "/ui/login") -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.page = page

    @property
    def location(self) -> str:
        return f"{self.page}?next={quote(self.next_path, safe='/')}"


# Pages a person who still has to enrol a second factor may open.
ENROLMENT_PATHS = frozenset({"/ui/account/totp", "/ui/logout"})


async def current_session(request: Request) -> user_service.SessionState | None:
    """The request's session (cached on the request), or None when nobody is logged in."""
    if hasattr(request.state, "web_session"):
        cached: user_service.SessionState | None = request.state.web_session
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    state = None
    if token and len(token) <= 200:
        settings: Settings = request.app.state.settings
        state = await user_service.resolve_session(request.app.state.db, token, settings=settings)
    request.state.web_session = state
    if state is not None and not state.second_factor_pending:
        request.state.person = state.principal
        request.state.principal = state.principal  # the access log names the person
    return state


async def optional_person(request: Request) -> Principal | None:
    state = await current_session(request)
    if state is None or state.second_factor_pending:
        return None
    return state.principal


async def require_person(request: Request) -> Principal:
    state = await current_session(request)
    next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if state is None:
        raise LoginRequired(next_path)
    if state.second_factor_pending:
        raise LoginRequired(next_path, page="/ui/login/totp")
    settings: Settings = request.app.state.settings
    if (
        not state.totp_enrolled
        and request.url.path not in ENROLMENT_PATHS
        and user_service.totp_required_for(state.principal.roles, settings)
    ):
        raise LoginRequired(next_path, page="/ui/account/totp")
    return state.principal


WebUser = Annotated[Principal, Depends(require_person)]
OptionalPerson = Annotated[Principal | None, Depends(optional_person)]


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency passing a person with one of ``roles`` (admins pass every check)."""

    async def check(person: WebUser) -> Principal:
        person.require(*roles)
        return person

    return check


TriagistUser = Annotated[Principal, Depends(require_role(Role.TRIAGIST))]
ProviderUser = Annotated[Principal, Depends(require_role(Role.PROVIDER))]
ReferrerUser = Annotated[Principal, Depends(require_role(Role.REFERRER))]
AnalystUser = Annotated[Principal, Depends(require_role(Role.ANALYST))]
AdminUser = Annotated[Principal, Depends(require_role(Role.ADMIN))]


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


async def web_audit_context(request: Request, person: WebUser) -> AuditContext:
    """The NEN 7513 context of a page: the person, their address, purpose treatment."""
    return AuditContext(
        principal=person,
        access_point=request.client.host if request.client is not None else None,
        request_id=_request_id(request),
    )


WebAudit = Annotated[AuditContext, Depends(web_audit_context)]


class AuditedPageRoute(APIRoute):
    """For pages that show patient data: a refusal (403) is written to the access log."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        action = "R" if "GET" in (self.methods or set()) else "U"
        event_code = f"web.{self.name}"

        async def audited(request: Request) -> Response:
            request.state.audit_event = (event_code, action)
            return await handler(request)

        return audited


def forbid(detail: str) -> Forbidden:
    """A 403 for page code that checks something itself (rendered as the 403 page)."""
    return Forbidden(detail)
