"""The access-log context of an HTTP request: who, from where, on whose behalf, why."""

from __future__ import annotations

from starlette.requests import Request

from app.audit.service import AuditContext
from app.principal import Principal

ON_BEHALF_HEADER = "X-On-Behalf-Of"
PURPOSE_HEADER = "X-Purpose-Of-Use"


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def context_of(request: Request, principal: Principal) -> AuditContext:
    """For log rows written outside a route's own validated headers (refusals, replays): the
    headers are cut to the column sizes, not validated."""
    return AuditContext(
        principal=principal,
        on_behalf_of=(request.headers.get(ON_BEHALF_HEADER) or "")[:200] or None,
        access_point=client_ip(request),
        purpose=(request.headers.get(PURPOSE_HEADER) or "")[:40] or None,
        request_id=request_id(request),
    )
