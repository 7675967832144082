"""Audited routes: the access-log context of a request (``AuditCtx``), the route class that marks
a request as audited (``AuditedRoute``) and the handler that writes a refused request (403) of an
audited route to the NEN 7513 access log in its own transaction (``on_forbidden``)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute

from app.audit.service import AuditContext
from app.errors import Forbidden, domain_error_response
from app.http.audit import (
    ON_BEHALF_HEADER,
    PURPOSE_HEADER,
    client_ip,
    context_of,
    log_refusal,
    request_id,
)
from app.http.deps import PrincipalDep

_ON_BEHALF = ON_BEHALF_HEADER
_PURPOSE = PURPOSE_HEADER


async def audit_context(
    request: Request,
    principal: PrincipalDep,
    on_behalf_of: Annotated[
        str | None,
        Header(
            alias=_ON_BEHALF,
            max_length=200,
            pattern=r"^[\x20-\x7e]+$",
            description="The responsible user on whose behalf the key acts (NEN 7513)",
        ),
    ] = None,
    purpose: Annotated[
        str | None,
        Header(
            alias=_PURPOSE,
            max_length=40,
            pattern=r"^[a-z_]+$",
            description="Purpose of use for the access log; default treatment (admin: operations)",
        ),
    ] = None,
) -> AuditContext:
    return AuditContext(
        principal=principal,
        on_behalf_of=on_behalf_of,
        access_point=client_ip(request),
        purpose=purpose,
        request_id=request_id(request),
    )


AuditCtx = Annotated[AuditContext, Depends(audit_context)]


def _action_code(method: str, path: str) -> str:
    if method == "GET":
        return "R" if "{" in path else "E"
    return "C" if path.endswith("/placements") else "U"


class AuditedRoute(APIRoute):
    """Marks the request as audited, so a 403 refusal is written to the access log.

    The write happens in ``on_forbidden``, the exception handler, which runs after the request's
    own session has been closed (rolled back): on SQLite that session still holds the write lock
    while the route handler unwinds.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        event_code = f"{self.tags[0] if self.tags else 'api'}.{self.name}"
        action = _action_code(next(iter(self.methods or {"GET"})), self.path)

        async def audited(request: Request) -> Response:
            request.state.audit_event = (event_code, action)
            return await handler(request)

        return audited


async def on_forbidden(request: Request, exc: Exception) -> Response:
    """Exception handler for ``Forbidden``: log the refusal on audited routes, then render it."""
    assert isinstance(exc, Forbidden)
    await log_refusal(request, exc, context_of)
    return domain_error_response(request, exc)
