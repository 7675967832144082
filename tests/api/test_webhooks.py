"""Webhook subscriptions and signed, retried delivery to a real HTTP receiver on 127.0.0.1.

The receivers run on loopback, which webhooks may not reach unless the operator allows the host:
these tests allow ``127.0.0.1`` the way an operator would (``JUISTEPLEK_WEBHOOK_ALLOW_HOSTS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.webhooks.dispatcher import DispatchConfig, DispatchSummary, dispatch_once
from app.webhooks.signing import verify_signature
from app.webhooks.transport import WebhookClient
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LOCAL = ["127.0.0.1"]
FAST = DispatchConfig(
    max_attempts=5, backoff_base_seconds=1, backoff_cap_seconds=8, timeout_seconds=5
)


@dataclass
class Receiver:
    """An ASGI webhook receiver: answers 500 to the first ``fail_first`` requests, then 200."""

    fail_first: int = 0
    always_fail: bool = False
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append((headers, body))
        self.arrived.set()
        failing = self.always_fail or len(self.requests) <= self.fail_first
        status = 500 if failing else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"oops" if failing else b""})

    def unique_events(self) -> dict[str, tuple[dict[str, str], bytes]]:
        """Dedupe by JuistePlek-Event-Id, as receivers are told to."""
        out: dict[str, tuple[dict[str, str], bytes]] = {}
        for headers, body in self.requests:
            out.setdefault(headers["juisteplek-event-id"], (headers, body))
        return out


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
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


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    async with serve(r) as url:
        yield r, url


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The app's settings with the loopback receivers allowed."""
    return settings.model_copy(update={"webhook_allow_hosts": LOCAL})


@pytest.fixture
async def http() -> AsyncIterator[WebhookClient]:
    async with WebhookClient(allow_hosts=LOCAL) as c:
        yield c


