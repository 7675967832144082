"""``GET /v1/stream``: live capacity and placement events over a real HTTP connection."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import insert, update

from app.auth.models import ApiKey
from app.config import Settings
from app.db import Database, utcnow
from app.main import create_app
from app.realtime.models import OutboxEvent
from app.realtime.outbox import publish
from app.realtime.service import latest_id
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem

Frame = dict[str, str]
WAIT = 10.0  # generous: CI machines are shared; a passing run takes milliseconds


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run an already started app under uvicorn on a free loopback port; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def sse_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    frame: Frame = {}
    async for line in response.aiter_lines():
        if line == "":
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            frame["comment"] = line[1:].strip()
        else:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            frame[key] = f"{frame[key]}\n{value}" if key in frame else value


class Stream:
    def __init__(self, frames: AsyncIterator[Frame]) -> None:
        self.frames = frames

    async def event(self, within: float = WAIT) -> Frame:
        """The next event frame (heartbeats skipped)."""
        async with asyncio.timeout(within):
            while True:
                frame = await anext(self.frames)
                if "event" in frame:
                    return frame

    async def until(self, event_type: str, within: float = WAIT) -> list[Frame]:
        """Events up to and including the first of ``event_type``."""
        seen = []
        async with asyncio.timeout(within):
            while True:
                frame = await self.event(within)
                seen.append(frame)
                if frame["event"] == event_type:
                    return seen


@contextlib.asynccontextmanager
async def open_stream(base: str, key: str, **headers: str) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(WAIT)) as c,
        c.stream("GET", f"{base}/v1/stream", headers={**auth(key), **headers}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        frames = sse_frames(r)
        first = await anext(frames)  # sent once the subscription is live
        while first.get("comment", "").startswith("ping"):  # a heartbeat may come first
            first = await anext(frames)
        assert first == {"comment": "connected", "retry": "3000"}
        yield Stream(frames)


@pytest.fixture
async def base(app: FastAPI) -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


async def report(client: httpx.AsyncClient, seed: Seed, free: int) -> None:
    r = await client.put(
        f"/v1/units/{seed.units['leiden-elv-high']}/capacity",
        json={"free": free},
        headers=auth(seed.keys["provider"]),
    )
    assert r.status_code == 200, r.text


async def publish_placement(db: Database, seed: Seed, event_type: str) -> int:
    async with db.sessionmaker() as session:
        event = await publish(
            session,
            topic="placement",
            event_type=event_type,
            payload={"placement_id": str(uuid.uuid4()), "state": "created"},
            region_id=seed.region_id,
            organisation_ids=[seed.organisations["hospital"], seed.organisations["vvt-leiden"]],
        )
        await session.commit()
        return event.id


async def test_capacity_report_reaches_the_stream(
    app: FastAPI, base: str, client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    async with open_stream(base, seed.keys["analyst"]) as stream:
        assert app.state.hub.subscriber_count == 1
        before = await latest_id(db)
        await report(client, seed, 1)
        frame = await stream.event()
    async with asyncio.timeout(WAIT):  # the server notices the disconnect and unsubscribes
        while app.state.hub.subscriber_count:  # noqa: ASYNC110 - polling a plain counter
            await asyncio.sleep(0.01)
    assert frame["event"] == "capacity.reported"
    assert int(frame["id"]) == before + 1
    body = orjson.loads(frame["data"])
    assert body["type"] == "capacity.reported"
    assert body["topic"] == "capacity"
    assert body["sequence"] == int(frame["id"])
    assert body["data"]["unit_id"] == str(seed.units["leiden-elv-high"])
    assert body["data"]["free"] == 1
    uuid.UUID(body["id"])


async def test_a_revoked_key_gets_no_further_events(
    base: str, client: httpx.AsyncClient, seed: Seed
) -> None:
    r = await client.post(
        "/v1/api-keys",
        json={
            "name": "wall board",
            "roles": ["analyst"],
            "organisation_id": str(seed.organisations["rap"]),
        },
        headers=auth(seed.keys["admin"]),
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    async with open_stream(base, issued["key"]) as stream:
        await report(client, seed, 1)
        assert (await stream.event())["event"] == "capacity.reported"
        revoked = await client.delete(
            f"/v1/api-keys/{issued['id']}", headers=auth(seed.keys["admin"])
        )
        assert revoked.status_code == 200
        await report(client, seed, 2)
        with pytest.raises(StopAsyncIteration):  # the stream ends instead of sending it
            await stream.event()
    async with httpx.AsyncClient(base_url=base) as c:
        again = await c.get("/v1/stream", headers=auth(issued["key"]))
    assert again.status_code == 401


async def test_placement_events_are_filtered_by_role(
    base: str, client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    keys = {
        "admin": seed.keys["admin"],
        "triagist": seed.keys["triagist"],
        "referrer": seed.keys["referrer"],
        "provider": seed.keys["provider"],
        "analyst": seed.keys["analyst"],
        "other-provider": seed.other_provider_key,
    }
    async with contextlib.AsyncExitStack() as stack:
        streams = {
            name: await stack.enter_async_context(open_stream(base, key))
            for name, key in keys.items()
        }
        await publish_placement(db, seed, "placement.created")
        await report(client, seed, 2)  # a marker every key sees, after the placement event
        seen = {
            name: [f["event"] for f in await s.until("capacity.reported")]
            for name, s in streams.items()
        }
    with_placement = ["placement.created", "capacity.reported"]
    assert seen == {
        "admin": with_placement,
        "triagist": with_placement,  # same region
        "referrer": with_placement,  # its organisation is concerned
        "provider": with_placement,  # idem
        "analyst": ["capacity.reported"],  # aggregates only
        "other-provider": ["capacity.reported"],  # not concerned
    }


async def test_topic_filter(base: str, client: httpx.AsyncClient, db: Database, seed: Seed) -> None:
    async with open_stream(base, seed.keys["admin"]) as everything:
        async with (
            httpx.AsyncClient(timeout=WAIT) as c,
            c.stream(
                "GET",
                f"{base}/v1/stream",
                params={"topic": "placement"},
                headers=auth(seed.keys["admin"]),
            ) as r,
        ):
            frames = sse_frames(r)
            await anext(frames)
            only = Stream(frames)
            await report(client, seed, 1)
            await publish_placement(db, seed, "placement.accepted")
            assert (await only.event())["event"] == "placement.accepted"
        assert [f["event"] for f in await everything.until("placement.accepted")] == [
            "capacity.reported",
            "placement.accepted",
        ]


async def test_last_event_id_replays_then_goes_live(
    base: str, client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    start = await latest_id(db)
    for free in (1, 2, 3):
        await report(client, seed, free)
    await publish_placement(db, seed, "placement.created")  # invisible to the analyst
    async with open_stream(base, seed.keys["analyst"], **{"Last-Event-ID": str(start + 1)}) as s:
        replayed = [await s.event(), await s.event()]
        await report(client, seed, 4)
        live = await s.event()
    assert [int(f["id"]) for f in replayed] == [start + 2, start + 3]
    assert [orjson.loads(f["data"])["data"]["free"] for f in replayed] == [2, 3]
    assert int(live["id"]) == start + 5
    assert orjson.loads(live["data"])["data"]["free"] == 4
    # the query parameter works the same for clients that cannot set headers
    async with (
        httpx.AsyncClient(timeout=WAIT) as c,
        c.stream(
            "GET",
            f"{base}/v1/stream",
            params={"after": start},
            headers=auth(seed.keys["triagist"]),
        ) as r,
    ):
        frames = sse_frames(r)
        await anext(frames)
        got = [await Stream(frames).event() for _ in range(4)]
    assert [int(f["id"]) for f in got] == [start + 1, start + 2, start + 3, start + 4]
    assert got[3]["event"] == "placement.created"


async def test_rows_written_without_notification_arrive_by_the_poll(
    db: Database, settings: Settings, seed: Seed
) -> None:
    """The safety net: a row committed without bus or NOTIFY still reaches the stream."""
    quick = settings.model_copy(update={"outbox_poll_seconds": 0.2})
    application = create_app(quick, database=db)
    async with (
        application.router.lifespan_context(application),
        serve(application) as url,
        open_stream(url, seed.keys["analyst"]) as stream,
    ):
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(OutboxEvent).values(
                    event_id=uuid.uuid4(),
                    topic="capacity",
                    event_type="capacity.reported",
                    payload='{"free": 9}',
                    organisation_ids="",
                    created_at=utcnow(),
                )
            )
        frame = await stream.event(within=3)
    assert orjson.loads(frame["data"])["data"] == {"free": 9}


async def test_heartbeat_comments(db: Database, settings: Settings, seed: Seed) -> None:
    quick = settings.model_copy(update={"stream_heartbeat_seconds": 0.1})
    application = create_app(quick, database=db)
    async with (
        application.router.lifespan_context(application),
        serve(application) as url,
        open_stream(url, seed.keys["analyst"]) as stream,
    ):
        async with asyncio.timeout(3):
            frame = await anext(stream.frames)
    assert frame == {"comment": "ping"} or frame.get("comment", "").startswith("ping")


@pytest.mark.postgres_only
async def test_late_commit_with_lower_id_is_not_lost(
    base: str, db: Database, seed: Seed, backend: str
) -> None:
    """PostgreSQL ids can commit out of order; the hub still sends the lower id."""
    async with open_stream(base, seed.keys["admin"]) as stream:
        async with db.sessionmaker() as slow:
            low = await publish(
                slow, topic="capacity", event_type="capacity.reported", payload={"n": "low"}
            )
            high = await publish_placement(db, seed, "placement.created")
            assert high > low.id
            first = await stream.event()
            await slow.commit()
        second = await stream.event()
    assert [int(first["id"]), int(second["id"])] == [high, low.id]


async def test_errors_are_problems(client: httpx.AsyncClient, seed: Seed) -> None:
    assert_problem(await client.get("/v1/stream"), 401)
    r = await client.get("/v1/stream", headers={**auth(seed.keys["admin"]), "Last-Event-ID": "abc"})
    assert_problem(r, 422)
    r = await client.get("/v1/stream", params={"after": -1}, headers=auth(seed.keys["admin"]))
    assert_problem(r, 422)
    r = await client.get("/v1/stream", params={"topic": "audit"}, headers=auth(seed.keys["admin"]))
    assert_problem(r, 422)


async def test_openapi_documents_an_event_stream(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/stream"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "application/json" not in operation["responses"]["200"]["content"]
    assert "application/problem+json" in operation["responses"]["401"]["content"]


async def test_a_key_revoked_elsewhere_ends_its_stream_without_an_event(
    base: str, app: FastAPI, client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    """Another instance revoked the key (a direct update here): the periodic key check ends the
    stream even though no event comes to trigger a check."""
    r = await client.post(
        "/v1/api-keys",
        json={
            "name": "board",
            "roles": ["analyst"],
            "organisation_id": str(seed.organisations["rap"]),
        },
        headers=auth(seed.keys["admin"]),
    )
    issued = r.json()
    async with open_stream(base, issued["key"]) as stream:
        async with db.engine.begin() as conn:
            await conn.execute(
                update(ApiKey)
                .where(ApiKey.id == uuid.UUID(issued["id"]))
                .values(revoked_at=utcnow())
            )
        with pytest.raises(StopAsyncIteration):
            await stream.event(within=WAIT)
    assert app.state.hub.subscriber_count == 0


async def test_a_client_that_goes_away_is_unsubscribed_at_once(
    db: Database, settings: Settings, seed: Seed
) -> None:
    """Not only at the next write: the hub stops offering it events when the client leaves."""
    slow = settings.model_copy(update={"stream_heartbeat_seconds": 300})
    application = create_app(slow, database=db)
    async with application.router.lifespan_context(application), serve(application) as url:
        hub = application.state.hub
        async with open_stream(url, seed.keys["analyst"]):
            assert hub.subscriber_count == 1
        async with asyncio.timeout(WAIT):
            while hub.subscriber_count:  # noqa: ASYNC110 - polling a counter
                await asyncio.sleep(0.02)
        assert hub.subscriber_count == 0
