"""The access-log context of an HTTP request: who, from where, on whose behalf, why."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

from app.audit import service as audit_service
from app.audit.service import AuditContext
from app.errors import Forbidden
from app.placement import views as placement_views
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


async def log_refusal(
    request: Request, exc: Forbidden, context: Callable[[Request, Principal], AuditContext]
) -> None:
    """Write a 403 on an audited route (API or page) to the access log, in its own transaction
    (the request's own rolls back); ``context`` builds the log row's who and where."""
    audited = getattr(request.state, "audit_event", None)
    principal = getattr(request.state, "principal", None)
    if audited is None or not isinstance(principal, Principal):
        return
    object_id = request.path_params.get("placement_id")
    await audit_service.log_denied(
        request.app.state.db,
        context(request, principal),
        event_code=audited[0],
        action=audited[1],
        object_id=None if object_id is None else str(object_id)[:64],
        detail={
            "method": request.method,
            "path": request.url.path,
            "status": exc.status,
            "reason": exc.detail,
        },
        patient_keys=placement_views.patient_keys,
    )