async def subscribe(
    client: httpx.AsyncClient, key: str, url: str, event_types: list[str], **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        "/v1/webhook-subscriptions",
        json={"url": url, "event_types": event_types, **extra},
        headers=auth(key),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def report(client: httpx.AsyncClient, seed: Seed, unit: str, free: int) -> None:
    r = await client.put(
        f"/v1/units/{seed.units[unit]}/capacity",
        json={"free": free},
        headers=auth(seed.keys["provider"]),
    )
    assert r.status_code == 200, r.text


async def drain(
    db: Database, http: WebhookClient, *, start: datetime = T0, passes: int = 40
) -> tuple[datetime, list[DispatchSummary]]:
    """Run dispatch passes, moving the clock past every backoff, until nothing is left to do."""
    now, summaries = start, []
    for _ in range(passes):
        summary = await dispatch_once(db, now=now, client=http, config=FAST, rand=lambda: 0.5)
        summaries.append(summary)
        if not summary.busy:
            break
        now += timedelta(seconds=FAST.backoff_cap_seconds)
    return now, summaries


# --- subscriptions ----------------------------------------------------------------------------


async def test_create_shows_secret_once_and_lists_own_organisation(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    created = await subscribe(
        client,
        seed.keys["provider"],
        "https://hooks.example.nl/jp",
        ["capacity.reported", "placement.*"],
        description="planning desk",
    )
    assert created["secret"].startswith("whsec_")
    assert created["organisation_id"] == str(seed.organisations["vvt-leiden"])
    assert created["event_types"] == ["capacity.reported", "placement.*"]
    await subscribe(client, seed.keys["referrer"], "https://lumc.example.nl/h", ["*"])

    own = await client.get("/v1/webhook-subscriptions", headers=auth(seed.keys["provider"]))
    assert own.status_code == 200
    assert [s["id"] for s in own.json()["items"]] == [created["id"]]
    assert "secret" not in own.json()["items"][0]
    one = await client.get(
        f"/v1/webhook-subscriptions/{created['id']}", headers=auth(seed.keys["provider"])
    )
    assert one.status_code == 200
    assert "secret" not in one.json()

    everything = await client.get("/v1/webhook-subscriptions", headers=auth(seed.keys["admin"]))
    assert len(everything.json()["items"]) == 2
    page = await client.get(
        "/v1/webhook-subscriptions", params={"limit": 1}, headers=auth(seed.keys["admin"])
    )
    second = await client.get(
        "/v1/webhook-subscriptions",
        params={"limit": 1, "cursor": page.json()["next_cursor"]},
        headers=auth(seed.keys["admin"]),
    )
    ids = [page.json()["items"][0]["id"], second.json()["items"][0]["id"]]
    assert sorted(ids) == sorted(s["id"] for s in everything.json()["items"])
    assert second.json()["next_cursor"] is None


async def test_roles_and_organisations(client: httpx.AsyncClient, seed: Seed) -> None:
    url = "https://hooks.example.nl/jp"
    r = await client.post(
        "/v1/webhook-subscriptions",
        json={"url": url, "event_types": ["*"]},
        headers=auth(seed.keys["analyst"]),
    )
    assert_problem(r, 403, type_slug="forbidden")
    r = await client.post(
        "/v1/webhook-subscriptions",
        json={
            "url": url,
            "event_types": ["*"],
            "organisation_id": str(seed.organisations["hospital"]),
        },
        headers=auth(seed.keys["provider"]),
    )
    assert_problem(r, 403)
    r = await client.post(
        "/v1/webhook-subscriptions",
        json={"url": url, "event_types": ["*"]},
        headers=auth(seed.keys["admin"]),
    )
    assert pointers(assert_problem(r, 422)) == ["#/organisation_id"]
    by_admin = await subscribe(
        client,
        seed.keys["admin"],
        url,
        ["*"],
        organisation_id=str(seed.organisations["hospital"]),
    )
    # another organisation's subscription: not readable, deletable or listable
    path = f"/v1/webhook-subscriptions/{by_admin['id']}"
    assert_problem(await client.get(path, headers=auth(seed.keys["provider"])), 403)
    assert_problem(await client.delete(path, headers=auth(seed.keys["provider"])), 403)
    r = await client.get(
        "/v1/webhook-subscriptions",
        params={"organisation_id": str(seed.organisations["hospital"])},
        headers=auth(seed.keys["provider"]),
    )
    assert_problem(r, 403)
    assert_problem(await client.get(path + "/deliveries", headers=auth(seed.keys["triagist"])), 403)
    # the owner (referrer of the hospital) manages it
    r = await client.delete(path, headers=auth(seed.keys["referrer"]))
    assert r.status_code == 200, r.text
    assert r.json()["deleted_at"] is not None
    assert_problem(await client.get(path, headers=auth(seed.keys["referrer"])), 404)
    assert_problem(await client.delete(path, headers=auth(seed.keys["referrer"])), 404)
    assert_problem(await client.get("/v1/webhook-subscriptions"), 401)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"url": "ftp://x.nl/h", "event_types": ["*"]}, "#/url"),
        ({"url": "https://u:p@x.nl/h", "event_types": ["*"]}, "#/url"),
        ({"url": "https://x.nl:70000/h", "event_types": ["*"]}, "#/url"),
        ({"url": "x" * 2001, "event_types": ["*"]}, "#/url"),
        ({"url": "https://x.nl/\u0000", "event_types": ["*"]}, "#/url"),
        ({"url": "https://x.nl/h", "event_types": []}, "#/event_types"),
        ({"url": "https://x.nl/h", "event_types": ["a" * 60] * 17}, "#/event_types"),
        ({"url": "https://x.nl/h", "event_types": ["a" * 61]}, "#/event_types/0"),
        ({"url": "https://x.nl/h", "event_types": ["Placement.*"]}, "#/event_types/0"),
        ({"url": "https://x.nl/h", "event_types": ["placement.**"]}, "#/event_types/0"),
        ({"url": "https://x.nl/h", "event_types": "capacity.reported"}, "#/event_types"),
        ({"url": "https://x.nl/h", "event_types": ["*"], "secret": "mine"}, "#/secret"),
        ({"url": 5, "event_types": ["*"]}, "#/url"),
    ],
)
async def test_invalid_subscriptions_are_422(
    client: httpx.AsyncClient, seed: Seed, body: dict[str, Any], pointer: str
) -> None:
    r = await client.post(
        "/v1/webhook-subscriptions", json=body, headers=auth(seed.keys["provider"])
    )
    assert pointers(assert_problem(r, 422)) == [pointer]


