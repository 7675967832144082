"""The real-time hub of one app instance: reads new outbox rows once and fans them out to streams.

Woken by the in-process bus (commits in this process), by PostgreSQL NOTIFY (commits in any
instance) and by a periodic poll (the safety net). Each wake reads the ids above
``last_id - lookback``: PostgreSQL ids can commit out of order, so a lower id that commits late is
still found, and ``seen`` keeps it from being sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Collection

import structlog

from app.db import Database
from app.principal import Principal
from app.realtime import service
from app.realtime.bus import local_bus
from app.realtime.listener import PgListener
from app.realtime.service import StreamEvent
from app.realtime.visibility import can_see

log = structlog.get_logger("juisteplek.realtime")

LOOKBACK = 1_000
SCAN_LIMIT = 5_000
QUEUE_LIMIT = 10_000  # frames a stream may fall behind before it is cut off


def sse_frame(event: StreamEvent) -> bytes:
    """The event as one server-sent-events frame; encoded once, sent to every stream."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.id,
        event.event_type.encode(),
        event.body(),
    )


class Subscriber:
    """One connected stream: the frames it may see, in commit order, until it falls behind.

    Kept small on purpose (a national deployment holds 10,000 of these per instance): a deque of
    shared frame bytes and one future to wake the stream, no queue object or task of its own.
    """

    __slots__ = (
        "_waiter",
        "accept",
        "closed",
        "frames",
        "next_ping",
        "overflowed",
        "ping_due",
        "principal",
        "topics",
    )

    def __init__(
        self,
        principal: Principal,
        topics: frozenset[str] | None,
        *,
        next_ping: float,
        accept: Callable[[StreamEvent], bool] | None = None,
    ) -> None:
        self.principal = principal
        self.topics = topics
        # Replaces the visibility rule for a stream that derives its own, coarser events (the web
        # pages' channel turns a hold on any unit into "this unit changed", without placement data).
        self.accept = accept
        # (event, its encoded frame): the frame for plain streams, the event for derived ones.
        self.frames: deque[tuple[StreamEvent, bytes]] = deque()
        self.overflowed = False  # fell too far behind: resumes from the outbox on reconnect
        self.closed = False  # its key was revoked or the client went away
        self.next_ping = next_ping  # loop time of its next heartbeat
        self.ping_due = False
        self._waiter: asyncio.Future[None] | None = None

    def wants(self, event: StreamEvent) -> bool:
        if self.topics is not None and event.topic not in self.topics:
            return False
        if self.accept is not None:
            return self.accept(event)
        return can_see(
            self.principal,
            topic=event.topic,
            region_id=event.region_id,
            organisation_ids=event.organisation_ids,
        )

    def offer(self, event: StreamEvent, frame: bytes) -> None:
        if self.overflowed or self.closed or not self.wants(event):
            return
        if len(self.frames) >= QUEUE_LIMIT:
            # A client this far behind is cut off; it resumes from the outbox with Last-Event-ID.
            self.overflowed = True
        else:
            self.frames.append((event, frame))
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def ping(self) -> None:
        self.ping_due = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until there is a frame, a heartbeat due or the end (no timer per stream: the hub's
        heartbeat round wakes the streams whose ping is due)."""
        if self.frames or self.overflowed or self.closed or self.ping_due:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    @property
    def ended(self) -> bool:
        """Nothing more will come: closed, or overflowed and drained."""
        return self.closed or (self.overflowed and not self.frames)


# How often the frozen objects go back to the collector, so cyclic garbage of streams that ended
# meanwhile is still freed: one full collection per period instead of one every few seconds.
THAW_SECONDS = 600.0


def _keep_streams_out_of_gc(
    subscribed: int, frozen_for: int, now: float, thawed_at: float
) -> tuple[int, float]:
    """Move what is alive into the collector's permanent generation once new streams opened.

    With thousands of open streams, each full collection walked every stream's objects and
    stalled the fan-out for most of a second every few seconds (measured with bench/run_stream.py;
    gone with the collector off). Objects alive now are mostly the streams', which live long;
    they are frozen so full collections skip them. Every ``THAW_SECONDS`` they are thawed and
    collected once, so a cycle left by an ended stream does not live on. Returns the new
    (``frozen_for``, ``thawed_at``).
    """
    if now - thawed_at >= THAW_SECONDS:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        return subscribed, now
    if subscribed != frozen_for:
        gc.freeze()
        return subscribed, thawed_at
    return frozen_for, thawed_at


class Hub:
    def __init__(
        self,
        db: Database,
        *,
        database_url: str,
        poll_seconds: float,
        listen: bool = True,
        lookback: int = LOOKBACK,
        heartbeat_seconds: float = 15.0,
        revalidate_seconds: float = 10.0,
        revoked_keys: Callable[[Collection[uuid.UUID]], Awaitable[set[uuid.UUID]]] | None = None,
    ) -> None:
        self._db = db
        self._database_url = database_url
        self._poll_seconds = poll_seconds
        self._listen = listen and db.dialect == "postgresql"
        self._lookback = lookback
        self._subscribers: set[Subscriber] = set()
        self._seen: set[int] = set()
        self._hinted: set[int] = set()
        self._last = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: PgListener | None = None
        self._unsubscribe_bus: Callable[[], None] | None = None
        self._start_lock = asyncio.Lock()
        self._heartbeat = heartbeat_seconds
        self._heartbeats: asyncio.Task[None] | None = None
        self._subscribed = 0  # streams opened so far (the GC policy freezes after new ones)
        # Revoked keys end their streams: at once on this instance (revoke()), and on the others
        # by one query per period for all keys with an open stream, not a check per event.
        self._revalidate_seconds = revalidate_seconds
        self._revoked_keys = revoked_keys
        self._revalidator: asyncio.Task[None] | None = None

    @property
    def last_id(self) -> int:
        return self._last

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _hint(self, ids: list[int]) -> None:
        self._hinted.update(ids)
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        """Start on first use, so an instance nobody streams from does no real-time work."""
        async with self._start_lock:
            if self._task is not None:
                return
            self._last = await service.latest_id(self._db)
            self._seen = set(
                await service.ids_after(
                    self._db, max(0, self._last - self._lookback), limit=SCAN_LIMIT
                )
            )
            unsubscribe = local_bus.subscribe(self._hint)
            self._unsubscribe_bus = unsubscribe
            if self._listen:
                self._listener = PgListener(
                    self._database_url, on_ids=self._hint, on_reconnect=self.poke
                )
                await self._listener.start()
            self._task = asyncio.create_task(self._run(), name="juisteplek-realtime-hub")
            self._heartbeats = asyncio.create_task(
                self._beat(), name="juisteplek-realtime-heartbeat"
            )
            if self._revoked_keys is not None:
                self._revalidator = asyncio.create_task(
                    self._revalidate(), name="juisteplek-realtime-keys"
                )

    async def stop(self) -> None:
        for task in (self._task, self._heartbeats, self._revalidator):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._heartbeats = self._revalidator = None
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._unsubscribe_bus is not None:
            self._unsubscribe_bus()
            self._unsubscribe_bus = None

    async def subscribe(
        self,
        principal: Principal,
        topics: frozenset[str] | None,
        accept: Callable[[StreamEvent], bool] | None = None,
    ) -> Subscriber:
        await self.start()
        # A random phase per stream: streams opened together do not all ping in one instant.
        phase = random.uniform(0, self._heartbeat)  # noqa: S311 - not a secret
        self._subscribed += 1
        next_ping = asyncio.get_running_loop().time() + phase
        sub = Subscriber(principal, topics, next_ping=next_ping, accept=accept)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def revoke(self, key_ids: Collection[uuid.UUID]) -> int:
        """End the open streams of these keys; returns how many ended."""
        wanted = set(key_ids)
        ended = [sub for sub in self._subscribers if sub.principal.key_id in wanted]
        for sub in ended:
            sub.close()
        return len(ended)

    async def _beat(self) -> None:
        """Wake the streams whose heartbeat is due: one round per fraction of the interval; and
        keep the garbage collector off the open streams (``_keep_streams_out_of_gc``)."""
        loop = asyncio.get_running_loop()
        frozen_for = 0
        thawed_at = loop.time()
        while True:
            await asyncio.sleep(min(1.0, self._heartbeat / 4))
            now = loop.time()
            for sub in self._subscribers:
                if sub.next_ping <= now:
                    sub.next_ping = max(sub.next_ping + self._heartbeat, now)
                    sub.ping()
            frozen_for, thawed_at = _keep_streams_out_of_gc(
                self._subscribed, frozen_for, now, thawed_at
            )

    async def _revalidate(self) -> None:
        assert self._revoked_keys is not None
        while True:
            await asyncio.sleep(self._revalidate_seconds)
            keys = {sub.principal.key_id for sub in self._subscribers}
            if not keys:
                continue
            try:
                revoked = await self._revoked_keys(keys)
            except Exception:
                log.exception("realtime_key_check_failed")
                continue
            if revoked:
                self.revoke(revoked)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("realtime_hub_tick_failed")
                await asyncio.sleep(self._poll_seconds)

    async def tick(self) -> int:
        """Read what is new since the last tick and offer it to the subscribers; returns count."""
        hinted, self._hinted = self._hinted, set()
        low = max(0, self._last - self._lookback)
        ids = await service.ids_after(self._db, low, limit=SCAN_LIMIT)
        fresh = {i for i in ids if i not in self._seen}
        fresh.update(i for i in hinted if i <= low and i not in self._seen)
        if len(ids) == SCAN_LIMIT:
            self._wake.set()  # a burst larger than one scan: continue right away
        if not fresh:
            return 0
        ordered = sorted(fresh)
        if self._subscribers:
            events = await service.events_by_id(self._db, ordered)
            subscribers = list(self._subscribers)
            for event in events:
                frame = sse_frame(event)
                for sub in subscribers:
                    sub.offer(event, frame)
        self._seen.update(ordered)
        self._last = max(self._last, ordered[-1])
        floor = self._last - 2 * self._lookback
        if len(self._seen) > 4 * self._lookback:
            self._seen = {i for i in self._seen if i > floor}
        return len(ordered)
