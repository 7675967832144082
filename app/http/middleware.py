"""Pure ASGI middleware: request id + access log + metrics, and the request-body guard.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request overhead on the hot search path small.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    DomainError,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    render_problem,
)
from app.metrics import REQUEST_LATENCY, REQUESTS

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
    """Checks every request before routing, so before authentication too.

    - A body above ``max_body_bytes`` is a 413, whatever the method: a declared length is refused
      unread, a chunked body is read only up to the limit.
    - A body on an API write must be JSON (415).
    - A NUL character in a query parameter or in a body string (PostgreSQL text cannot hold one)
      is a 422 naming the parameter or the JSON pointer.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            fields = [f"query:{name}" for name in _nul_query_names(query.decode("latin-1"))]
            if fields:
                await self._refuse_nul(scope, send, fields)
                return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await self._too_large(scope, send)
            return
        method = scope["method"]
        if method not in _BODY_METHODS and (
            length in (None, "0") and _header(scope, b"transfer-encoding") is None
        ):
            await self.app(scope, receive, send)  # no body: nothing to read or check
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
                await self._too_large(scope, send)
                return
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        is_json = _JSON_TYPE.match(content_type) is not None
        if (
            body
            and method in _BODY_METHODS
            and scope["path"].startswith(("/v1/", "/fhir/"))
            and not is_json
            and content_type not in _OTHER_TYPES.get(scope["path"], ())
        ):
            await _refuse(
                scope,
                send,
                UnsupportedMediaType(
                    "Send the body as application/json "
                    f"(got {content_type or 'no content type'!r})."
                ),
            )
            return
        fields = _nul_body_pointers(bytes(body), content_type, is_json)
        if fields:
            await self._refuse_nul(scope, send, fields)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await _refuse(
            scope, send, PayloadTooLarge(f"The body exceeds {self.max_body_bytes} bytes.")
        )

    @staticmethod
    async def _refuse_nul(scope: Scope, send: Send, fields: list[str]) -> None:
        await _refuse(
            scope,
            send,
            InvalidInput(
                f"Invalid value for: {', '.join(fields)}",
                errors=[
                    {"pointer": field, "detail": "must not contain NUL characters"}
                    for field in fields
                ],
            ),
        )


async def _refuse(scope: Scope, send: Send, exc: DomainError) -> None:
    """Answer before routing with the problem document of ``exc``."""
    response = render_problem(
        exc, instance=scope["path"], request_id=scope.get("state", {}).get("request_id")
    )
    await response(scope, _no_receive, send)


def _nul_query_names(query: str) -> list[str]:
    pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace")
    names = [_printable(name) for name, value in pairs if "\x00" in name or "\x00" in value]
    return list(dict.fromkeys(names))


def _nul_body_pointers(body: bytes, content_type: str, is_json: bool) -> list[str]:
    """JSON pointers (or form field names) of the body strings that hold a NUL character."""
    if is_json:
        # In JSON a NUL can only be written as the escape \u0000; a body without it has none.
        if b"\\u0000" not in body:
            return []
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return []  # the route answers 400 for a body that is not JSON
        return list(dict.fromkeys(_nul_pointers(document, "#")))
    if content_type == "application/x-www-form-urlencoded" and b"%00" in body:
        return [f"#/{name}" for name in _nul_query_names(body.decode("latin-1"))]
    if content_type == "text/csv" and b"\x00" in body:
        # Lines are numbered as the CSV upload's own errors number them (the header is line 1).
        lines = body.split(b"\n")
        return [f"/lines/{n}" for n, line in enumerate(lines, start=1) if b"\x00" in line]
    return []


def _nul_pointers(value: Any, pointer: str) -> Iterator[str]:
    if isinstance(value, str):
        if "\x00" in value:
            yield pointer
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_pointers(item, f"{pointer}/{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            here = f"{pointer}/{_printable(key).replace('~', '~0').replace('/', '~1')}"
            if "\x00" in key:
                yield here
            else:
                yield from _nul_pointers(item, here)


def _printable(name: str) -> str:
    return name.replace("\x00", "\\u0000")


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None
