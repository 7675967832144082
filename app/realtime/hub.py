"""The real-time hub of one app instance: reads new outbox rows once and fans them out to streams.

Woken by the in-process bus (commits in this process), by PostgreSQL NOTIFY (commits in any
instance) and by a periodic poll (the safety net). Each wake reads the ids above
``last_id - lookback``: PostgreSQL ids can commit out of order, so a lower id that commits late is
still found, and ``seen`` keeps it from being sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from app.auth.principal import Principal
from app.db import Database
from app.realtime import service
from app.realtime.bus import local_bus
from app.realtime.listener import PgListener
from app.realtime.service import StreamEvent
from app.realtime.visibility import can_see

log = structlog.get_logger("juisteplek.realtime")

LOOKBACK = 1_000
SCAN_LIMIT = 5_000


@dataclass(eq=False)
class Subscriber:
    """One connected stream: the events it may see, in commit order, until it falls behind."""

    principal: Principal
    topics: frozenset[str] | None
    # Replaces the visibility rule for a stream that derives its own, coarser events (the web
    # pages' channel turns a hold on any unit into "this unit changed", without placement data).
    accept: Callable[[StreamEvent], bool] | None = None
    queue: asyncio.Queue[StreamEvent] = field(default_factory=lambda: asyncio.Queue(10_000))
    overflowed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: StreamEvent) -> None:
        if self.overflowed:
            return
        if self.topics is not None and event.topic not in self.topics:
            return
        if self.accept is not None:
            if not self.accept(event):
                return
        elif not can_see(
            self.principal,
            topic=event.topic,
            region_id=event.region_id,
            organisation_ids=event.organisation_ids,
        ):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A client this far behind is cut off; it resumes from the outbox with Last-Event-ID.
            self.overflowed = True
        self.changed.set()

    async def next(self) -> StreamEvent | None:
        """The next event, or None once the subscriber overflowed and its queue is drained."""
        while True:
            if not self.queue.empty():
                return self.queue.get_nowait()
            if self.overflowed:
                return None
            self.changed.clear()
            await self.changed.wait()


class Hub:
    def __init__(
        self,
        db: Database,
        *,
        database_url: str,
        poll_seconds: float,
        listen: bool = True,
        lookback: int = LOOKBACK,
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

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
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
        sub = Subscriber(principal=principal, topics=topics, accept=accept)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

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
            for event in events:
                for sub in list(self._subscribers):
                    sub.offer(event)
        self._seen.update(ordered)
        self._last = max(self._last, ordered[-1])
        floor = self._last - 2 * self._lookback
        if len(self._seen) > 4 * self._lookback:
            self._seen = {i for i in self._seen if i > floor}
        return len(ordered)
