"""Pure ASGI middleware: request id + access log + metrics, and the request-body guard.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request overhead on the hot search path small.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response
from app.ops.metrics import REQUEST_LATENCY, REQUESTS

log = structlog.get_logger("juisteplek.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")
# Writes that also take a body other than JSON.
_OTHER_TYPES = {"/v1/capacity-reports": ("text/csv",)}


class RequestContextMiddleware:
    """Gives every request an id (echoed in ``X-Request-ID``), logs it and counts it."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            REQUEST_LATENCY.labels(scope["method"], template).observe(elapsed)
            if self.access_log:
                principal = scope.get("state", {}).get("principal")
                log.info(
                    "request",
                    request_id=request_id,
                    method=scope["method"],
                    path=scope["path"],
                    route=template,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                    key_id=str(principal.key_id) if principal is not None else None,
                )


class BodyGuardMiddleware:
    """Refuses oversize bodies (413) and non-JSON bodies on API writes (415) before routing."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await self._refuse(
                scope,
                send,
                413,
                "payload-too-large",
                "Request body too large",
                f"The body exceeds {self.max_body_bytes} bytes.",
            )
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await self._refuse(
                    scope,
                    send,
                    413,
                    "payload-too-large",
                    "Request body too large",
                    f"The body exceeds {self.max_body_bytes} bytes.",
                )
                return
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if (
            body
            and scope["path"].startswith(("/v1/", "/fhir/"))
            and not _JSON_TYPE.match(content_type)
            and content_type not in _OTHER_TYPES.get(scope["path"], ())
        ):
            await self._refuse(
                scope,
                send,
                415,
                "unsupported-media-type",
                "Unsupported content type",
                f"Send the body as application/json (got {content_type or 'no content type'!r}).",
            )
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(
        scope: Scope, send: Send, status: int, slug: str, title: str, detail: str
    ) -> None:
        response = problem_response(
            status=status,
            type_slug=slug,
            title=title,
            detail=detail,
            instance=scope["path"],
            request_id=scope.get("state", {}).get("request_id"),
        )
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
