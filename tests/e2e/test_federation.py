"""Federation between two live regions: two app instances, two databases, real HTTP on loopback.

Region A (the test database) follows region B (a second database) as a partner: B's capacity
changes show up in A's escalated search, a hold from A on a B unit becomes a placement and hold at
B under B's rules, B's accept comes back into A's transfer log, and a stopped B is shown as
unreachable with its last figures, never invented.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate
from app.config import Settings
from app.db import Database
from app.enums import OrganisationKind, Role
from app.exchange.models import Partner
from app.main import create_app
from app.registry import service as registry_service
from app.registry.schemas import OrganisationCreate
from tests.api.test_stream import serve
from tests.conftest import _worker, auth, fresh_database_url
from tests.factories import ADMIN, Seed, placement_body, seed_region
from tests.helpers import assert_problem

pytestmark = pytest.mark.slow

LABEL = "Regio B"
WAIT = 5.0  # the acceptance bound: a change at B is in A's search within 5 s


@dataclass
class Regions:
    a: str
    b: str
    seed_a: Seed
    seed_b: Seed
    partner_key: str  # issued by B, role referrer, for region A
    stop_b: Callable[[], Awaitable[None]]


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[str]:
    async with app.router.lifespan_context(app), serve(app) as base:
        yield base


@pytest.fixture
async def regions(
    db: Database, settings: Settings, backend: str, tmp_path: Path
) -> AsyncIterator[Regions]:
    url_b = await fresh_database_url(backend, tmp_path, f"jp_fed_b_{_worker()}")
    db_b = Database.from_url(url_b, pool_size=30, max_overflow=20)
    settings_b = settings.model_copy(update={"database_url": url_b})
    settings_a = settings.model_copy(update={"partner_sync_enabled": True})
    seed_a = await seed_region(db, settings_a)
    seed_b = await seed_region(db_b, settings_b)
    async with db_b.sessionmaker() as session:
        org = await registry_service.create_organisation(
            session,
            ADMIN,
            OrganisationCreate(
                name="RAP regio A (partner)", kind=OrganisationKind.RAP, region_id=seed_b.region_id
            ),
        )
        issued = await auth_service.issue_key(
            session,
            ApiKeyCreate(name="partner region A", organisation_id=org.id, roles=[Role.REFERRER]),
        )
        await session.commit()
    app_b = create_app(settings_b, database=db_b)
    app_a = create_app(settings_a, database=db)
    stack = contextlib.AsyncExitStack()
    try:
        b = await stack.enter_async_context(running(app_b))
        b_stack = stack.pop_all()
        a = await stack.enter_async_context(running(app_a))

        async def stop_b() -> None:
            await b_stack.aclose()

        yield Regions(a, b, seed_a, seed_b, issued.key, stop_b)
    finally:
        await stack.aclose()
        with contextlib.suppress(Exception):
            await b_stack.aclose()
        await db_b.dispose()


async def register(c: httpx.AsyncClient, r: Regions) -> dict[str, Any]:
    created = await c.post(
        f"{r.a}/v1/partners",
        json={"label": LABEL, "base_url": r.b, "key": r.partner_key},
        headers=auth(r.seed_a.keys["admin"]),
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def search_a(
    c: httpx.AsyncClient, r: Regions, **params: Any
) -> tuple[dict[str, Any], dict[uuid.UUID, dict[str, Any]]]:
    res = await c.get(
        f"{r.a}/v1/availability",
        params={"care_type": "elv_high", "include_partners": "true", **params},
        headers=auth(r.seed_a.keys["triagist"]),
    )
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    partner_hits = {uuid.UUID(h["unit_id"]): h for h in body["items"] if h["source"] is not None}
    return body, partner_hits


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"{what} not within {within} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_capacity_holds_and_accepts_cross_the_regions(regions: Regions, db: Database) -> None:
    r = regions
    b_unit = r.seed_b.units["leiden-elv-high"]
    async with httpx.AsyncClient(timeout=30) as c:
        await register(c, r)
        hits: dict[uuid.UUID, dict[str, Any]] = {}

        async def b_units_listed() -> bool:
            nonlocal hits
            _, hits = await search_a(c, r)
            return b_unit in hits

        await until(b_units_listed, 10, "the first pull of B")
        # Own units first, B's after them, each labelled with B's name; A's own units carry no
        # source, and B's own copies are B's units, not A's.
        assert set(hits) == {u for k, u in r.seed_b.units.items() if "elv-high" in k}
        assert not set(hits) & set(r.seed_a.units.values())

        # 1. A capacity change at B is in A's escalated search within 5 s, with B's report time.
        put = await c.put(
            f"{r.b}/v1/units/{b_unit}/capacity",
            json={"free": 7},
            headers=auth(r.seed_b.keys["provider"]),
        )
        assert put.status_code == 200, put.text
        reported_at = datetime.fromisoformat(put.json()["reported_at"])

        async def change_seen() -> bool:
            nonlocal hits
            _, hits = await search_a(c, r)
            return bool(hits[b_unit]["reported_free"] == 7)

        elapsed = await until(change_seen, WAIT, "B's capacity change in A's search")
        hit = hits[b_unit]
        assert hit["source"]["region"] == LABEL
        assert hit["source"]["reachable"] is True
        assert datetime.fromisoformat(hit["source"]["reported_at"]) == reported_at
        assert datetime.fromisoformat(hit["reported_at"]) == reported_at
        assert hit["available"] == 7
        assert hit["escalation_level"] == "national"
        print(f"B's change seen in A after {elapsed:.2f} s")  # noqa: T201

        # Without include_partners the search stays in the own region.
        own = await c.get(
            f"{r.a}/v1/availability",
            params={"care_type": "elv_high"},
            headers=auth(r.seed_a.keys["triagist"]),
        )
        assert all(h["source"] is None for h in own.json()["items"])
        # No loop: A's own snapshot carries A's units only, never B's copies.
        snap = await c.get(f"{r.a}/v1/capacity-snapshot", headers=auth(r.seed_a.keys["analyst"]))
        assert {uuid.UUID(i["unit_id"]) for i in snap.json()["items"]} == set(
            r.seed_a.units.values()
        )

        # 2. A hold from A on B's unit: a placement and a hold at B, under B's rules.
        made = await c.post(
            f"{r.a}/v1/placements", json=placement_body(), headers=auth(r.seed_a.keys["referrer"])
        )
        assert made.status_code == 201, made.text
        pid = made.json()["id"]
        held = await c.post(
            f"{r.a}/v1/placements/{pid}/holds",
            json={"unit_id": str(b_unit)},
            headers=auth(r.seed_a.keys["triagist"]),
        )
        assert held.status_code == 201, held.text
        assert held.json()["unit_id"] == str(b_unit)
        events = await c.get(
            f"{r.a}/v1/placements/{pid}/events", headers=auth(r.seed_a.keys["referrer"])
        )
        offer = events.json()["items"][-1]
        assert offer["type"] == "offer_sent"
        assert offer["payload"]["partner"] == LABEL
        remote = offer["payload"]["remote_placement_id"]
        at_b = await c.get(f"{r.b}/v1/placements/{remote}", headers=auth(r.seed_b.keys["admin"]))
        assert at_b.status_code == 200, at_b.text
        assert at_b.json()["state"] == "offered"
        assert at_b.json()["current_hold"]["unit_id"] == str(b_unit)
        assert at_b.json()["patient_key"] != made.json()["patient_key"]  # pseudonymised again
        # B's access log has the partner's writes of that placement.
        log_b = await c.get(
            f"{r.b}/v1/audit",
            params={"patient_key": at_b.json()["patient_key"]},
            headers=auth(r.seed_b.keys["admin"]),
        )
        assert log_b.status_code == 200, log_b.text
        assert {row["action"] for row in log_b.json()["items"]} >= {"C", "U"}

        # 3. B's provider accepts; the accept comes back into A's transfer log.
        accepted = await c.post(
            f"{r.b}/v1/placements/{remote}/accept", headers=auth(r.seed_b.keys["provider"])
        )
        assert accepted.status_code == 200, accepted.text

        async def accept_back() -> bool:
            got = await c.get(
                f"{r.a}/v1/placements/{pid}/events", headers=auth(r.seed_a.keys["referrer"])
            )
            return bool(got.json()["items"][-1]["type"] == "offer_accepted")

        await until(accept_back, 10, "B's accept in A's transfer log")
        placement = await c.get(
            f"{r.a}/v1/placements/{pid}", headers=auth(r.seed_a.keys["referrer"])
        )
        assert placement.json()["state"] == "accepted"

        # A decline at B comes back too, with B's reason; the placement is triaged again here.
        second = await c.post(
            f"{r.a}/v1/placements", json=placement_body(), headers=auth(r.seed_a.keys["referrer"])
        )
        sid = second.json()["id"]
        held = await c.post(
            f"{r.a}/v1/placements/{sid}/holds",
            json={"unit_id": str(b_unit)},
            headers=auth(r.seed_a.keys["triagist"]),
        )
        assert held.status_code == 201, held.text
        events = await c.get(
            f"{r.a}/v1/placements/{sid}/events", headers=auth(r.seed_a.keys["referrer"])
        )
        remote = events.json()["items"][-1]["payload"]["remote_placement_id"]
        declined = await c.post(
            f"{r.b}/v1/placements/{remote}/decline",
            json={"reason": "staff_shortage"},
            headers=auth(r.seed_b.keys["provider"]),
        )
        assert declined.status_code == 200, declined.text

        async def decline_back() -> bool:
            got = await c.get(
                f"{r.a}/v1/placements/{sid}/events", headers=auth(r.seed_a.keys["referrer"])
            )
            last = got.json()["items"][-1]
            return bool(last["type"] == "offer_declined" and last["reason"] == "staff_shortage")

        await until(decline_back, 10, "B's decline in A's transfer log")
        placement = await c.get(
            f"{r.a}/v1/placements/{sid}", headers=auth(r.seed_a.keys["referrer"])
        )
        assert placement.json()["state"] == "triaged"

        # A forwarded hold is answered at B, not here (409, no 5xx); a cancel here gives B's
        # place back: B's placement is cancelled too.
        third = await c.post(
            f"{r.a}/v1/placements", json=placement_body(), headers=auth(r.seed_a.keys["referrer"])
        )
        tid = third.json()["id"]
        held = await c.post(
            f"{r.a}/v1/placements/{tid}/holds",
            json={"unit_id": str(b_unit)},
            headers=auth(r.seed_a.keys["triagist"]),
        )
        assert held.status_code == 201, held.text
        events = await c.get(
            f"{r.a}/v1/placements/{tid}/events", headers=auth(r.seed_a.keys["referrer"])
        )
        remote = events.json()["items"][-1]["payload"]["remote_placement_id"]
        here = await c.post(
            f"{r.a}/v1/placements/{tid}/accept", headers=auth(r.seed_a.keys["admin"])
        )
        assert_problem(here, 409)
        cancelled = await c.post(
            f"{r.a}/v1/placements/{tid}/cancel",
            json={"reason": "recovered"},
            headers=auth(r.seed_a.keys["referrer"]),
        )
        assert cancelled.status_code == 200, cancelled.text

        async def cancelled_at_b() -> bool:
            got = await c.get(f"{r.b}/v1/placements/{remote}", headers=auth(r.seed_b.keys["admin"]))
            return bool(got.json()["state"] == "cancelled")

        await until(cancelled_at_b, 10, "the cancel at A reaching B")

        # 4. 50 concurrent holds from A and B together on B's unit with 3 free places: exactly 3.
        target = r.seed_b.units["den-haag-elv-high"]
        a_ids, b_ids = [], []
        for _ in range(25):
            pa = await c.post(
                f"{r.a}/v1/placements",
                json=placement_body(),
                headers=auth(r.seed_a.keys["referrer"]),
            )
            pb = await c.post(
                f"{r.b}/v1/placements",
                json=placement_body(),
                headers=auth(r.seed_b.keys["referrer"]),
            )
            assert pa.status_code == pb.status_code == 201
            a_ids.append(pa.json()["id"])
            b_ids.append(pb.json()["id"])

        async def hold(base: str, key: str, placement_id: str) -> httpx.Response:
            return await c.post(
                f"{base}/v1/placements/{placement_id}/holds",
                json={"unit_id": str(target)},
                headers=auth(key),
            )

        answers = await asyncio.gather(
            *[hold(r.a, r.seed_a.keys["triagist"], p) for p in a_ids],
            *[hold(r.b, r.seed_b.keys["triagist"], p) for p in b_ids],
        )
        codes = [a.status_code for a in answers]
        assert codes.count(201) == 3, codes
        assert codes.count(409) == 47, codes
        for refused in answers:
            if refused.status_code == 409:
                assert_problem(refused, 409)
                assert refused.json()["type"].endswith("/no-capacity"), refused.text
        snap_b = await c.get(f"{r.b}/v1/capacity-snapshot", headers=auth(r.seed_b.keys["analyst"]))
        row = next(i for i in snap_b.json()["items"] if i["unit_id"] == str(target))
        assert (row["free"], row["held"], row["available"]) == (3, 3, 0)

        # A placement of A refused there tries another of B's units: a new placement at B.
        refused_a = next(
            p for p, a in zip(a_ids, answers[:25], strict=True) if a.status_code == 409
        )
        retry = await hold(r.a, r.seed_a.keys["triagist"], refused_a)
        assert retry.status_code == 409  # still full
        other = await c.post(
            f"{r.a}/v1/placements/{refused_a}/holds",
            json={"unit_id": str(b_unit)},
            headers=auth(r.seed_a.keys["triagist"]),
        )
        assert other.status_code == 201, other.text


async def test_a_stopped_partner_is_shown_unreachable_with_its_last_figures(
    regions: Regions, db: Database
) -> None:
    r = regions
    b_unit = r.seed_b.units["leiden-elv-high"]
    async with httpx.AsyncClient(timeout=30) as c:
        partner = await register(c, r)

        async def listed() -> bool:
            _, hits = await search_a(c, r)
            return b_unit in hits

        await until(listed, 10, "the first pull of B")
        _, before = await search_a(c, r)
        async with db.sessionmaker() as session:
            sealed = await session.scalar(select(Partner.key_sealed))
        assert sealed is not None
        assert r.partner_key not in sealed  # the partner's key is stored encrypted

        stopped_at = datetime.now(UTC)
        await r.stop_b()

        async def marked_down() -> bool:
            got = await c.get(f"{r.a}/v1/partners", headers=auth(r.seed_a.keys["admin"]))
            return bool(got.json()["items"][0]["reachable"] is False)

        await until(marked_down, 15, "B marked unreachable")
        body, hits = await search_a(c, r, include_stale="true")
        assert body["partners"][0]["reachable"] is False
        assert body["partners"][0]["id"] == partner["id"]
        assert body["partners"][0]["last_fetch_at"] is not None
        hit = hits[b_unit]
        assert hit["source"]["reachable"] is False
        assert hit["stale"] is True
        # Its last figures, as fetched while B was up: nothing new is made up.
        assert hit["source"]["fetched_at"] == body["partners"][0]["last_fetch_at"]
        assert datetime.fromisoformat(hit["source"]["fetched_at"]) < stopped_at
        assert hit["reported_free"] == before[b_unit]["reported_free"]
        # Without include_stale the aged units are left out; the partner is still listed as down.
        body, hits = await search_a(c, r)
        assert hits == {}
        assert body["partners"][0]["reachable"] is False
        # A placement search answers too; a hold on the unreachable partner's unit is refused
        # with a problem naming the partner, and nothing changes locally.
        made = await c.post(
            f"{r.a}/v1/placements", json=placement_body(), headers=auth(r.seed_a.keys["referrer"])
        )
        pid = made.json()["id"]
        found = await c.get(
            f"{r.a}/v1/placements/{pid}/availability",
            params={"include_partners": "true", "include_stale": "true"},
            headers=auth(r.seed_a.keys["triagist"]),
        )
        assert found.status_code == 200, found.text
        held = await c.post(
            f"{r.a}/v1/placements/{pid}/holds",
            json={"unit_id": str(b_unit)},
            headers=auth(r.seed_a.keys["triagist"]),
        )
        assert_problem(held, 503)
        assert LABEL in held.json()["detail"]
        assert held.headers["Retry-After"]
        state = await c.get(f"{r.a}/v1/placements/{pid}", headers=auth(r.seed_a.keys["referrer"]))
        assert state.json()["state"] == "triaged"
        metrics = await c.get(f"{r.a}/metrics")
        assert f'juisteplek_partner_reachable{{partner="{LABEL}"}} 0.0' in metrics.text
