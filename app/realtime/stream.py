"""One server-sent-events stream: replay from the outbox after ``Last-Event-ID``, then live.

The subscriber is registered with the hub *before* the replay query runs, so an event committed
during the replay is either replayed or queued live (and then skipped as already sent): nothing
falls between the two.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from sse_starlette.event import ServerSentEvent

from app.audit import service as audit_service
from app.audit.service import AuditContext
from app.auth.principal import Principal
from app.db import Database
from app.realtime import service
from app.realtime.hub import Hub
from app.realtime.service import StreamEvent
from app.realtime.visibility import can_see

REPLAY_BATCH = 500
MAX_REPLAY = 10_000
RETRY_MS = 3_000


def to_sse(event: StreamEvent) -> ServerSentEvent:
    return ServerSentEvent(
        data=event.body().decode("utf-8"), event=event.event_type, id=str(event.id)
    )


def _visible(principal: Principal, topics: frozenset[str] | None, event: StreamEvent) -> bool:
    if topics is not None and event.topic not in topics:
        return False
    return can_see(
        principal,
        topic=event.topic,
        region_id=event.region_id,
        organisation_ids=event.organisation_ids,
    )


def _by_placement(events: list[StreamEvent]) -> dict[uuid.UUID, list[int]]:
    """Placement id -> the ids of its events (the placement events' payload names it)."""
    out: dict[uuid.UUID, list[int]] = {}
    for event in events:
        if event.topic != "placement":
            continue
        try:
            pid = uuid.UUID(str(orjson.loads(event.payload)["placement_id"]))
        except (KeyError, ValueError, TypeError, orjson.JSONDecodeError):
            continue
        out.setdefault(pid, []).append(event.id)
    return out


async def event_stream(
    db: Database,
    hub: Hub,
    principal: Principal,
    *,
    last_event_id: int | None,
    topics: frozenset[str] | None,
    still_valid: Callable[[], Awaitable[bool]] | None = None,
    audit: AuditContext | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """SSE events for ``principal``; ends (the client reconnects) when it falls too far behind.

    ``still_valid`` is asked before every event: when the key has been revoked since the stream
    opened, the stream ends instead of sending it (the reconnect then gets a 401). ``audit``: the
    request's access-log context; replayed placement events are logged (NEN 7513).
    """
    sub = await hub.subscribe(principal, topics)
    try:
        # First frame: tells EventSource how long to wait before reconnecting, and tells the
        # client the subscription is live.
        yield ServerSentEvent(comment="connected", retry=RETRY_MS)
        replayed: set[int] = set()
        if last_event_id is not None:
            after = last_event_id
            while True:
                batch = await service.events_after(db, after, limit=REPLAY_BATCH)
                visible = [e for e in batch if _visible(principal, topics, e)]
                replayed.update(e.id for e in batch)
                if audit is not None:
                    # Placement events read again: logged per placement before they are sent.
                    await audit_service.log_stream_replay(db, audit, _by_placement(visible))
                for event in visible:
                    if still_valid is not None and not await still_valid():
                        return
                    yield to_sse(event)
                if len(batch) < REPLAY_BATCH:
                    break
                after = batch[-1].id
                if len(replayed) >= MAX_REPLAY:
                    return  # the client resumes from the last id it got
        while True:
            live = await sub.next()
            if live is None:
                return
            if live.id in replayed:
                continue
            if still_valid is not None and not await still_valid():
                return
            yield to_sse(live)
    finally:
        hub.unsubscribe(sub)
