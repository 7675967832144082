"""Domain errors and their RFC 9457 problem rendering; the status/type mapping lives only here.

The ``DomainError`` classes are the catalogue of problem types: each fixes a status, the slug of
its type URI (``/problems/<slug>``) and its title. Handlers, the request-body guard and the
routing errors (404, 405, 406) all render from these classes; no other place spells a slug or a
title.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"

log = structlog.get_logger("juisteplek.errors")


class DomainError(Exception):
    """A failure the client can act on. Subclasses fix status, problem type and title."""

    status: ClassVar[int] = 400
    type_slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.extra = dict(extra) if extra else {}
        self.headers = dict(headers) if headers else {}


class InvalidInput(DomainError):
    status = 422
    type_slug = "validation"
    title = "The request is not valid"


class MalformedRequest(DomainError):
    status = 400
    type_slug = "malformed-request"
    title = "The request could not be read"


class Unauthenticated(DomainError):
    status = 401
    type_slug = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="juisteplek"'})


class Forbidden(DomainError):
    status = 403
    type_slug = "forbidden"
    title = "Not allowed for this key"


class NotFound(DomainError):
    status = 404
    type_slug = "not-found"
    title = "Resource not found"


class Conflict(DomainError):
    status = 409
    type_slug = "conflict"
    title = "Conflicts with the current state"


class StaleReport(Conflict):
    type_slug = "stale-report"
    title = "Capacity report is older than the latest one"


class PreconditionFailed(DomainError):
    status = 412
    type_slug = "precondition-failed"
    title = "The resource has changed"


class MethodNotAllowed(DomainError):
    status = 405
    type_slug = "method-not-allowed"
    title = "Method not allowed"


class NotAcceptable(DomainError):
    status = 406
    type_slug = "not-acceptable"
    title = "Not acceptable"


class PayloadTooLarge(DomainError):
    status = 413
    type_slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(DomainError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported content type"


class ServiceUnavailable(DomainError):
    status = 503
    type_slug = "service-unavailable"
    title = "Temporarily unavailable"


# Seconds a client is asked to wait while the database is unreachable (a restart takes a few).
DATABASE_RETRY_AFTER_SECONDS = 5

# SQLSTATE classes of a database that is gone or going: 08 connection exception, 57P01-57P03
# admin/crash shutdown and "cannot connect now" (starting up or shutting down).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (down, restarting, connection lost),
    as opposed to a fault in the request or the code. Looks through SQLAlchemy's and the
    driver's wrappers."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, PoolTimeout | ConnectionError | TimeoutError):
            return True
        if isinstance(seen, OSError) and not isinstance(seen, _FILE_ERRORS):
            return True  # refused, reset, unreachable: the socket, not the query
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if type(seen).__name__ in {"ConnectionDoesNotExistError", "InterfaceError"} and (
            "closed" in str(seen) or "does not exist" in str(seen)
        ):
            return True  # asyncpg: the connection was closed under the query
        if type(seen).__name__ == "InternalClientError":
            return True  # asyncpg: a connection left mid-operation (it is discarded, not reused)
        nested = getattr(seen, "orig", None)
        seen = nested if isinstance(nested, BaseException) else seen.__cause__ or seen.__context__
    return False


def database_unavailable_problem() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The database cannot be reached at the moment; retry after the time in Retry-After "
        "(a write that got no 2xx answer may be retried with the same Idempotency-Key).",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


class TooManyRequests(DomainError):
    status = 429
    type_slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(
            detail, extra={"retry_after": retry_after}, headers={"Retry-After": str(retry_after)}
        )


class IdempotencyKeyReused(DomainError):
    status = 422
    type_slug = "idempotency-key-reused"
    title = "Idempotency-Key was used for a different request"


class HttpError(DomainError):
    """An HTTP error from routing with no problem type of its own (its status is kept)."""

    type_slug = "http-error"
    title = "HTTP error"


class InternalError(DomainError):
    status = 500
    type_slug = "internal"
    title = "Internal server error"


# The problem types of the errors Starlette raises itself, by status.
_HTTP_PROBLEMS: dict[int, type[DomainError]] = {
    kind.status: kind
    for kind in (NotFound, MethodNotAllowed, NotAcceptable, PayloadTooLarge, UnsupportedMediaType)
}


# Paths whose errors are answered in another format (``/fhir``: FHIR OperationOutcome), so that
# every error there, from routing, validation, auth or a handler, speaks that API's language.
# A renderer takes (status, detail, errors, headers) and builds the response.
ErrorRenderer = Callable[
    [int, str, Sequence[Mapping[str, Any]] | None, Mapping[str, str] | None], Response
]
_RENDERERS: dict[str, ErrorRenderer] = {}


def render_errors_under(prefix: str, renderer: ErrorRenderer) -> None:
    """Answer every error under ``prefix`` (the path itself and below) with ``renderer``."""
    _RENDERERS[prefix] = renderer


def _renderer_for(path: str) -> ErrorRenderer | None:
    for prefix, renderer in _RENDERERS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return renderer
    return None


def problem_response(
    *,
    status: int,
    type_slug: str,
    title: str,
    detail: str,
    instance: str,
    request_id: str | None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    renderer = _renderer_for(instance)
    if renderer is not None:
        return renderer(status, detail, errors, headers)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = list(errors)
    if extra:
        body.update(extra)
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _pointer(loc: Sequence[Any]) -> str:
    """JSON pointer of a validation error location, without FastAPI's leading 'body'/'query'."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        source, rest = parts[0], parts[1:]
        if source != "body":
            return f"{source}:{'/'.join(rest)}"
        parts = rest
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for err in raw:
        item = {"pointer": _pointer(err.get("loc", ())), "detail": str(err.get("msg", "invalid"))}
        out.append(item)
    return out


