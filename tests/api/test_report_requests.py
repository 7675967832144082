"""Report now: a triagist asks 20 units for fresh reports, 15 answer; progress, times, the KPI,
the stream/webhook announcement and the banner on the provider's units page."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from app.auth.service import KeyResolver
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Role
from app.realtime.models import OutboxEvent
from app.realtime.visibility import can_see
from app.reportnow import service as report_service
from app.webhooks.dispatcher import fan_out
from app.webhooks.models import WebhookDelivery
from tests.conftest import auth
from tests.factories import Seed, add_person, add_unit
from tests.helpers import assert_problem
from tests.web.helpers import web_login

CARE = CareType.WLZ_CRISIS  # the seed has no unit of this care type: only the ones added here


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Loopback webhook targets allowed, as an operator would (they are never called here)."""
    return settings.model_copy(update={"webhook_allow_hosts": ["127.0.0.1"]})


async def _units(db: Database, settings: Settings, seed: Seed) -> dict[str, list[uuid.UUID]]:
    """12 crisis beds in Leiden (the provider key's organisation), 8 in Den Haag."""
    out: dict[str, list[uuid.UUID]] = {"leiden": [], "den-haag": []}
    for place, count in (("leiden", 12), ("den-haag", 8)):
        for i in range(count):
            out[place].append(
                await add_unit(
                    db,
                    settings,
                    seed.locations[place],
                    name=f"Crisis {place} {i:02d}",
                    care_type=CARE,
                    free=1,
                    reported_at=utcnow() - timedelta(hours=5),
                )
            )
    return out


async def _report(client: httpx.AsyncClient, key: str, unit: uuid.UUID, free: int) -> None:
    r = await client.put(f"/v1/units/{unit}/capacity", json={"free": free}, headers=auth(key))
    assert r.status_code == 200, r.text


async def _ask(client: httpx.AsyncClient, seed: Seed, **extra: Any) -> httpx.Response:
    body = {"care_types": [CARE.value], "within_minutes": 30, "message": "Drukte", **extra}
    return await client.post("/v1/report-requests", json=body, headers=auth(seed.keys["triagist"]))


