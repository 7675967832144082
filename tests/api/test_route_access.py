"""Who may call a route is declared at the route (app/deps.py ``requires``/``authenticated``/
``public``), shown in OpenAPI, and refused with the same 403 problem a service's check gave."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select

from app.audit.models import AuditLog
from app.config import Settings
from app.db import Database
from app.enums import Role
from app.http.deps import Access, access_of
from app.main import create_app
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem


def _api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path or ""
        if path == "/" or path.startswith("/ui"):
            # The web app's pages have their own rule: a signed-in person, with the role a page
            # names (app/web/deps.py), sent to the login page rather than refused with a 403.
            continue
        if path == app.openapi_url:
            continue  # FastAPI's own document of the operations: public
        assert isinstance(route, APIRoute), f"{path}: not an API route ({type(route).__name__})"
        found.append((path, route))
    return found


def _operations(app: FastAPI) -> dict[tuple[str, str], dict[str, Any]]:
    schema = app.openapi()
    return {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def test_every_route_declares_who_may_call_it() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    routes = _api_routes(app)
    undeclared = [path for path, route in routes if access_of(route) is None]
    assert undeclared == []
    # All of them: the API, FHIR, operations and documentation; /openapi.json is FastAPI's own.
    prefixes = {path.split("/")[1] for path, _ in routes}
    assert {"v1", "fhir", "healthz", "readyz", "metrics", "docs", "redoc"} <= prefixes
    assert len(routes) >= 95


def test_openapi_shows_each_operations_access() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    operations = _operations(app)
    for path, route in _api_routes(app):
        access = access_of(route)
        assert access is not None
        for method in route.methods or ():
            operation = operations.get((method, path))
            if operation is None:
                assert not route.include_in_schema, f"{method} {path} is missing from OpenAPI"
                continue
            assert operation["x-access"] == access.kind, (method, path)
            assert operation["x-required-roles"] == access.role_names(), (method, path)
            assert operation["description"].endswith(access.sentence()), (method, path)
    post = operations[("POST", "/v1/placements")]
    assert post["x-access"] == "roles"
    assert post["x-required-roles"] == ["referrer", "triagist"]
    assert "one of the roles referrer, triagist" in post["description"]
    assert operations[("GET", "/healthz")]["x-access"] == "public"
    assert operations[("GET", "/v1/placements")]["x-access"] == "authenticated"
    assert operations[("GET", "/v1/placements")]["x-required-roles"] == []


def test_building_the_app_twice_adds_the_sentence_once() -> None:
    for _ in range(2):
        app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    operation = _operations(app)[("GET", "/v1/audit")]
    assert operation["description"].count("Access:") == 1


def test_the_sentence_names_roles_and_sessions() -> None:
    assert Access(public=True).sentence() == "Access: public, no API key needed."
    assert Access().sentence() == "Access: an API key with any role."
    assert Access(roles=(Role.ANALYST,), session_ok=True).sentence() == (
        "Access: an API key or a signed-in web session with one of the roles analyst "
        "(an admin passes every role check)."
    )


async def test_a_key_without_the_role_gets_the_403_problem(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.post(
        "/v1/api-keys",
        json={"name": "x", "roles": ["admin"]},
        headers=auth(seed.keys["triagist"]),
    )
    body = assert_problem(r, 403)
    assert body["detail"] == "This action needs one of the roles: admin."
    assert body["type"].endswith("/forbidden")
    # The same request with an admin key is answered.
    r = await client.post(
        "/v1/api-keys",
        json={"name": "x", "roles": ["admin"]},
        headers=auth(seed.keys["admin"]),
    )
    assert r.status_code == 201, r.text


async def test_the_role_is_checked_before_the_body(client: httpx.AsyncClient, seed: Seed) -> None:
    # A provider may not refer a patient, whatever it sends.
    r = await client.post("/v1/placements", json={}, headers=auth(seed.keys["provider"]))
    body = assert_problem(r, 403)
    assert body["detail"] == "This action needs one of the roles: referrer, triagist."


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/audit"), ("GET", "/v1/partners"), ("GET", "/v1/kpis/inflow?from=x&to=y")],
)
async def test_role_routes_refuse_other_keys(
    client: httpx.AsyncClient, seed: Seed, method: str, path: str
) -> None:
    r = await client.request(method, path, headers=auth(seed.keys["provider"]))
    assert_problem(r, 403)


async def test_an_audited_routes_refusal_is_still_logged(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    r = await client.get("/v1/audit", headers=auth(seed.keys["triagist"]))
    assert_problem(r, 403)
    async with db.sessionmaker() as session:
        rows = (
            await session.scalars(select(AuditLog).where(AuditLog.event_code == "audit.list_audit"))
        ).all()
    assert [row.outcome for row in rows] == ["failure"]


async def test_public_routes_need_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/fhir/metadata")).status_code == 200
    assert (await client.get("/v1/regions")).status_code == 401