def render_problem(
    exc: DomainError, *, instance: str, request_id: str | None, status: int | None = None
) -> Response:
    """The problem document (or the path's own error format) of ``exc``; ``status`` overrides
    the class's for the errors of routing that have no problem type of their own."""
    return problem_response(
        status=exc.status if status is None else status,
        type_slug=exc.type_slug,
        title=exc.title,
        detail=exc.detail,
        instance=instance,
        request_id=request_id,
        errors=exc.errors,
        extra=exc.extra,
        headers=exc.headers,
    )


def domain_error_response(request: Request, exc: DomainError) -> Response:
    return render_problem(exc, instance=request.url.path, request_id=_request_id(request))


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return domain_error_response(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        err = MalformedRequest(
            "The body is not valid JSON: " + "; ".join(str(e.get("msg")) for e in raw),
            errors=[
                {"pointer": "#", "detail": str(e.get("ctx", {}).get("error", e.get("msg")))}
                for e in raw
                if e.get("type") == "json_invalid"
            ],
        )
        return domain_error_response(request, err)
    errors = validation_errors(raw)
    fields = ", ".join(e["pointer"] for e in errors)
    return domain_error_response(
        request, InvalidInput(f"Invalid value for: {fields}", errors=errors)
    )


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = _HTTP_PROBLEMS.get(exc.status_code, HttpError)
    detail = exc.detail if isinstance(exc.detail, str) else kind.title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        detail = f"{request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}"
        headers["Allow"] = ", ".join(allowed)
    return render_problem(
        kind(detail, headers=headers),
        instance=request.url.path,
        request_id=_request_id(request),
        status=exc.status_code,
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts on this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    pending = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            pending.extend(included.routes)
            continue
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches({**request.scope, "method": "GET"})[0] is not Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    if database_unavailable(exc):
        log.warning(
            "database_unavailable",
            path=request.url.path,
            request_id=_request_id(request),
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        return domain_error_response(request, database_unavailable_problem())
    log.exception("unhandled_error", path=request.url.path, request_id=_request_id(request))
    return domain_error_response(
        request,
        InternalError("An unexpected error occurred; it has been logged with the request id."),
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    # Database and socket errors inside the app get the request's middleware (request id, metrics);
    # anything else reaches the catch-all at the outermost layer.
    import asyncpg
    from sqlalchemy.exc import DBAPIError, EmulatedDBAPIException, SQLAlchemyError

    # A statement sent straight to the driver raises the driver's errors, or the dialect's
    # emulated DB-API error when SQLAlchemy's adapter starts its transaction.
    driver_errors = (
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        EmulatedDBAPIException,
    )
    for kind in (SQLAlchemyError, DBAPIError, OSError, *driver_errors):
        app.add_exception_handler(kind, _on_unexpected)
    app.add_exception_handler(Exception, _on_unexpected)
