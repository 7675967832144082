"""Web pages over HTTP (no browser): front door, offline API docs, errors as pages, CSRF."""

from __future__ import annotations

import re

import httpx

from app.db import Database
from app.enums import Role
from tests.factories import Seed, add_person


async def test_api_docs_load_their_assets_from_the_app(client: httpx.AsyncClient) -> None:
    for path, asset in (
        ("/docs", "/ui/static/vendor/swagger-ui-bundle.js"),
        ("/redoc", "/ui/static/vendor/redoc.standalone.js"),
    ):
        r = await client.get(path)
        assert r.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert asset in sources
        assert [s for s in sources if s.startswith(("http:", "https:", "//"))] == []
        asset_response = await client.get(asset)
        assert asset_response.status_code == 200
        assert len(asset_response.content) > 500_000
    r = await client.get("/ui/static/vendor/swagger-ui.css")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")


async def test_front_door_and_error_pages_are_html_while_the_api_keeps_problems(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    r = await client.get("/")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"
    r = await client.get("/ui/board")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login?next=/ui/board"
    r = await client.get("/ui/board", headers={"HX-Request": "true"})
    assert r.headers["hx-redirect"] == "/ui/login?next=/ui/board"
    r = await client.get("/ui/does-not-exist", headers={"Accept-Language": "en"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Page not found" in r.text
    r = await client.get("/v1/does-not-exist")
    assert r.headers["content-type"] == "application/problem+json"
    # A login page next= pointing elsewhere is dropped.
    r = await client.get("/ui/login", params={"next": "//evil.example/x"})
    assert re.findall(r"name=\"next\" value=\"([^\"]*)\"", r.text) == [""]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert "no-store" not in (await client.get("/ui/static/app.css")).headers.get(
        "cache-control", ""
    )
    assert "default-src 'self'" in r.headers["content-security-policy"]

    person = await add_person(db, Role.REFERRER, seed.organisations["hospital"])
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert token is not None
    r = await client.post(
        "/ui/login",
        data={
            "email": person.email,
            "password": person.password,
            "csrf_token": token.group(1),
            "next": "https://evil.example/",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/placements"
    r = await client.get("/")
    assert r.headers["location"] == "/ui/placements"
    # An htmx request carries the token in a header instead of the form.
    r = await client.post("/ui/logout", headers={"X-CSRF-Token": token.group(1)})
    assert r.status_code == 303
    r = await client.get("/")
    assert r.headers["location"] == "/ui/login"
