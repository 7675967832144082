"""The pages' live channel: unit events for every page, placement events as /v1/stream has."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

import orjson
from fastapi import FastAPI
from sse_starlette.event import ServerSentEvent

from app.auth.service import KeyResolver
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.principal import Principal
from app.realtime.hub import Hub
from app.realtime.pages import page_events, page_stream
from app.realtime.service import StreamEvent
from tests.factories import GRZ, Seed, create_placements

REGION, OTHER_REGION = uuid.UUID(int=1), uuid.UUID(int=2)
ORG, OTHER_ORG = uuid.UUID(int=10), uuid.UUID(int=11)


def person(role: Role, region: uuid.UUID = REGION, org: uuid.UUID = ORG) -> Principal:
    return Principal(
        key_id=uuid.uuid4(),
        name=role,
        roles=frozenset({role}),
        organisation_id=org,
        region_id=region,
    )


def outbox(topic: str, payload: dict[str, object], region: uuid.UUID | None = None) -> StreamEvent:
    return StreamEvent(
        id=7,
        event_id=uuid.uuid4(),
        topic=topic,
        event_type=f"{topic}.x",
        region_id=region,
        organisation_ids=frozenset({OTHER_ORG}),
        created_at=datetime(2026, 12, 5, tzinfo=UTC),
        payload=orjson.dumps(payload).decode(),
    )


def test_page_events_carry_ids_only_and_follow_visibility() -> None:
    unit = str(uuid.UUID(int=99))
    cap = outbox("capacity", {"unit_id": unit, "available": 2, "subregion_id": "s", "free": 3})
    e, named = page_events(person(Role.PROVIDER), cap)
    assert (e.id, e.name, named.name) == (7, "unit", f"unit.{unit}")
    assert named.data == e.data
    assert e.data == {"unit_id": unit, "subregion_id": "s", "available": 2, "reported_at": None}

    hold = outbox(
        "placement",
        {
            "placement_id": "p1",
            "state": "offered",
            "event": "offer_sent",
            "seq": 3,
            "unit_id": unit,
        },
        region=OTHER_REGION,
    )
    # a hold anywhere changes the unit for every page; the placement only for who may see it
    assert [x.name for x in page_events(person(Role.TRIAGIST), hold)] == ["unit", f"unit.{unit}"]
    assert page_events(person(Role.TRIAGIST), hold)[0].data == {"unit_id": unit}
    mine = page_events(person(Role.TRIAGIST, region=OTHER_REGION), hold)
    assert [x.name for x in mine] == ["unit", f"unit.{unit}", "placement", "placement.p1"]
    assert mine[2].data == {
        "placement_id": "p1",
        "state": "offered",
        "event": "offer_sent",
        "seq": 3,
        "own_region": True,
    }
    concerned = page_events(person(Role.REFERRER, org=OTHER_ORG), hold)
    assert concerned[2].data["own_region"] is False
    created = outbox("placement", {"placement_id": "p2", "event": "request_created"}, REGION)
    names = [x.name for x in page_events(person(Role.TRIAGIST), created)]
    assert names == ["placement", "placement.p2", "referral"]
    # a referral of another region the person may see (its own organisation's) is no alert
    elsewhere = outbox(
        "placement", {"placement_id": "p3", "event": "request_created"}, OTHER_REGION
    )
    assert [x.name for x in page_events(person(Role.REFERRER, org=OTHER_ORG), elsewhere)] == [
        "placement",
        "placement.p3",
    ]
    assert page_events(person(Role.ANALYST), created) == []
    assert page_events(person(Role.TRIAGIST), outbox("webhook", {"unit_id": unit})) == []


async def next_named(frames: AsyncIterator[ServerSentEvent], name: str) -> ServerSentEvent:
    async with asyncio.timeout(10):
        while True:
            frame = await anext(frames)
            if frame.event == name:
                return frame


async def test_page_stream_delivers_capacity_and_holds_live_and_replays(
    app: FastAPI, db: Database, settings: Settings, seed: Seed
) -> None:
    hub: Hub = app.state.hub
    triagist = await KeyResolver(db, ttl=0).resolve(f"Bearer {seed.keys['triagist']}")
    frames: AsyncGenerator[ServerSentEvent] = page_stream(db, hub, triagist, last_event_id=None)
    first = await anext(frames)
    assert first.comment == "connected"
    r = await _report(app, seed, 1)
    unit = await next_named(frames, "unit")
    assert orjson.loads(str(unit.data))["unit_id"] == str(seed.units["leiden-grz"])
    assert orjson.loads(str(unit.data))["available"] == 1
    (pid,) = await create_placements(db, settings, seed, 1, **GRZ)
    created = await next_named(frames, "placement")
    data = orjson.loads(str(created.data))
    assert (data["placement_id"], data["event"], data["own_region"]) == (
        str(pid),
        "request_created",
        True,
    )
    await frames.aclose()

    # a reconnect with Last-Event-ID replays what came after it
    replay: AsyncGenerator[ServerSentEvent] = page_stream(
        db, hub, triagist, last_event_id=int(str(unit.id)) - 1
    )
    assert (await anext(replay)).comment == "connected"
    again = await next_named(replay, "unit")
    assert again.id == unit.id
    await replay.aclose()
    assert r == 200


async def _report(app: FastAPI, seed: Seed, free: int) -> int:
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        resp = await c.put(
            f"/v1/units/{seed.units['leiden-grz']}/capacity",
            json={"free": free, "reported_at": utcnow().isoformat()},
            headers={"Authorization": f"Bearer {seed.keys['provider']}"},
        )
    return resp.status_code


async def test_a_hold_reaches_every_page_as_a_unit_event_without_its_placement(
    app: FastAPI, db: Database, settings: Settings, seed: Seed
) -> None:
    from app.audit.service import AuditContext
    from app.placement import service as placement_service
    from app.placement.schemas import HoldCreate

    hub: Hub = app.state.hub
    resolver = KeyResolver(db, ttl=0)
    outsider = await resolver.resolve(f"Bearer {seed.other_provider_key}")  # another organisation
    (pid,) = await create_placements(db, settings, seed, 1, **GRZ)
    frames: AsyncGenerator[ServerSentEvent] = page_stream(db, hub, outsider, last_event_id=None)
    assert (await anext(frames)).comment == "connected"
    triagist = await resolver.resolve(f"Bearer {seed.keys['triagist']}")
    async with db.sessionmaker() as session:
        await placement_service.place_hold(
            session,
            AuditContext(principal=triagist),
            pid,
            HoldCreate(unit_id=seed.units["leiden-grz"]),
            now=utcnow(),
            settings=settings,
        )
        await session.commit()
    unit = await next_named(frames, f"unit.{seed.units['leiden-grz']}")
    assert orjson.loads(str(unit.data)) == {"unit_id": str(seed.units["leiden-grz"])}
    # then a capacity report; nothing of the placement came in between
    await _report(app, seed, 3)
    names = []
    async with asyncio.timeout(10):
        while True:
            frame = await anext(frames)
            if frame.event:
                names.append(frame.event)
            if frame.event == "unit" and "available" in orjson.loads(str(frame.data)):
                break
    assert not [n for n in names if n.startswith("placement")]
    await frames.aclose()
