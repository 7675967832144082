"""Bearer keys, roles and organisation scoping (docs/domain.md §14)."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem


async def test_no_key_is_401_problem(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.get("/v1/availability", params={"care_type": "elv_high"})
    assert_problem(r, 401, type_slug="unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_unknown_key_and_wrong_scheme_are_401(client: httpx.AsyncClient, seed: Seed) -> None:
    assert_problem(await client.get("/v1/units", headers=auth("jp_nope_nope")), 401)
    r = await client.get("/v1/units", headers={"Authorization": f"Basic {seed.keys['admin']}"})
    assert_problem(r, 401)


async def test_provider_cannot_report_for_another_organisation(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['den-haag-elv-high']}/capacity",
        json={"free": 1},
        headers=auth(seed.keys["provider"]),
    )
    body = assert_problem(r, 403, type_slug="forbidden")
    assert "another organisation" in body["detail"]
    own = await client.put(
        f"/v1/units/{seed.units['den-haag-elv-high']}/capacity",
        json={"free": 1},
        headers=auth(seed.other_provider_key),
    )
    assert own.status_code == 200, own.text


async def test_roles_are_enforced(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": 1},
        headers=auth(seed.keys["triagist"]),
    )
    assert "provider" in assert_problem(r, 403)["detail"]
    r = await client.get(
        "/v1/availability", params={"care_type": "elv_high"}, headers=auth(seed.keys["analyst"])
    )
    assert_problem(r, 403)
    r = await client.post(
        "/v1/api-keys", json={"name": "x", "roles": ["admin"]}, headers=auth(seed.keys["triagist"])
    )
    assert_problem(r, 403)


async def test_admin_issues_a_key_once_and_revokes_it(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.post(
        "/v1/api-keys",
        json={
            "name": "transferbureau LUMC",
            "roles": ["referrer"],
            "organisation_id": str(seed.organisations["hospital"]),
        },
        headers=auth(seed.keys["admin"]),
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["roles"] == ["referrer"]
    assert issued["key"].startswith(f"jp_{issued['prefix']}_")
    ok = await client.get("/v1/units", headers=auth(issued["key"]))
    assert ok.status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{issued['id']}", headers=auth(seed.keys["admin"]))
    assert revoked.status_code == 200
    assert "key" not in revoked.json()
    assert revoked.json()["revoked_at"] is not None
    assert_problem(await client.get("/v1/units", headers=auth(issued["key"])), 401)


async def test_non_admin_key_needs_an_organisation(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.post(
        "/v1/api-keys", json={"name": "x", "roles": ["triagist"]}, headers=auth(seed.keys["admin"])
    )
    assert_problem(r, 422)


async def test_admin_key_bootstrap(db: Database, settings: Settings) -> None:
    key = "jp_bootstrap_" + "x" * 40
    boot = Settings(
        env="test", database_url=settings.database_url, access_log=False, admin_key=SecretStr(key)
    )
    application = create_app(boot, database=db)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/v1/regions", headers=auth(key))
    assert r.status_code == 200
    assert r.json() == []
