"""Idempotency records are kept for a retention period, then purged.

A client retries a write within seconds or minutes; a record older than
``JUISTEPLEK_IDEMPOTENCY_RETENTION_HOURS`` (24 h by default) is deleted by the background sweep,
after which the same Idempotency-Key starts a new request.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from app.auth.models import IdempotencyRecord
from app.db import Database

PURGE_BATCH = 5_000


async def purge_idempotency_records(db: Database, *, now: datetime, retention: timedelta) -> int:
    """Delete the records created before ``now - retention``; returns how many (in batches)."""
    cutoff = now - retention
    purged = 0
    while True:
        async with db.sessionmaker() as session:
            ids = (
                await session.scalars(
                    select(IdempotencyRecord.id)
                    .where(IdempotencyRecord.created_at < cutoff)
                    .limit(PURGE_BATCH)
                )
            ).all()
            if not ids:
                return purged
            await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
            await session.commit()
            purged += len(ids)
