"""The lifespan task that signs checkpoints of the access log's chain heads (docs/audit.md)."""

from __future__ import annotations

import asyncio
import functools
from contextlib import AbstractAsyncContextManager

import structlog

from app.audit import service
from app.config import Settings
from app.db import Database
from app.lifetime import task_while_open

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


def running(db: Database, settings: Settings) -> AbstractAsyncContextManager[None]:
    """Run the checkpoint loop for the app's lifetime when ``settings.run_audit_checkpoints``."""
    loop = functools.partial(run_forever, db, settings)
    return task_while_open(
        loop if settings.run_audit_checkpoints else None, name="audit-checkpoints"
    )
