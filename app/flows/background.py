"""Background work of one app instance: the real-time hub, the outbox NOTIFY sender and the
webhook dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator

from app.auth.service import revoked_key_ids
from app.config import Settings
from app.db import Database
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
    dispatcher = None
    if settings.dispatch_webhooks:
        dispatcher = asyncio.create_task(run_dispatcher(db, settings), name="juisteplek-webhooks")
    try:
        async with notifier.running(db):
            yield hub
    finally:
        if dispatcher is not None:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
        await hub.stop()
