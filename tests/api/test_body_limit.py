"""The body size limit holds for every method, before authentication, without reading the body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.auth.service import KeyResolver
from app.config import Settings
from app.db import Database
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem

CHUNK = 64 * 1024


class Body:
    """A streamed request body of ``total`` bytes that counts how much the server pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += CHUNK
            yield b"x" * CHUNK


@pytest.mark.parametrize("method", ["DELETE", "GET"])
async def test_declared_oversize_body_is_413_before_auth_and_unread(
    client: httpx.AsyncClient, seed: Seed, settings: Settings, method: str
) -> None:
    body = Body(256 * 1024 * 1024)
    r = await client.request(
        method,
        f"/v1/api-keys/{seed.units['leiden-grz']}" if method == "DELETE" else "/v1/units",
        content=body,
        headers={"content-length": str(body.total), "content-type": "application/json"},
    )
    problem = assert_problem(r, 413, type_slug="payload-too-large")
    assert str(settings.max_body_bytes) in problem["detail"]
    assert body.pulled == 0


@pytest.mark.parametrize("method", ["DELETE", "GET"])
async def test_chunked_oversize_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, seed: Seed, settings: Settings, method: str
) -> None:
    body = Body(64 * 1024 * 1024)
    r = await client.request(
        method,
        f"/v1/api-keys/{seed.units['leiden-grz']}" if method == "DELETE" else "/v1/units",
        content=body,
    )
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_problem(r, 413, type_slug="payload-too-large")
    # Read up to the limit and one chunk past it, not the 64 MiB.
    assert body.pulled <= settings.max_body_bytes + CHUNK


async def test_oversize_delete_with_a_valid_key_changes_nothing(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    analyst = await KeyResolver(db, ttl=0).resolve(f"Bearer {seed.keys['analyst']}")
    r = await client.request(
        "DELETE",
        f"/v1/api-keys/{analyst.key_id}",
        content=Body(8 * 1024 * 1024),
        headers=auth(seed.keys["admin"]),
    )
    assert_problem(r, 413)
    r = await client.get("/v1/units", headers=auth(seed.keys["analyst"]))
    assert r.status_code == 200, r.text  # the key was not revoked


async def test_small_bodies_on_any_method_still_pass(client: httpx.AsyncClient, seed: Seed) -> None:
    r = await client.request(
        "GET", "/v1/units", content=b"{}", headers={**auth(seed.keys["admin"])}
    )
    assert r.status_code == 200, r.text
    r = await client.request(
        "GET", "/v1/units", content=Body(4 * CHUNK), headers={**auth(seed.keys["admin"])}
    )
    assert r.status_code == 200, r.text
