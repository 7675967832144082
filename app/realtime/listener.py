"""PostgreSQL LISTEN bridge: one dedicated asyncpg connection per app instance.

Every committed outbox transaction sends ``pg_notify('juisteplek_outbox', '<ids>')``; this
connection receives them from every instance and hands the ids to the hub. When the connection
drops it reconnects with backoff and asks the hub to catch up from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from app.realtime.bus import NOTIFY_CHANNEL, parse_notify_payload

log = structlog.get_logger("juisteplek.realtime")


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy) as a plain libpq-style DSN for asyncpg."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PgListener:
    """LISTEN on ``juisteplek_outbox``; ``on_ids`` gets the ids, ``on_reconnect`` gaps to fill."""

    def __init__(
        self,
        database_url: str,
        *,
        on_ids: Callable[[list[int]], None],
        on_reconnect: Callable[[], None],
        channel: str = NOTIFY_CHANNEL,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._on_ids = on_ids
        self._on_reconnect = on_reconnect
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_ids(parse_notify_payload(payload))

    async def start(self, *, wait_seconds: float = 5.0) -> None:
        """Start listening; waits (bounded) for the first connection so callers can rely on it."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="juisteplek-pg-listener")
        try:
            await asyncio.wait_for(self.connected.wait(), timeout=wait_seconds)
        except TimeoutError:
            log.warning("pg_listener_not_connected_yet")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.5
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": "juisteplek-listener"}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(self._channel, self._notified)
                self.connected.set()
                if not first:
                    self._on_reconnect()  # NOTIFYs sent while we were away are gone: re-read
                first = False
                delay = 0.5
                while not lost.is_set() and not conn.is_closed():
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=10)
                    except TimeoutError:
                        # Keep-alive probe: detects a dead server when no NOTIFY arrives.
                        await conn.execute("SELECT 1")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pg_listener_error", error=f"{type(exc).__name__}: {exc}")
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