async def test_loopback_target_refused_unless_allowed(
    db: Database, settings: Settings, seed: Seed
) -> None:
    strict = settings.model_copy(update={"webhook_allow_hosts": []})
    application = create_app(strict, database=db)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        r = await c.post(
            "/v1/webhook-subscriptions",
            json={"url": "http://127.0.0.1:9/h", "event_types": ["*"]},
            headers=auth(seed.keys["provider"]),
        )
    assert pointers(assert_problem(r, 422)) == ["#/url"]


async def test_malformed_ids_and_cursors_are_4xx(client: httpx.AsyncClient, seed: Seed) -> None:
    key = auth(seed.keys["provider"])
    assert_problem(await client.get("/v1/webhook-subscriptions/not-a-uuid", headers=key), 422)
    r = await client.get("/v1/webhook-subscriptions", params={"cursor": "%%%"}, headers=key)
    assert_problem(r, 422)
    r = await client.get("/v1/webhook-subscriptions", params={"cursor": "MjAyMHx4"}, headers=key)
    assert_problem(r, 422)
    sub = await subscribe(client, seed.keys["provider"], "https://x.nl/h", ["*"])
    path = f"/v1/webhook-subscriptions/{sub['id']}/deliveries"
    assert_problem(await client.get(path, params={"cursor": "eA"}, headers=key), 422)
    superscript_two = "wrI"  # base64 of "²", which str.isdigit() accepts
    r = await client.get(path, params={"cursor": superscript_two}, headers=key)
    assert_problem(r, 422)
    huge = "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ"  # base64 of 22 nines: beyond bigint
    assert_problem(await client.get(path, params={"cursor": huge}, headers=key), 422)
    assert_problem(await client.get(path, params={"status": "lost"}, headers=key), 422)
    r = await client.post(f"{path}/{uuid.uuid4()}/redeliver", headers=key)
    assert_problem(r, 404)


# --- delivery ---------------------------------------------------------------------------------


async def test_retries_until_the_receiver_recovers_and_every_event_arrives_once(
    client: httpx.AsyncClient,
    db: Database,
    seed: Seed,
    receiver: tuple[Receiver, str],
    http: WebhookClient,
) -> None:
    rec, url = receiver
    rec.fail_first = 4
    sub = await subscribe(client, seed.keys["provider"], url + "/hook", ["capacity.*"])
    other = await subscribe(client, seed.other_provider_key, url + "/other", ["capacity.reported"])
    for free in (1, 2, 0):
        await report(client, seed, "leiden-elv-high", free)
    await report(client, seed, "leiden-grz", 3)

    _, summaries = await drain(db, http)
    assert summaries[-1].busy is False
    assert sum(s.delivered for s in summaries) == 4
    assert sum(s.deliveries_created for s in summaries) == 4

    # at least once, and exactly once per event id after dedupe
    unique = rec.unique_events()
    assert len(rec.requests) == 4 + 4  # four 500s, then each event once
    assert len(unique) == 4
    for headers, body in rec.requests:
        assert headers["content-type"] == "application/json"
        assert verify_signature(
            sub["secret"],
            headers["juisteplek-signature"],
            body,
            now=int(headers["juisteplek-signature"].split(",")[0][2:]),
        )
        assert not verify_signature(
            other["secret"], headers["juisteplek-signature"], body, now=int(T0.timestamp())
        )
        event = orjson.loads(body)
        assert event["id"] == headers["juisteplek-event-id"]
        assert event["type"] == headers["juisteplek-event-type"] == "capacity.reported"
        assert event["data"]["unit_id"] in {
            str(seed.units["leiden-elv-high"]),
            str(seed.units["leiden-grz"]),
        }
    # the other organisation's subscription got nothing: the events were not about it
    assert {h["juisteplek-event-id"] for h, _ in rec.requests} == set(unique)

    log = await client.get(
        f"/v1/webhook-subscriptions/{sub['id']}/deliveries", headers=auth(seed.keys["provider"])
    )
    assert log.status_code == 200, log.text
    items = log.json()["items"]
    assert [d["status"] for d in items] == ["delivered"] * 4
    assert [d["sequence"] for d in items] == sorted((d["sequence"] for d in items), reverse=True)
    assert sum(len(d["attempt_log"]) for d in items) == 8
    assert {d["id"] for d in items} == {h["juisteplek-delivery-id"] for h, _ in rec.requests}
    assert {d["event_id"] for d in items} == set(unique)
    retried = [d for d in items if d["attempts"] > 1]
    assert retried
    for d in retried:
        outcomes = [a["outcome"] for a in d["attempt_log"]]
        assert outcomes[-1] == "delivered"
        assert set(outcomes[:-1]) == {"retry"}
        assert d["attempt_log"][0]["status_code"] == 500
    other_log = await client.get(
        f"/v1/webhook-subscriptions/{other['id']}/deliveries", headers=auth(seed.other_provider_key)
    )
    assert other_log.json()["items"] == []


