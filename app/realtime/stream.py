"""One server-sent-events stream: replay from the outbox after ``Last-Event-ID``, then live.

The subscriber is registered with the hub *before* the replay query runs, so an event committed
during the replay is either replayed or queued live (and then skipped as already sent): nothing
falls between the two.

An instance may hold 10,000 streams, so a stream is one coroutine and a small watcher: frames are
encoded once by the hub and shared, frames that queued up together go out in one write, and a
waiting stream holds no timer: the hub's heartbeat round wakes the streams whose ping is due, each
with a random phase, so streams opened together (or woken by one event) do not all ping at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.audit import service as audit_service
from app.audit.service import AuditContext, PatientKeys
from app.db import Database
from app.principal import Principal
from app.realtime import service
from app.realtime.hub import Hub, Subscriber, sse_frame
from app.realtime.service import StreamEvent

REPLAY_BATCH = 500
MAX_REPLAY = 10_000
RETRY_MS = 3_000
CONNECTED = b": connected\nretry: %d\n\n" % RETRY_MS
PING = b": ping\n\n"


class EventStream:
    """The frames of one stream for ``principal``; ends when closed, revoked or too far behind."""

    def __init__(
        self,
        db: Database,
        hub: Hub,
        principal: Principal,
        *,
        last_event_id: int | None,
        topics: frozenset[str] | None,
        audit: AuditContext | None = None,
        patient_keys: PatientKeys | None = None,
    ) -> None:
        if audit is not None and patient_keys is None:
            raise ValueError("an audited stream needs the patient keys of the placements it shows")
        self._db = db
        self._hub = hub
        self._principal = principal
        self._last_event_id = last_event_id
        self._topics = topics
        self._audit = audit  # replayed placement events are logged (NEN 7513)
        self._patient_keys = patient_keys
        self._sub: Subscriber | None = None
        self._closed = False

    def close(self) -> None:
        """The client went away: end the stream now rather than at its next write."""
        self._closed = True
        if self._sub is not None:
            self._sub.close()

    async def frames(self) -> AsyncGenerator[bytes, None]:
        sub = self._sub = await self._hub.subscribe(self._principal, self._topics)
        if self._closed:
            sub.close()
        try:
            # First frame: tells EventSource how long to wait before reconnecting, and tells the
            # client the subscription is live.
            yield CONNECTED
            replayed: set[int] = set()
            if self._last_event_id is not None:
                async for ident, frame in self._replay(sub):
                    replayed.add(ident)
                    if frame:
                        yield frame
            while not sub.closed:
                if sub.frames:
                    batch = []
                    while sub.frames:
                        event, frame = sub.frames.popleft()
                        if event.id not in replayed:
                            batch.append(frame)
                    if batch:
                        yield b"".join(batch)
                    continue
                if sub.ended:
                    return
                if sub.ping_due:
                    sub.ping_due = False
                    yield PING
                    continue
                await sub.wait()
        finally:
            self._hub.unsubscribe(sub)

    async def _replay(self, sub: Subscriber) -> AsyncIterator[tuple[int, bytes]]:
        """(id, frame) of what was missed; the frame is empty for an event not for this stream."""
        after = self._last_event_id
        assert after is not None
        count = 0
        while True:
            batch = await service.events_after(self._db, after, limit=REPLAY_BATCH)
            wanted = {event.id for event in batch if sub.wants(event)}
            if self._audit is not None and self._patient_keys is not None:
                # Placement events read again: logged per placement before they are sent.
                shown = (event for event in batch if event.id in wanted)
                await audit_service.log_stream_replay(
                    self._db, self._audit, _by_placement(shown), self._patient_keys
                )
            for event in batch:
                if sub.closed:
                    return
                yield event.id, (sse_frame(event) if event.id in wanted else b"")
            count += len(batch)
            if len(batch) < REPLAY_BATCH or count >= MAX_REPLAY:
                return  # beyond MAX_REPLAY the client resumes from the last id it got
            after = batch[-1].id


def _by_placement(events: Iterable[StreamEvent]) -> dict[uuid.UUID, list[int]]:
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


class EventStreamResponse(Response):
    """``text/event-stream`` for one :class:`EventStream`: one coroutine and a disconnect watcher
    per client (a general streaming response costs several tasks and channels per client)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        stream: EventStream,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.stream = stream
        self.on_close = on_close  # e.g. frees the stream's slot, however the response ends
        self.status_code = status_code
        self.background = None
        self.init_headers(
            {"Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream(receive, send)
        finally:
            if self.on_close is not None:
                self.on_close()

    async def _stream(self, receive: Receive, send: Send) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.stream.close()

        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        watcher = asyncio.ensure_future(watch())
        frames = self.stream.frames()
        try:
            async for chunk in frames:
                if watcher.done():
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            watcher.cancel()
            await frames.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
