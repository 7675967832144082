"""CSRF protection for every web form (double-submit token) and the web pages' security headers.

Every ``/ui`` response carries a random token in the ``jp_csrf`` cookie (HttpOnly, SameSite=Strict)
and templates put the same value in each form (``csrf_token`` field) and in the ``X-CSRF-Token``
header htmx sends. A POST/PUT/PATCH/DELETE under ``/ui`` whose token is missing or differs from
the cookie is refused with 403 before it reaches any page code.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "jp_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = b"x-csrf-token"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: S112 - a malformed cookie header is no token
                continue
            if name in jar:
                return jar[name].value
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class CsrfMiddleware:
    def __init__(self, app: ASGIApp, *, secure: bool = False) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/" or path.startswith("/ui")):
            await self.app(scope, receive, send)
            return
        cookie = _cookie(scope, CSRF_COOKIE)
        valid_cookie = cookie is not None and 20 <= len(cookie) <= 100
        token = cookie if valid_cookie and cookie is not None else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token
        if scope["method"] in _UNSAFE:
            body = await _read_body(receive)
            if body is None:
                return
            offered = _header(scope, CSRF_HEADER) or await _form_token(scope, body)
            if not (valid_cookie and offered is not None and hmac.compare_digest(offered, token)):
                from app.web.errors import csrf_refused

                response = csrf_refused(Request(scope))
                await response(scope, _disconnected, send)
                return
            receive = _replay(body, receive)

        set_cookie = None if valid_cookie else self._set_cookie(token)
        # Pages may show patient data: no copy in the browser cache or a proxy. Assets may cache.
        extra = [] if path.startswith("/ui/static/") else [(b"cache-control", b"no-store")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in (*_SECURITY_HEADERS, *extra) if k not in present]
                if set_cookie is not None:
                    headers.append((b"set-cookie", set_cookie))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _set_cookie(self, token: str) -> bytes:
        parts = [f"{CSRF_COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts).encode()


async def _read_body(receive: Receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def _form_token(scope: Scope, body: bytes) -> str | None:
    content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if content_type not in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        return None
    request = Request(scope, _replay(body, _disconnected))
    try:
        form: FormData = await request.form()
    except Exception:
        return None
    value = form.get(CSRF_FIELD)
    await form.close()
    return value if isinstance(value, str) else None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}