async def test_twenty_targeted_fifteen_answer(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    units = await _units(db, settings, seed)
    r = await _ask(client, seed)
    assert r.status_code == 201, r.text
    request = r.json()
    assert r.headers["location"] == f"/v1/report-requests/{request['id']}"
    assert request["progress"] == {
        "targeted": 20,
        "answered": 0,
        "answered_within_deadline": 0,
        "overdue": False,
    }
    assert {u["unit_id"] for u in request["units"]} == {str(u) for us in units.values() for u in us}
    # A unit made after the request is not targeted: the list is a snapshot.
    late = await add_unit(
        db, settings, seed.locations["leiden"], name="Crisis late", care_type=CARE, free=1
    )

    answering = units["leiden"][:10] + units["den-haag"][:5]
    for unit in units["leiden"][:10]:
        await _report(client, seed.keys["provider"], unit, 2)
    for unit in units["den-haag"][:5]:
        await _report(client, seed.other_provider_key, unit, 3)
    await _report(client, seed.keys["provider"], units["leiden"][0], 4)  # a second report

    r = await client.get(
        f"/v1/report-requests/{request['id']}", headers=auth(seed.keys["triagist"])
    )
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["progress"] == {
        "targeted": 20,
        "answered": 15,
        "answered_within_deadline": 15,
        "overdue": False,
    }
    by_unit = {u["unit_id"]: u for u in shown["units"]}
    assert str(late) not in by_unit
    for unit in answering:
        row = by_unit[str(unit)]
        assert row["answered_at"] is not None
        assert 0 <= row["answer_seconds"] < 60
        assert row["within_deadline"] is True
    silent = [u for us in units.values() for u in us if u not in answering]
    assert all(by_unit[str(u)]["answered_at"] is None for u in silent)
    assert all(by_unit[str(u)]["within_deadline"] is None for u in silent)

    # After the deadline the silent units are overdue.
    principal = await KeyResolver(db, ttl=0).resolve(f"Bearer {seed.keys['triagist']}")
    async with db.sessionmaker() as session:
        later = await report_service.get(
            session, principal, uuid.UUID(request["id"]), now=utcnow() + timedelta(minutes=31)
        )
    assert later.progress.overdue is True
    assert sum(u.within_deadline is False for u in later.units) == 5

    # A provider sees the request with its own units only.
    r = await client.get(
        f"/v1/report-requests/{request['id']}", headers=auth(seed.keys["provider"])
    )
    mine = r.json()
    assert mine["progress"]["targeted"] == 12
    assert mine["progress"]["answered"] == 10
    r = await client.get("/v1/report-requests", headers=auth(seed.keys["provider"]))
    assert [i["id"] for i in r.json()["items"]] == [request["id"]]

    # The KPI: answer times per organisation.
    today = utcnow().date()
    r = await client.get(
        "/v1/kpis/report-requests",
        params={
            "from": (today - timedelta(days=1)).isoformat(),
            "to": (today + timedelta(days=2)).isoformat(),
        },
        headers=auth(seed.keys["analyst"]),
    )
    assert r.status_code == 200, r.text
    rows = {row["organisation_id"]: row for row in r.json()["rows"]}
    leiden = rows[str(seed.organisations["vvt-leiden"])]
    den_haag = rows[str(seed.organisations["vvt-den-haag"])]
    assert (leiden["targeted"], leiden["answered"], leiden["answered_within_deadline"]) == (
        12,
        10,
        10,
    )
    assert (den_haag["targeted"], den_haag["answered"]) == (8, 5)
    assert leiden["share_within_deadline"] == 10 / 12
    assert den_haag["share_within_deadline"] == 5 / 8
    times = sorted(by_unit[str(u)]["answer_seconds"] for u in units["den-haag"][:5])
    assert den_haag["median_answer_seconds"] == times[2]
    assert leiden["organisation_name"] == "Topaz"


async def test_announced_to_the_targeted_organisations_only(
    client: httpx.AsyncClient, db: Database, settings: Settings, seed: Seed
) -> None:
    for key in (seed.keys["provider"], seed.other_provider_key):
        r = await client.post(
            "/v1/webhook-subscriptions",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["report_request.*"]},
            headers=auth(key),
        )
        assert r.status_code == 201, r.text
    r = await _ask(client, seed, care_types=["grz"], subregions=["leiden"])
    assert r.status_code == 201, r.text
    assert [u["unit_id"] for u in r.json()["units"]] == [str(seed.units["leiden-grz"])]
    async with db.sessionmaker() as session:
        event = (
            await session.scalars(
                select(OutboxEvent).where(OutboxEvent.event_type == "report_request.created")
            )
        ).one()
    payload = orjson.loads(event.payload)
    assert payload["report_request_id"] == r.json()["id"]
    orgs = {uuid.UUID(o) for o in event.organisation_ids.split(",")}
    assert orgs == {seed.organisations["vvt-leiden"]}
    resolver = KeyResolver(db, ttl=0)
    seen = {}
    for name, key in [
        ("provider", seed.keys["provider"]),
        ("other", seed.other_provider_key),
        ("triagist", seed.keys["triagist"]),
        ("referrer", seed.keys["referrer"]),
    ]:
        principal = await resolver.resolve(f"Bearer {key}")
        seen[name] = can_see(
            principal, topic=event.topic, region_id=event.region_id, organisation_ids=orgs
        )
    assert seen == {"provider": True, "other": False, "triagist": True, "referrer": False}
    await fan_out(db, now=utcnow(), limit=100)
    async with db.sessionmaker() as session:
        deliveries = (await session.scalars(select(WebhookDelivery))).all()
    assert [d.event_type for d in deliveries] == ["report_request.created"]