async def test_backoff_schedule_and_dead_letter_then_redeliver(
    client: httpx.AsyncClient,
    db: Database,
    seed: Seed,
    receiver: tuple[Receiver, str],
    http: WebhookClient,
) -> None:
    rec, url = receiver
    rec.always_fail = True
    sub = await subscribe(client, seed.keys["provider"], url, ["capacity.reported"])
    await report(client, seed, "leiden-elv-high", 1)
    config = DispatchConfig(max_attempts=3, backoff_base_seconds=10, backoff_cap_seconds=15)

    first = await dispatch_once(db, now=T0, client=http, config=config, rand=lambda: 1.0)
    assert (first.attempted, first.retrying) == (1, 1)
    # not due yet: 10 s after the first failure
    early = await dispatch_once(
        db, now=T0 + timedelta(seconds=9), client=http, config=config, rand=lambda: 1.0
    )
    assert early.attempted == 0
    second = await dispatch_once(
        db, now=T0 + timedelta(seconds=10), client=http, config=config, rand=lambda: 1.0
    )
    assert (second.attempted, second.retrying) == (1, 1)
    third = await dispatch_once(
        db, now=T0 + timedelta(seconds=30), client=http, config=config, rand=lambda: 1.0
    )
    assert (third.attempted, third.failed) == (1, 1)
    path = f"/v1/webhook-subscriptions/{sub['id']}/deliveries"
    key = auth(seed.keys["provider"])
    dead = (await client.get(path, params={"status": "failed"}, headers=key)).json()["items"]
    assert len(dead) == 1
    assert dead[0]["attempts"] == 3
    assert dead[0]["next_attempt_at"] is None
    assert dead[0]["last_status_code"] == 500
    assert [a["outcome"] for a in dead[0]["attempt_log"]] == ["retry", "retry", "failed"]
    later = await dispatch_once(db, now=T0 + timedelta(days=1), client=http, config=config)
    assert later.attempted == 0

    rec.always_fail = False
    r = await client.post(f"{path}/{dead[0]['id']}/redeliver", headers=key)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    # redeliver is due at once (real time), so a pass at real "now" sends it
    done = await dispatch_once(db, now=datetime.now(UTC), client=http, config=config)
    assert done.delivered == 1
    assert len(rec.requests) == 4
    assert len(rec.unique_events()) == 1
    delivered = (await client.get(path, params={"status": "delivered"}, headers=key)).json()
    assert delivered["items"][0]["delivered_at"] is not None


