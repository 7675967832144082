"""Limits: open event streams per key and per instance, and wrong-key floods per address."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.auth.throttle import AuthThrottle
from app.config import Settings
from app.db import Database
from app.errors import TooManyRequests
from app.main import create_app
from app.realtime.limits import StreamSlots
from tests.api.test_stream import WAIT, open_stream, serve
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem


@contextlib.asynccontextmanager
async def running(db: Database, settings: Settings, **limits: int) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update=limits), database=db)
    async with application.router.lifespan_context(application):
        yield application


async def all_closed(slots: StreamSlots) -> None:
    """Wait until the server has seen every stream's client go."""
    async with asyncio.timeout(WAIT):
        while slots.total:  # noqa: ASYNC110 - the slots are a counter, not an event
            await asyncio.sleep(0.02)


async def refused_stream(base: str, key: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=httpx.Timeout(WAIT)) as c:
        r = await c.get(f"{base}/v1/stream", headers=auth(key))
    return r


def assert_429(r: httpx.Response) -> dict[str, object]:
    body = assert_problem(r, 429, type_slug="too-many-requests")
    assert int(r.headers["retry-after"]) >= 1
    assert body["retry_after"] == int(r.headers["retry-after"])
    return body


async def test_streams_are_capped_per_key_and_per_instance(
    db: Database, settings: Settings, seed: Seed
) -> None:
    async with (
        running(db, settings, stream_max_per_key=2, stream_max_per_instance=3) as application,
        serve(application) as base,
    ):
        slots = application.state.stream_slots
        analyst, admin = seed.keys["analyst"], seed.keys["admin"]
        async with open_stream(base, analyst), open_stream(base, analyst):
            body = assert_429(await refused_stream(base, analyst))
            assert "2 open event streams" in str(body["detail"])
            async with open_stream(base, admin):
                assert slots.total == 3
                # The instance is full: even a key with no stream waits.
                body = assert_429(await refused_stream(base, seed.keys["provider"]))
                assert "no event stream free" in str(body["detail"])
        # Closed streams give their slots back.
        await all_closed(slots)
        async with open_stream(base, analyst), open_stream(base, analyst):
            assert slots.total == 2


async def test_refused_stream_requests_hold_no_slot(
    db: Database, settings: Settings, seed: Seed
) -> None:
    async with (
        running(db, settings, stream_max_per_key=1) as application,
        serve(application) as base,
    ):
        for _ in range(5):
            r = await refused_stream(base, "jp_wrong_key")
            assert_problem(r, 401)
        slots = application.state.stream_slots
        assert slots.total == 0
        async with open_stream(base, seed.keys["analyst"]):
            assert_429(await refused_stream(base, seed.keys["analyst"]))
            assert_429(await refused_stream(base, seed.keys["analyst"]))
            assert slots.total == 1
        await all_closed(slots)


def client_from(application: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_wrong_key_flood_is_throttled_per_address(
    db: Database, settings: Settings, seed: Seed
) -> None:
    async with running(db, settings, auth_failure_limit=3) as application:
        async with client_from(application, "192.0.2.10") as flood:
            for _ in range(3):
                assert_problem(await flood.get("/v1/units", headers=auth("jp_guess")), 401)
            body = assert_429(await flood.get("/v1/units", headers=auth("jp_guess")))
            assert "failed authentications" in str(body["detail"])
            assert int((await flood.get("/v1/units")).headers.get("retry-after", "0")) <= 60
            # Blocked for the rest of the window, whatever key it sends now.
            assert_429(await flood.get("/v1/units", headers=auth(seed.keys["admin"])))
        async with client_from(application, "192.0.2.11") as other:
            r = await other.get("/v1/units", headers=auth(seed.keys["admin"]))
            assert r.status_code == 200, r.text


async def test_requests_without_a_key_do_not_count(
    db: Database, settings: Settings, seed: Seed
) -> None:
    async with (
        running(db, settings, auth_failure_limit=2) as application,
        client_from(application, "192.0.2.20") as c,
    ):
        for _ in range(5):
            assert_problem(await c.get("/v1/units"), 401)
        r = await c.get("/v1/units", headers=auth(seed.keys["admin"]))
        assert r.status_code == 200, r.text


def test_throttle_window_ends_and_can_be_switched_off() -> None:
    now = [1000.0]
    throttle = AuthThrottle(limit=2, window=60, clock=lambda: now[0])
    throttle.failed("a")
    throttle.check("a")
    throttle.failed("a")
    with pytest.raises(TooManyRequests) as refused:
        throttle.check("a")
    assert refused.value.headers == {"Retry-After": "60"}
    now[0] += 45
    with pytest.raises(TooManyRequests) as refused:
        throttle.check("a")
    assert refused.value.headers == {"Retry-After": "15"}
    throttle.check("b")
    now[0] += 15
    throttle.check("a")  # the window is over
    throttle.failed("a")
    throttle.check("a")
    off = AuthThrottle(limit=0, window=60, clock=lambda: now[0])
    for _ in range(100):
        off.failed("a")
    off.check("a")