async def test_roles_and_malformed_requests(client: httpx.AsyncClient, seed: Seed) -> None:
    for role in ("provider", "referrer", "analyst"):
        r = await client.post(
            "/v1/report-requests",
            json={"within_minutes": 30},
            headers=auth(seed.keys[role]),
        )
        assert_problem(r, 403)
    for body, pointer in [
        ({"within_minutes": 0}, "#/within_minutes"),
        ({"within_minutes": 10_081}, "#/within_minutes"),
        ({}, "#/within_minutes"),
        ({"within_minutes": 5, "care_types": ["beds"]}, "#/care_types/0"),
        ({"within_minutes": 5, "subregions": ["atlantis"]}, "#/subregions/0"),
        ({"within_minutes": 5, "subregions": ["a b"]}, "#/subregions/0"),
        ({"within_minutes": 5, "care_types": ["local_other"]}, "#/care_types"),
        ({"within_minutes": 5, "message": "x\u0000"}, "#/message"),
        ({"within_minutes": 5, "region_id": str(uuid.uuid4())}, None),
    ]:
        r = await client.post("/v1/report-requests", json=body, headers=auth(seed.keys["triagist"]))
        if pointer is None:
            assert_problem(r, 403)
        else:
            problem = assert_problem(r, 422)
            assert pointer in [e["pointer"] for e in problem["errors"]], r.text
    r = await client.get(f"/v1/report-requests/{uuid.uuid4()}", headers=auth(seed.keys["triagist"]))
    assert_problem(r, 404)
    r = await client.get("/v1/report-requests", headers=auth(seed.keys["referrer"]))
    assert_problem(r, 403)
    r = await client.get("/v1/report-requests?cursor=zzz", headers=auth(seed.keys["triagist"]))
    assert_problem(r, 422)
    for params in (
        {"from": "2026-01-02", "to": "2026-01-01"},
        {"from": "1900-01-01", "to": "1900-02-01"},
    ):
        r = await client.get(
            "/v1/kpis/report-requests", params=params, headers=auth(seed.keys["analyst"])
        )
        assert_problem(r, 422)
    r = await client.get(
        "/v1/kpis/report-requests",
        params={"from": "2026-01-01", "to": "2026-02-01"},
        headers=auth(seed.keys["provider"]),
    )
    assert_problem(r, 403)


async def test_paging_newest_first(client: httpx.AsyncClient, seed: Seed) -> None:
    made = []
    for _ in range(3):
        r = await _ask(client, seed, care_types=["grz"])
        made.append(r.json()["id"])
    r = await client.get("/v1/report-requests?limit=2", headers=auth(seed.keys["triagist"]))
    first = r.json()
    r = await client.get(
        f"/v1/report-requests?limit=2&cursor={first['next_cursor']}",
        headers=auth(seed.keys["triagist"]),
    )
    second = r.json()
    assert second["next_cursor"] is None
    assert [i["id"] for i in first["items"] + second["items"]] == made[::-1]


async def test_banner_on_the_units_page_until_the_unit_reports(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"], name="Pien")
    await web_login(client, person)
    page = (await client.get("/ui/units")).text
    assert "report-request" not in page
    r = await _ask(client, seed, care_types=["grz", "elv_high"], message="Graag snel")
    assert r.status_code == 201, r.text
    page = (await client.get("/ui/units")).text
    banner = page.split('class="notice report-request"')[1].split("</p>")[0]
    assert "De regio vraagt om een actuele capaciteitsmelding" in banner
    assert "ELV HC Leiden" in banner
    assert "GRZ Leiden" in banner
    assert "Graag snel" in banner
    await _report(client, seed.keys["provider"], seed.units["leiden-grz"], 1)
    page = (await client.get("/ui/units")).text
    banner = page.split('class="notice report-request"')[1].split("</p>")[0]
    assert "GRZ Leiden" not in banner
    await _report(client, seed.keys["provider"], seed.units["leiden-elv-high"], 1)
    assert "report-request" not in (await client.get("/ui/units")).text
