"""Tells the other app instances, on PostgreSQL, which outbox rows this instance committed.

Listens to ``local_bus`` (ids arrive after their commit) and sends them with ``pg_notify`` on a
connection of its own, batched, outside any write's transaction: no write waits for PostgreSQL's
notify lock at its COMMIT. A NOTIFY that is lost (this process dies between the commit and the
send, or the database is briefly away) is made good by every hub's periodic outbox poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from sqlalchemy import text

from app.db import Database
from app.realtime.bus import NOTIFY_CHANNEL, local_bus, notify_payloads

log = structlog.get_logger("juisteplek.realtime")

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class PgNotifier:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._ids: list[int] = []
        self._wake = asyncio.Event()

    def _heard(self, ids: list[int]) -> None:
        self._ids.extend(ids)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ids, self._ids = self._ids, []
            if not ids:
                continue
            try:
                async with self._db.engine.connect() as conn:
                    for payload in notify_payloads(ids):
                        await conn.execute(_NOTIFY, {"channel": NOTIFY_CHANNEL, "payload": payload})
                    await conn.commit()
            except Exception as exc:
                # The other instances' outbox poll picks these rows up within a second or so; a
                # database that is away is expected now and then, so no traceback.
                log.warning("outbox_notify_failed", ids=len(ids), error=repr(exc)[:200])


@contextlib.asynccontextmanager
async def running(db: Database) -> AsyncIterator[PgNotifier | None]:
    """Run a notifier while the context is open (PostgreSQL only; SQLite has one instance)."""
    if db.dialect != "postgresql":
        yield None
        return
    notifier = PgNotifier(db)
    unsubscribe = local_bus.subscribe(notifier._heard)
    task = asyncio.create_task(notifier.run(), name="juisteplek-outbox-notify")
    try:
        yield notifier
    finally:
        unsubscribe()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
