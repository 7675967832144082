"""Annotated dependency aliases: every route signature lists what it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from app.audit import service as audit_service
from app.auth import users
from app.auth.service import KeyResolver
from app.auth.throttle import AuthThrottle
from app.capacity.service import ScopeResolver
from app.config import Settings
from app.db import Database
from app.errors import DomainError, Unauthenticated
from app.http.audit import context_of
from app.http.uow import (
    FINGERPRINT_HEADERS,
    ReplayedResponse,
    Write,
    find_replay,
    request_fingerprint,
)
from app.placement import views as placement_views
from app.principal import Principal

_bearer = HTTPBearer(auto_error=False, description="An API key issued by POST /v1/api-keys")


# Coroutines on purpose: FastAPI runs a plain ``def`` dependency in the thread pool, a thread hop
# per request for a one-line attribute read.
async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_scope_resolver(request: Request) -> ScopeResolver:
    scopes: ScopeResolver = request.app.state.scope_resolver
    return scopes


DbDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ScopesDep = Annotated[ScopeResolver, Depends(get_scope_resolver)]


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    resolver: KeyResolver = request.app.state.key_resolver
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = request.client.host if request.client is not None else None
    throttle.check(address)
    header = request.headers.get("authorization")
    try:
        principal = await resolver.resolve(
            header if credentials is None else f"Bearer {credentials.credentials}"
        )
    except Unauthenticated:
        if header:  # a key was presented and refused: count it against the address
            throttle.failed(address)
        raise
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_key_or_person(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """An API key when the request sends one, else the person of a web session cookie.

    Only for reads that a page's own script may make (``GET /v1/me``): writes stay key-only, so
    a session cookie can never be used for a cross-site write to the API.
    """
    token = request.cookies.get(users.SESSION_COOKIE)
    if request.headers.get("authorization") is None and token and len(token) <= 200:
        state = await users.resolve_session(
            request.app.state.db, token, settings=request.app.state.settings
        )
        if state is not None and not state.second_factor_pending:
            request.state.principal = state.principal
            return state.principal
    return await get_principal(request, credentials)


KeyOrPersonDep = Annotated[Principal, Depends(get_key_or_person)]


async def get_session(db: DbDep) -> AsyncIterator[AsyncSession]:
    async with db.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def _log_replay(
    request: Request, principal: Principal, session: AsyncSession, replay: Response
) -> None:
    """A replayed answer of an audited route (placement data) gets its own access-log row."""
    audited = getattr(request.state, "audit_event", None)
    if audited is None:
        return
    object_id = request.path_params.get("placement_id")
    if object_id is None and replay.status_code < 300:
        # POST /v1/placements: the replayed body is the placement.
        try:
            body = orjson.loads(bytes(replay.body))
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and "patient_key" in body:
            object_id = body.get("id")
    await audit_service.log_replay(
        session,
        context_of(request, principal),
        event_code=audited[0],
        action=audited[1],
        object_id=None if object_id is None else str(object_id)[:64],
        status=replay.status_code,
        patient_keys=placement_views.patient_keys,
    )


async def get_write(
    request: Request,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Retry-safe key: the same key and body return the first response",
        ),
    ] = None,
) -> AsyncIterator[Write]:
    # Read directly, not as a DbDep: one dependency fewer for FastAPI to solve on every write.
    db: Database = request.app.state.db
    body = await request.body()
    fingerprint = request_fingerprint(
        request.method,
        request.url.path,
        request.url.query,
        body,
        [request.headers.get(name) for name in FINGERPRINT_HEADERS],
    )

    async def on_replay(session: AsyncSession, replay: Response) -> None:
        await _log_replay(request, principal, session, replay)

    async with db.sessionmaker() as session:
        if idempotency_key is not None:
            replay = await find_replay(session, principal.key_id, idempotency_key, fingerprint)
            if replay is not None:
                await on_replay(session, replay)
                raise ReplayedResponse(replay)
        try:
            yield Write(
                session=session,
                principal=principal,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                on_replay=on_replay,
            )
        except DomainError:
            if idempotency_key is None:
                raise
            # A concurrent retry with the same key may have committed while this one ran and
            # made it fail (e.g. its report is now older than the winner's): answer as the
            # first request was answered, which is what a retry is owed.
            await session.rollback()
            replay = await find_replay(session, principal.key_id, idempotency_key, fingerprint)
            if replay is None:
                raise
            await on_replay(session, replay)
            raise ReplayedResponse(replay) from None


WriteDep = Annotated[Write, Depends(get_write, scope="function")]
