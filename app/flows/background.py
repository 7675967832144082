"""Background work of one app instance: the real-time hub, the outbox NOTIFY sender, the webhook
dispatcher and the placement sweep loop (which also reopens units and purges short-lived
authentication records)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

import structlog

from app.auth.idempotency import purge_expired_auth_records
from app.auth.service import revoked_key_ids
from app.capacity import status as unit_status
from app.config import Settings
from app.db import Database, utcnow
from app.lifetime import task_while_open
from app.placement import sweeper
from app.realtime import notifier
from app.realtime.hub import Hub
from app.webhooks.dispatcher import run_dispatcher


@contextlib.asynccontextmanager
async def background(db: Database, settings: Settings) -> AsyncIterator[Hub]:
    """Yield the hub (it starts with the first stream) and run the dispatcher if enabled."""
    hub = Hub(
        db,
        database_url=settings.database_url,
        poll_seconds=settings.outbox_poll_seconds,
        listen=settings.realtime_listen_enabled,
        heartbeat_seconds=settings.stream_heartbeat_seconds,
        revalidate_seconds=max(1.0, settings.api_key_cache_seconds),
        revoked_keys=functools.partial(revoked_key_ids, db),
    )
    dispatcher = functools.partial(run_dispatcher, db, settings)
    try:
        async with (
            task_while_open(
                dispatcher if settings.dispatch_webhooks else None, name="juisteplek-webhooks"
            ),
            notifier.running(db),
        ):
            yield hub
    finally:
        await hub.stop()


sweep_log = structlog.get_logger("juisteplek.sweeper")

AUTH_PURGE_EVERY = timedelta(minutes=10)


async def sweep_forever(db: Database, settings: Settings) -> None:
    """The lifespan task: sweep every ``placement_sweep_seconds``; errors are logged, not fatal.

    The same loop purges short-lived authentication records (idempotency records, ended web
    sessions, old login attempts) past their retention, at most every
    ``AUTH_PURGE_EVERY``.
    """
    retention = timedelta(hours=settings.idempotency_retention_hours)
    last_purge: datetime | None = None
    while True:
        now = utcnow()
        try:
            result = await sweeper.sweep(db, now=now, public_url=settings.public_url)
            if result.expired_holds or result.escalated or result.unowned_overdue:
                sweep_log.info("placement_sweep", **result.model_dump())
            # Units whose closure ended at its ``until``: record and announce the reopening.
            reopened = await unit_status.reopen_due(db, now=now)
            if reopened:
                sweep_log.info("units_reopened", count=reopened)
        except asyncio.CancelledError:
            raise
        except Exception:
            sweep_log.exception("placement_sweep_failed")
        if last_purge is None or now - last_purge >= AUTH_PURGE_EVERY:
            try:
                purged = await purge_expired_auth_records(
                    db, now=now, idempotency_retention=retention
                )
                last_purge = now
                if purged.any:
                    sweep_log.info("auth_records_purged", **purged.model_dump())
            except asyncio.CancelledError:
                raise
            except Exception:
                sweep_log.exception("auth_purge_failed")
        await asyncio.sleep(settings.placement_sweep_seconds)


def sweeper_running(db: Database, settings: Settings) -> AbstractAsyncContextManager[None]:
    """Run the sweep loop for the app's lifetime when ``settings.run_placement_sweeper``."""
    loop = functools.partial(sweep_forever, db, settings)
    return task_while_open(
        loop if settings.run_placement_sweeper else None, name="placement-sweeper"
    )
