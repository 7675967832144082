"""Following partner regions (docs/federation.md): one task per partner pulls its capacity
snapshot on start, on every capacity or status event of its stream and every
``partner_poll_seconds``, and brings the state of forwarded holds back. The stream is reconnected
with exponential backoff (1 s doubling to 30 s); while the partner does not answer, its cached
units are marked unreachable (with a log line and the metrics), never removed or invented.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime

import httpx
import orjson
import structlog

from app.config import Settings
from app.db import Database, utcnow
from app.exchange import federation
from app.exchange.models import Partner
from app.lifetime import task_while_open

log = structlog.get_logger("juisteplek.federation")

# The followers of this process, so a local change (a cancelled placement) can wake them.
_FOLLOWERS: set[Follower] = set()

BACKOFF_START = 1.0
BACKOFF_CAP = 30.0
SUPERVISE_SECONDS = 2.0


async def pull(db: Database, partner: Partner, settings: Settings, *, now: datetime) -> bool:
    """Pull the partner's snapshot into the cache; on failure mark it unreachable. True on ok."""
    try:
        async with federation.client(partner, settings) as http:
            r = await http.get("/v1/capacity-snapshot", headers={"Accept": "application/json"})
            if r.status_code != 200:
                raise httpx.HTTPStatusError(
                    f"snapshot answered {r.status_code}", request=r.request, response=r
                )
            if len(r.content) > federation.MAX_SNAPSHOT_BYTES:
                raise ValueError("snapshot larger than allowed")
            items = orjson.loads(r.content)["items"]
        count = await federation.store_snapshot(db, partner.id, items, now=now)
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
        was = await federation.mark_unreachable(db, partner.id, error, now=now)
        if was or partner.reachable:
            log.warning("partner_unreachable", partner=partner.label, error=error)
        federation.record_pull(partner.label, False, None)
        partner.reachable = False
        return False
    if not partner.reachable:
        log.info("partner_reachable", partner=partner.label, units=count)
    partner.reachable = True
    federation.record_pull(partner.label, True, now)
    return True


async def sync_holds(db: Database, partner: Partner, settings: Settings) -> int:
    """Read the partner placements of open forwarded holds; write what changed locally."""
    links = await federation.open_links(db, partner.id)
    if not links:
        return 0
    changed = 0
    async with federation.client(partner, settings) as http:
        for link, local_state in links:
            try:
                if local_state == "cancelled":
                    # Cancelled here: give the partner's place back (its placement is cancelled).
                    await http.post(
                        f"/v1/placements/{link.remote_placement_id}/cancel",
                        json={"reason": "referrer_withdrew"},
                    )
                r = await http.get(f"/v1/placements/{link.remote_placement_id}")
                if r.status_code != 200:
                    continue
                state = str(r.json()["state"])
                if state == link.remote_state:
                    continue
                ev = await http.get(f"/v1/placements/{link.remote_placement_id}/events")
                events = ev.json().get("items", []) if ev.status_code == 200 else []
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.warning("partner_hold_sync_failed", partner=partner.label, error=str(exc))
                return changed
            wrote = await federation.apply_remote(db, link.id, state, events, now=utcnow())
            if wrote is not None:
                log.info(
                    "partner_hold_changed",
                    partner=partner.label,
                    placement_id=str(link.placement_id),
                    event=wrote,
                )
                changed += 1
    return changed


class Follower:
    """One partner: a puller woken by stream events and a timer, and the stream reader."""

    def __init__(self, db: Database, partner: Partner, settings: Settings) -> None:
        self.db = db
        self.partner = partner
        self.settings = settings
        self.wake = asyncio.Event()
        self.wake_holds = asyncio.Event()

    async def run(self) -> None:
        _FOLLOWERS.add(self)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._puller())
                tasks.create_task(self._stream())
        finally:
            _FOLLOWERS.discard(self)

    async def _puller(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.partner_poll_seconds):
                    await self.wake.wait()
            self.wake.clear()
            try:
                if await pull(self.db, self.partner, self.settings, now=utcnow()):
                    await sync_holds(self.db, self.partner, self.settings)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad partner never stops the others or the app
                log.exception("partner_pull_failed", partner=self.partner.label)

    async def _stream(self) -> None:
        backoff = BACKOFF_START
        self.wake.set()  # the first pull on start
        while True:
            try:
                async with (
                    federation.client(self.partner, self.settings) as http,
                    http.stream(
                        "GET",
                        "/v1/stream",
                        headers={"Accept": "text/event-stream"},
                        timeout=httpx.Timeout(self.settings.partner_timeout_seconds, read=None),
                    ) as response,
                ):
                    if response.status_code != 200:
                        raise httpx.HTTPStatusError(
                            f"stream answered {response.status_code}",
                            request=response.request,
                            response=response,
                        )
                    backoff = BACKOFF_START
                    self.wake.set()  # catch up with what happened while disconnected
                    async for event in _event_types(response):
                        if event.startswith(("capacity.", "unit.", "placement.")):
                            self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info(
                    "partner_stream_lost",
                    partner=self.partner.label,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                    retry_in=backoff,
                )
            self.wake.set()  # a pull now tells whether the partner is down
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)


def wake_all() -> None:
    """Pull every partner now and bring forwarded holds up to date (no I/O here)."""
    for follower in list(_FOLLOWERS):
        follower.wake.set()


async def _event_types(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            yield line.removeprefix("event:").strip()


async def supervise(db: Database, settings: Settings) -> None:
    """Keep one follower per active partner (partners added or removed are seen in ~2 s)."""
    running: dict[uuid.UUID, asyncio.Task[None]] = {}
    try:
        while True:
            try:
                partners = {p.id: p for p in await federation.active_partners(db)}
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("partner_supervise_failed")
                await asyncio.sleep(SUPERVISE_SECONDS)
                continue
            for pid in [pid for pid in running if pid not in partners]:
                running.pop(pid).cancel()
            for pid, partner in partners.items():
                task = running.get(pid)
                if task is None or task.done():
                    follower = Follower(db, partner, settings)
                    running[pid] = asyncio.create_task(follower.run())
            await asyncio.sleep(SUPERVISE_SECONDS)
    finally:
        for task in running.values():
            task.cancel()
        for task in running.values():
            with contextlib.suppress(BaseException):
                await task


def running(db: Database, settings: Settings) -> AbstractAsyncContextManager[None]:
    """Follow the partners for the app's lifetime when ``settings.run_partner_sync``."""
    loop = functools.partial(supervise, db, settings)
    return task_while_open(loop if settings.run_partner_sync else None, name="partner-sync")
