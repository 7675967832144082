"""Application factory: lifespan, middleware, problem handlers and routers; no domain logic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from app.audit import checkpoints as audit_checkpoints
from app.auth.service import KeyResolver, ensure_admin_key
from app.auth.throttle import AuthThrottle
from app.capacity.service import ScopeResolver
from app.config import Settings, get_settings
from app.db import Database
from app.errors import Forbidden, install_problem_handlers, render_errors_under
from app.exchange import partner_sync
from app.flows import demo_ticker
from app.flows.background import background, sweeper_running
from app.http.audited import on_forbidden
from app.http.deps import declare_access
from app.http.middleware import BodyGuardMiddleware, RequestContextMiddleware
from app.http.uow import ReplayedResponse
from app.logging import configure_logging
from app.realtime.limits import StreamSlots
from app.routers import (
    audit,
    auth,
    capacity,
    exchange,
    fhir,
    kpis,
    ops,
    partners,
    placements,
    registry,
    report_requests,
    reports,
    stream,
    users,
    webhooks,
)
from app.routers import triage as triage_routes
from app.routers import urgency as urgency_routes
from app.web.install import install_web

API_DESCRIPTION = """
JuistePlek coordinates acute follow-up care capacity in a region: providers report free places,
triagists search and place patients, hospitals integrate over REST. Every error is an RFC 9457
problem document (`application/problem+json`). Authenticate with `Authorization: Bearer <key>`.
"""


def _operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app; tests pass ``database`` to share one engine across app instances."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or Database.from_url(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        app.state.db = db
        app.state.settings = settings
        app.state.key_resolver = KeyResolver(db, ttl=settings.api_key_cache_seconds)
        app.state.scope_resolver = ScopeResolver(db)
        if settings.admin_key is not None:
            await ensure_admin_key(db, settings.admin_key.get_secret_value())
        try:
            async with (
                background(db, settings) as hub,
                sweeper_running(db, settings),
                demo_ticker.running(db, settings),
                audit_checkpoints.running(db, settings),
                partner_sync.running(db, settings),
            ):
                app.state.hub = hub
                yield
        finally:
            if database is None:
                await db.dispose()

    app = FastAPI(
        title="JuistePlek",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # Served by app.web with local assets, so they work without internet.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.auth_throttle = AuthThrottle(
        limit=settings.auth_failure_limit, window=settings.auth_failure_window_seconds
    )
    app.state.stream_slots = StreamSlots(
        per_key=settings.stream_max_per_key, per_instance=settings.stream_max_per_instance
    )
    install_problem_handlers(app)

    async def _replay(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ReplayedResponse)
        return exc.response

    app.add_exception_handler(ReplayedResponse, _replay)
    # 403s on placement and audit routes go to the NEN 7513 access log (docs/domain.md §10.1).
    app.add_exception_handler(Forbidden, on_forbidden)
    for module in (
        ops,
        auth,
        users,
        registry,
        capacity,
        placements,
        audit,
        webhooks,
        stream,
        kpis,
        reports,
    ):
        app.include_router(module.router)
    app.include_router(report_requests.router)
    app.include_router(exchange.router)
    app.include_router(partners.router)
    app.include_router(fhir.router)
    # FHIR clients get every error under /fhir as an OperationOutcome, never a problem document.
    render_errors_under("/fhir", fhir.outcome_response)
    app.include_router(triage_routes.audited)
    app.include_router(triage_routes.router)
    app.include_router(urgency_routes.router)
    install_web(app, settings)
    declare_access(app)  # each route's declared callers into its OpenAPI operation
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, access_log=settings.access_log)
    return app
