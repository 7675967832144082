"""Webhook targets: refused in every notation at registration, addresses checked at delivery
(DNS rebinding), one bad subscription never holding up another, a delivery log without raw
connection errors, and Standard Webhooks signatures a receiver verifies with the library."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from standardwebhooks import Webhook, WebhookVerificationError

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.realtime.models import OutboxEvent
from app.webhooks.dispatcher import DispatchConfig, dispatch_once, fan_out
from app.webhooks.models import WebhookDelivery, WebhookSubscription
from app.webhooks.transport import AddressGuard, RefusedAddress, WebhookClient
from tests.api.test_webhooks import LOCAL, T0, Receiver, report, serve, subscribe
from tests.conftest import auth
from tests.factories import Seed
from tests.helpers import assert_problem, pointers


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_hosts": LOCAL})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    r = Receiver()
    async with serve(r) as url:
        yield r, url


def _resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


async def _deliveries(db: Database, sub_id: str) -> list[WebhookDelivery]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.subscription_id == uuid.UUID(sub_id))
        )
        return list(rows)


# --- registration -----------------------------------------------------------------------------

REFUSED_EVERYWHERE = [
    "http://999.999.999.999/hook",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0x7f.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0/",
    "http://0.0.0.0/",
    "http://127.0.0.1:8080/",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/",
    "http://192.168.1.10/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[fe80::1]/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[fe80::1%25eth0]/",
    "http://localhost:8000/",
    "http://metadata.google.internal/",
    "http://a..b/",
]


@pytest.mark.parametrize("env", ["development", "production"])
async def test_unparsable_and_non_public_targets_are_refused_in_every_mode(
    db: Database, settings: Settings, seed: Seed, env: str
) -> None:
    plain = settings.model_copy(
        update={
            "webhook_allow_hosts": [],
            "env": env,
            "placement_sweeper_enabled": False,
            "webhook_dispatch_enabled": False,
        }
    )
    application = create_app(plain, database=db)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        for url in REFUSED_EVERYWHERE:
            if env == "production":
                url = url.replace("http://", "https://")
            r = await c.post(
                "/v1/webhook-subscriptions",
                json={"url": url, "event_types": ["*"]},
                headers=auth(seed.keys["provider"]),
            )
            assert pointers(assert_problem(r, 422)) == ["#/url"], url


async def test_production_requires_https(db: Database, settings: Settings, seed: Seed) -> None:
    production = settings.model_copy(
        update={
            "env": "production",
            "webhook_allow_hosts": ["hooks.lan"],
            "placement_sweeper_enabled": False,
            "webhook_dispatch_enabled": False,
        }
    )
    application = create_app(production, database=db)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        key = auth(seed.keys["provider"])
        for url in ("http://hooks.example.nl/h", "http://hooks.lan/h"):
            r = await c.post(
                "/v1/webhook-subscriptions", json={"url": url, "event_types": ["*"]}, headers=key
            )
            body = assert_problem(r, 422)
            assert pointers(body) == ["#/url"]
            assert "https" in body["errors"][0]["detail"]
        r = await c.post(
            "/v1/webhook-subscriptions",
            json={"url": "https://hooks.example.nl/h", "event_types": ["*"]},
            headers=key,
        )
        assert r.status_code == 201, r.text


# --- the address guard at connection time -----------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["93.184.216.34", "10.1.2.3"],  # any non-public address refuses the host
        ["::ffff:127.0.0.1"],
        ["169.254.169.254"],
        ["fe80::1"],
        ["0.0.0.0"],
        ["64:ff9b::a00:1"],
    ],
)
async def test_guard_refuses_a_name_resolving_to_any_non_public_address(
    answer: list[str],
) -> None:
    guard = AddressGuard(resolve=_resolver({"hooks.example.nl": answer}))
    with pytest.raises(RefusedAddress):
        await guard.addresses("hooks.example.nl", 443, timeout=1)
    allowed = AddressGuard(frozenset({"hooks.example.nl"}), _resolver({"hooks.example.nl": answer}))
    assert await allowed.addresses("hooks.example.nl", 443, timeout=1) == answer


async def test_dns_rebinding_is_refused_at_delivery_and_allowed_hosts_reach_the_checked_address(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    """A name that was harmless at registration but now resolves to loopback is refused; the
    connection goes to the address the guard checked (the name resolves nowhere else)."""
    receiver = Receiver()
    async with serve(receiver) as base:
        port = base.rsplit(":", 1)[1]
        sub = await subscribe(
            client, seed.keys["provider"], f"http://rebind.example.nl:{port}/h", ["*"]
        )
        await report(client, seed, "leiden-elv-high", 1)
        rebound = _resolver({"rebind.example.nl": ["127.0.0.1"]})
        async with WebhookClient(resolve=rebound) as guarded:
            first = await dispatch_once(db, now=T0, client=guarded)
        assert (first.attempted, first.retrying) == (1, 1)
        assert receiver.requests == []
        [delivery] = await _deliveries(db, sub["id"])
        assert delivery.last_error == "refused_address"

        async with WebhookClient(allow_hosts=["rebind.example.nl"], resolve=rebound) as allowed:
            later = await dispatch_once(db, now=T0 + timedelta(hours=2), client=allowed)
        assert later.delivered == 1
        assert len(receiver.requests) == 1
        assert receiver.requests[0][0]["host"] == f"rebind.example.nl:{port}"


# --- isolation --------------------------------------------------------------------------------


async def test_a_bad_subscription_never_stalls_another_organisations_events(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    seed: Seed,
    receiver: tuple[Receiver, str],
) -> None:
    rec, url = receiver
    good = await subscribe(client, seed.other_provider_key, url + "/good", ["capacity.*"])
    # Rows registered before today's URL rules (the API refuses them now).
    box = settings.secret_box()
    async with db.sessionmaker() as session:
        last = await session.scalar(select(func.max(OutboxEvent.id)))
        bad = [
            WebhookSubscription(
                organisation_id=seed.organisations["vvt-leiden"],
                url=bad_url,
                event_types="*",
                secret=box.seal("whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="),
                after_outbox_id=int(last or 0),
            )
            for bad_url in ("http://999.999.999.999/hook", "http://0177.0.0.1/")
        ]
        session.add_all(bad)
        await session.commit()
        bad_ids = [str(b.id) for b in bad]
    await report(client, seed, "leiden-elv-high", 1)
    await report(client, seed, "leiden-elv-high", 2)
    r = await client.put(
        f"/v1/units/{seed.units['den-haag-elv-high']}/capacity",
        json={"free": 3},
        headers=auth(seed.other_provider_key),
    )
    assert r.status_code == 200, r.text

    async with WebhookClient(allow_hosts=LOCAL) as http:
        summary = await dispatch_once(db, now=T0, client=http)
    assert summary.delivered == 1
    assert summary.failed == 4  # never retried: the URL cannot work
    assert [orjson.loads(b)["data"]["free"] for _, b in rec.requests] == [3]
    for bad_id in bad_ids:
        rows = await _deliveries(db, bad_id)
        assert [(d.status, d.last_error) for d in rows] == [("failed", "refused_url")] * 2
    [delivered] = await _deliveries(db, good["id"])
    assert delivered.status == "delivered"


async def test_one_subscriptions_backlog_does_not_take_the_whole_batch(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    busy_rec, quiet_rec = Receiver(), Receiver()
    async with serve(busy_rec) as busy_url, serve(quiet_rec) as quiet_url:
        await subscribe(client, seed.keys["provider"], busy_url, ["capacity.*"])
        for free in range(6):
            await report(client, seed, "leiden-elv-high", free)
        # The backlog is older than the other organisation's event: first in line.
        _, created = await fan_out(db, now=T0 - timedelta(minutes=5), limit=100)
        assert created == 6
        await subscribe(client, seed.other_provider_key, quiet_url, ["*"])
        r = await client.put(
            f"/v1/units/{seed.units['den-haag-elv-high']}/capacity",
            json={"free": 3},
            headers=auth(seed.other_provider_key),
        )
        assert r.status_code == 200, r.text
        config = DispatchConfig(batch_size=4, per_subscription=2)
        async with WebhookClient(allow_hosts=LOCAL) as http:
            first = await dispatch_once(db, now=T0, client=http, config=config)
    assert first.attempted == 3
    assert len(busy_rec.requests) == 2
    assert len(quiet_rec.requests) == 1


async def test_a_slow_receiver_does_not_delay_another_subscriptions_events(
    db: Database, settings: Settings, seed: Seed
) -> None:
    """The background dispatcher goes on sending while one receiver takes its time."""
    release = asyncio.Event()
    slow_arrived = asyncio.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        slow_arrived.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), timeout=15)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = Receiver()
    live = settings.model_copy(
        update={
            "webhook_dispatch_enabled": True,
            "webhook_poll_seconds": 0.1,
            "webhook_timeout_seconds": 20.0,
        }
    )
    application = create_app(live, database=db)
    async with serve(slow) as slow_url, serve(fast) as fast_url:
        try:
            async with (
                application.router.lifespan_context(application),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=application), base_url="http://t"
                ) as c,
            ):
                await subscribe(c, seed.keys["provider"], slow_url, ["*"])
                await subscribe(c, seed.other_provider_key, fast_url, ["*"])
                await report(c, seed, "leiden-elv-high", 1)
                async with asyncio.timeout(5):
                    await slow_arrived.wait()
                for n, free in enumerate((1, 2, 3), start=1):
                    r = await c.put(
                        f"/v1/units/{seed.units['den-haag-elv-high']}/capacity",
                        json={"free": free},
                        headers=auth(seed.other_provider_key),
                    )
                    assert r.status_code == 200, r.text
                    async with asyncio.timeout(3):
                        while len(fast.requests) < n:  # noqa: ASYNC110 - a plain list
                            await asyncio.sleep(0.02)
                assert not release.is_set()  # all three went out while the slow one waited
        finally:
            release.set()
    assert [orjson.loads(b)["data"]["free"] for _, b in fast.requests] == [1, 2, 3]


async def test_timeouts_and_statuses_are_logged_as_categories(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(4)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    failing = Receiver(always_fail=True)
    async with serve(slow) as slow_url, serve(failing) as failing_url:
        a = await subscribe(client, seed.keys["provider"], slow_url, ["*"])
        b = await subscribe(client, seed.keys["provider"], failing_url, ["*"])
        await report(client, seed, "leiden-elv-high", 1)
        config = DispatchConfig(timeout_seconds=1.5)
        async with WebhookClient(allow_hosts=LOCAL) as http:
            summary = await dispatch_once(db, now=T0, client=http, config=config)
    assert summary.retrying == 2
    key = auth(seed.keys["provider"])
    for sub, category, code in ((a, "timeout", None), (b, "http_500", 500)):
        log = await client.get(f"/v1/webhook-subscriptions/{sub['id']}/deliveries", headers=key)
        [item] = log.json()["items"]
        assert (item["last_error"], item["last_status_code"]) == (category, code)
        assert item["attempt_log"][0]["error"] == category


# --- Standard Webhooks ------------------------------------------------------------------------


async def test_receiver_verifies_real_deliveries_with_the_standardwebhooks_library(
    db: Database, settings: Settings, seed: Seed, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    live = settings.model_copy(
        update={"webhook_dispatch_enabled": True, "webhook_poll_seconds": 0.1}
    )
    application: FastAPI = create_app(live, database=db)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as c,
    ):
        sub = await subscribe(c, seed.keys["provider"], url, ["capacity.reported"])
        other = await subscribe(c, seed.other_provider_key, url + "/x", ["*"])
        for free in (1, 2, 3):
            await report(c, seed, "leiden-elv-high", free)
        async with asyncio.timeout(10):
            while len(rec.requests) < 3:  # noqa: ASYNC110 - the receiver is a plain list
                await asyncio.sleep(0.05)
    assert sub["secret"].startswith("whsec_")
    webhook = Webhook(sub["secret"])
    seen = []
    for headers, body in rec.requests:
        payload = webhook.verify(body, headers)
        assert payload == orjson.loads(body)
        assert headers["webhook-id"] == payload["id"] == headers["juisteplek-event-id"]
        assert abs(int(headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60
        seen.append(payload["data"]["free"])
        with pytest.raises(WebhookVerificationError):
            webhook.verify(body.replace(b'"free":', b'"free": '), headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(other["secret"]).verify(body, headers)
    assert sorted(seen) == [1, 2, 3]
