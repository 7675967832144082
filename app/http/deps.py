"""Annotated dependency aliases: every route signature lists what it needs.

Who may call a route is declared at the route
---------------------------------------------
Every API route names its callers with exactly one of these dependencies (in the decorator's
``dependencies=[...]`` or as a parameter ``principal: Annotated[Principal, requires(...)]``):

- ``requires(Role.TRIAGIST, Role.REFERRER)``: a key with one of the roles (an admin key passes
  every role check); any other key gets the 403 problem "This action needs one of the roles: ...".
- ``authenticated()``: any valid key, whatever its roles (the service narrows what it sees).
- ``public()``: no key (health, metrics, documentation, the FHIR CapabilityStatement).

``session_ok=True`` also accepts a signed-in web session's person (reads a page's own script
makes). ``declare_access`` writes the declaration into the OpenAPI operation (``x-access``,
``x-required-roles`` and a sentence in the description); tests/api/test_route_access.py fails for
a route that declares nothing. Checks that depend on the data (whose organisation owns the unit,
which placements a provider may see) stay in the services.

Database access: one rule (docs/database-access.md)
---------------------------------------------------
- A read route takes ``SessionDep``: one session, no commit; it is closed (rolled back) after the
  response. Reads that are not placement data and run their own short statements on the engine
  (the availability search, KPI queries, readiness, the event stream) take ``DbDep``.
- A write route takes ``WriteDep`` and nothing else for the database: the service works on
  ``write.session`` and the route returns ``await write.commit(body)``, which validates the body
  against the route's declared response model, stores the idempotency record in the same
  transaction and commits before the response exists. ``write.commit_response`` does the same
  for a response already rendered in another format (FHIR).
- Services never commit a write; the route's unit of work does. The exceptions are named where
  they happen: a read of placement data commits its NEN 7513 access-log row before the data
  leaves the service, and a refusal's access-log row and a refused hold's shortage count are
  written in their own transaction, because the request's rolls back.
- Web pages open a session per step (``db.sessionmaker()``) and commit in the page route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
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
from app.enums import Role
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


# --- who may call a route ---------------------------------------------------------------------

ACCESS_ATTRIBUTE = "juisteplek_access"


@dataclass(frozen=True, slots=True)
class Access:
    """A route's declared callers: ``public``, any authenticated caller, or one of ``roles``."""

    public: bool = False
    roles: tuple[Role, ...] = ()
    session_ok: bool = False

    @property
    def kind(self) -> str:
        if self.public:
            return "public"
        return "roles" if self.roles else "authenticated"

    def role_names(self) -> list[str]:
        return sorted(role.value for role in self.roles)

    def sentence(self) -> str:
        """The sentence the route's OpenAPI description ends with."""
        if self.public:
            return "Access: public, no API key needed."
        caller = "an API key or a signed-in web session" if self.session_ok else "an API key"
        if not self.roles:
            return f"Access: {caller} with any role."
        names = ", ".join(self.role_names())
        return f"Access: {caller} with one of the roles {names} (an admin passes every role check)."

    def openapi_extra(self) -> dict[str, Any]:
        return {"x-access": self.kind, "x-required-roles": self.role_names()}


def _declared(check: Any, access: Access) -> params.Depends:
    setattr(check, ACCESS_ATTRIBUTE, access)
    return params.Depends(check)


def requires(*roles: Role, session_ok: bool = False) -> params.Depends:
    """The route needs a caller with one of ``roles`` (none: any authenticated caller).

    Refuses with the same 403 problem as ``Principal.require``; the dependency's value is the
    principal, so a route may take it as ``principal: Annotated[Principal, requires(...)]``.
    """
    access = Access(roles=roles, session_ok=session_ok)
    if session_ok:

        async def check_key_or_person(principal: KeyOrPersonDep) -> Principal:
            if roles:
                principal.require(*roles)
            return principal

        return _declared(check_key_or_person, access)

    async def check(principal: PrincipalDep) -> Principal:
        if roles:
            principal.require(*roles)
        return principal

    return _declared(check, access)


def authenticated(*, session_ok: bool = False) -> params.Depends:
    """The route needs any authenticated caller, whatever its roles."""
    return requires(session_ok=session_ok)


def public() -> params.Depends:
    """The route needs no key (operations, documentation, the FHIR CapabilityStatement)."""

    async def open_to_all() -> None:
        return None

    return _declared(open_to_all, Access(public=True))


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def access_of(route: APIRoute) -> Access | None:
    """The route's declared access; a route declaring two is an error at start-up."""
    found = {
        access
        for call in _calls(route.dependant)
        if (access := getattr(call, ACCESS_ATTRIBUTE, None)) is not None
    }
    if len(found) > 1:
        raise RuntimeError(f"{route.path} declares its access more than once: {found}")
    return next(iter(found), None)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _api_routes(list(included.routes))
        elif isinstance(route, APIRoute):
            yield route


def declare_access(app: FastAPI) -> None:
    """Write each route's declared access into its OpenAPI operation (idempotent: the routers
    are module-level and shared by every app built in one process)."""
    for route in _api_routes(list(app.router.routes)):
        access = access_of(route)
        if access is None:
            continue
        route.openapi_extra = {**(route.openapi_extra or {}), **access.openapi_extra()}
        sentence = access.sentence()
        if sentence not in (route.description or ""):
            route.description = (
                f"{route.description}\n\n{sentence}" if route.description else sentence
            )


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
                response_type=getattr(request.scope.get("route"), "response_model", None),
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