async def test_unreachable_receiver_is_retried_and_logged(
    client: httpx.AsyncClient, db: Database, seed: Seed, http: WebhookClient
) -> None:
    # A port nobody listens on: the connection is refused.
    async with serve(Receiver()) as url:
        dead_url = url
    sub = await subscribe(client, seed.keys["provider"], dead_url, ["*"])
    await report(client, seed, "leiden-elv-high", 1)
    summary = await dispatch_once(db, now=T0, client=http, config=FAST)
    assert (summary.attempted, summary.retrying) == (1, 1)
    items = (
        await client.get(
            f"/v1/webhook-subscriptions/{sub['id']}/deliveries",
            headers=auth(seed.keys["provider"]),
        )
    ).json()["items"]
    assert items[0]["status"] == "pending"
    assert items[0]["last_status_code"] is None
    assert items[0]["last_error"] == "connect_failed"
    assert items[0]["attempt_log"][0]["error"] == "connect_failed"


async def test_only_new_matching_events_of_the_organisation_are_delivered(
    client: httpx.AsyncClient,
    db: Database,
    seed: Seed,
    receiver: tuple[Receiver, str],
    http: WebhookClient,
) -> None:
    rec, url = receiver
    await report(client, seed, "leiden-elv-high", 1)  # before the subscription: not delivered
    await subscribe(client, seed.keys["provider"], url + "/cap", ["capacity.reported"])
    await subscribe(client, seed.keys["provider"], url + "/plc", ["placement.*"])
    await subscribe(client, seed.other_provider_key, url + "/den-haag", ["*"])
    await report(client, seed, "leiden-elv-high", 2)
    await drain(db, http)
    assert [h["juisteplek-event-type"] for h, _ in rec.requests] == ["capacity.reported"]
    assert len(rec.requests) == 1


async def test_delete_stops_pending_deliveries(
    client: httpx.AsyncClient,
    db: Database,
    seed: Seed,
    receiver: tuple[Receiver, str],
    http: WebhookClient,
) -> None:
    rec, url = receiver
    rec.always_fail = True
    sub = await subscribe(client, seed.keys["provider"], url, ["*"])
    await report(client, seed, "leiden-elv-high", 1)
    await dispatch_once(db, now=T0, client=http, config=FAST)
    r = await client.delete(
        f"/v1/webhook-subscriptions/{sub['id']}", headers=auth(seed.keys["provider"])
    )
    assert r.status_code == 200
    summary = await dispatch_once(db, now=T0 + timedelta(hours=1), client=http, config=FAST)
    assert summary.attempted == 0
    assert len(rec.requests) == 1


async def test_concurrent_dispatchers_send_each_delivery_once(
    client: httpx.AsyncClient,
    db: Database,
    seed: Seed,
    receiver: tuple[Receiver, str],
) -> None:
    rec, url = receiver
    await subscribe(client, seed.keys["provider"], url, ["*"])
    for free in range(8):
        await report(client, seed, "leiden-elv-high", free)
    config = DispatchConfig(batch_size=3)

    async def worker() -> None:
        async with WebhookClient(allow_hosts=LOCAL) as own_client:
            for _ in range(10):
                await dispatch_once(db, now=T0, client=own_client, config=config)

    await asyncio.gather(*(worker() for _ in range(4)))
    assert len(rec.unique_events()) == 8
    assert len(rec.requests) == 8  # claims never overlap while leases hold


async def test_background_dispatcher_delivers_after_commit(
    db: Database, settings: Settings, seed: Seed, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    live = settings.model_copy(
        update={"webhook_dispatch_enabled": True, "webhook_poll_seconds": 0.2}
    )
    application: FastAPI = create_app(live, database=db)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        sub = await subscribe(c, seed.keys["provider"], url, ["capacity.reported"])
        await report(c, seed, "leiden-elv-high", 2)
        async with asyncio.timeout(10):
            await rec.arrived.wait()
        headers, body = rec.requests[0]
        assert verify_signature(
            sub["secret"],
            headers["juisteplek-signature"],
            body,
            now=int(datetime.now(UTC).timestamp()),
        )
        assert orjson.loads(body)["data"]["free"] == 2
