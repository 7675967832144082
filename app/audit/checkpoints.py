"""The lifespan task that signs checkpoints of the access log's chain heads (docs/audit.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from app.audit import service
from app.config import Settings
from app.db import Database

log = structlog.get_logger("juisteplek.audit")


async def run_forever(db: Database, settings: Settings) -> None:
    """Every ``audit_checkpoint_seconds``: sign the heads that grew; errors are logged."""
    keys = service.signing_keys(settings)
    while True:
        await asyncio.sleep(settings.audit_checkpoint_seconds)
        try:
            signed = await service.checkpoint_all(db, keys=keys)
            if signed:
                log.info(
                    "audit_checkpoint",
                    number=signed[-1].number,
                    heads=sum(c.heads for c in signed),
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("audit_checkpoint_failed")


@contextlib.asynccontextmanager
async def running(db: Database, settings: Settings) -> AsyncIterator[None]:
    """Run the checkpoint loop for the app's lifetime when ``settings.run_audit_checkpoints``."""
    if not settings.run_audit_checkpoints:
        yield
        return
    task = asyncio.create_task(run_forever(db, settings), name="audit-checkpoints")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
