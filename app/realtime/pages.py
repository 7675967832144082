"""The web pages' live channel: what changed, named so a page can re-fetch that fragment.

Event names, each carrying ids only (the page fetches the figures and the patient data through
its own logged reads); each change comes once under its generic name and once under a name with
the id, so one element can listen for its own unit or placement (``hx-trigger="sse:unit.<id>"``):

- ``unit`` / ``unit.<id>``: a unit's availability may have changed: a capacity report, or a hold
  placed, accepted, declined, expired, cancelled or admitted on it. Sent to every page whatever
  placement it came from: that a unit's count changed is capacity data, which every role may
  see; nothing of the placement goes with it.
- ``placement`` / ``placement.<id>``: a placement changed (id, state, event type); sent only to
  those who may see the placement on ``/v1/stream`` (admin, triagists of its region, the
  organisations it concerns).
- ``referral``: a new referral in the person's own region (the board's alert).
- ``resync``: the client asked to resume from further back than the replay reaches; it re-fetches
  what it shows.

The stream replays from the outbox after ``Last-Event-ID`` like ``/v1/stream`` does.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sse_starlette.event import ServerSentEvent

from app.db import Database
from app.principal import Principal
from app.realtime import service
from app.realtime.hub import Hub
from app.realtime.service import StreamEvent
from app.realtime.visibility import can_see

TOPICS = frozenset({"capacity", "placement"})
REPLAY_BATCH = 500
MAX_REPLAY = 10_000
RETRY_MS = 2_000


@dataclass(frozen=True, slots=True)
class PageEvent:
    id: int
    name: str
    data: dict[str, Any]

    def sse(self) -> ServerSentEvent:
        return ServerSentEvent(
            data=orjson.dumps(self.data).decode("utf-8"), event=self.name, id=str(self.id)
        )


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def page_events(principal: Principal, event: StreamEvent) -> list[PageEvent]:
    """The page events one outbox event becomes for ``principal`` (pure)."""
    if event.topic not in TOPICS:
        return []
    try:
        payload = orjson.loads(event.payload)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(payload, dict):
        return []
    out = []
    unit_id = _str(payload.get("unit_id"))
    if unit_id is not None:
        data: dict[str, Any] = {"unit_id": unit_id}
        if event.topic == "capacity":
            data |= {
                "subregion_id": _str(payload.get("subregion_id")),
                "available": payload.get("available"),
                "reported_at": payload.get("reported_at"),
            }
        out += [PageEvent(event.id, "unit", data), PageEvent(event.id, f"unit.{unit_id}", data)]
    if event.topic == "placement" and can_see(
        principal,
        topic=event.topic,
        region_id=event.region_id,
        organisation_ids=event.organisation_ids,
    ):
        placement_id = _str(payload.get("placement_id"))
        own_region = event.region_id is not None and event.region_id == principal.region_id
        changed = {
            "placement_id": placement_id,
            "state": payload.get("state"),
            "event": payload.get("event"),
            "seq": payload.get("seq"),
            "own_region": own_region,
        }
        out += [
            PageEvent(event.id, "placement", changed),
            PageEvent(event.id, f"placement.{placement_id}", changed),
        ]
        if own_region and payload.get("event") == "request_created":
            out.append(PageEvent(event.id, "referral", changed))
    return out


def _relevant(event: StreamEvent) -> bool:
    return event.topic in TOPICS


async def page_stream(
    db: Database,
    hub: Hub,
    principal: Principal,
    *,
    last_event_id: int | None,
    still_valid: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncGenerator[ServerSentEvent]:
    """Page events for ``principal``: replay after ``last_event_id``, then live. Ends when the
    session is no longer valid (``still_valid``) or the client falls too far behind."""
    sub = await hub.subscribe(principal, TOPICS, accept=_relevant)
    try:
        yield ServerSentEvent(comment="connected", retry=RETRY_MS)
        replayed: set[int] = set()
        if last_event_id is not None and await service.latest_id(db) - last_event_id > MAX_REPLAY:
            # Too far behind to replay: the page re-fetches what it shows instead.
            yield ServerSentEvent(data="{}", event="resync")
            last_event_id = None
        if last_event_id is not None:
            after = last_event_id
            while True:
                batch = await service.events_after(db, after, limit=REPLAY_BATCH)
                for event in batch:
                    replayed.add(event.id)
                    derived = page_events(principal, event)
                    if derived and still_valid is not None and not await still_valid():
                        return
                    for page_event in derived:
                        yield page_event.sse()
                if len(batch) < REPLAY_BATCH:
                    break
                after = batch[-1].id
                if len(replayed) >= MAX_REPLAY:
                    return
        while not sub.closed:
            if sub.frames:
                live, _ = sub.frames.popleft()
                if live.id in replayed:
                    continue
                derived = page_events(principal, live)
                if not derived:
                    continue
                if still_valid is not None and not await still_valid():
                    return
                for page_event in derived:
                    yield page_event.sse()
                continue
            if sub.ended:
                return
            if sub.ping_due:
                sub.ping_due = False  # the response sends its own heartbeat comments
                continue
            await sub.wait()
    finally:
        hub.unsubscribe(sub)
