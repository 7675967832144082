"""Short-lived authentication records are kept for a retention period, then purged.

- Idempotency records: a client retries a write within seconds or minutes; a record older than
  ``JUISTEPLEK_IDEMPOTENCY_RETENTION_HOURS`` (24 h by default) is deleted, after which the same
  Idempotency-Key starts a new request.
- Web sessions: a session that expired or was ended more than a day ago can never be used again;
  the day's grace keeps it visible to an admin looking into a just-ended session.
- Login attempts: the throttle looks back minutes, a security review of failed logins looks back
  weeks; attempts older than ``LOGIN_ATTEMPT_RETENTION`` are deleted.

The background sweep calls :func:`purge_expired_auth_records`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from app.auth.models import IdempotencyRecord, LoginAttempt, WebSession
from app.db import Database

PURGE_BATCH = 5_000
SESSION_GRACE = timedelta(days=1)
LOGIN_ATTEMPT_RETENTION = timedelta(days=30)


class PurgedCounts(BaseModel):
    """How many rows one purge round deleted, per kind."""

    idempotency_records: int
    web_sessions: int
    login_attempts: int

    @property
    def any(self) -> bool:
        return bool(self.idempotency_records or self.web_sessions or self.login_attempts)


async def _purge(db: Database, key: InstrumentedAttribute[Any], stale: ColumnElement[bool]) -> int:
    """Delete the rows matching ``stale`` in batches of ``PURGE_BATCH`` (short transactions)."""
    purged = 0
    while True:
        async with db.sessionmaker() as session:
            ids: list[Any] = list(
                (await session.scalars(select(key).where(stale).limit(PURGE_BATCH))).all()
            )
            if not ids:
                return purged
            await session.execute(delete(key.class_).where(key.in_(ids)))
            await session.commit()
            purged += len(ids)


async def purge_idempotency_records(db: Database, *, now: datetime, retention: timedelta) -> int:
    """Delete the records created before ``now - retention``; returns how many."""
    return await _purge(db, IdempotencyRecord.id, IdempotencyRecord.created_at < now - retention)


async def purge_web_sessions(db: Database, *, now: datetime) -> int:
    """Delete sessions that expired or were ended more than ``SESSION_GRACE`` ago."""
    cutoff = now - SESSION_GRACE
    return await _purge(
        db, WebSession.id, or_(WebSession.expires_at < cutoff, WebSession.revoked_at < cutoff)
    )


async def purge_login_attempts(db: Database, *, now: datetime) -> int:
    """Delete login attempts older than ``LOGIN_ATTEMPT_RETENTION``."""
    return await _purge(
        db, LoginAttempt.id, LoginAttempt.occurred_at < now - LOGIN_ATTEMPT_RETENTION
    )


async def purge_expired_auth_records(
    db: Database, *, now: datetime, idempotency_retention: timedelta
) -> PurgedCounts:
    """One purge round over every short-lived authentication record."""
    return PurgedCounts(
        idempotency_records=await purge_idempotency_records(
            db, now=now, retention=idempotency_retention
        ),
        web_sessions=await purge_web_sessions(db, now=now),
        login_attempts=await purge_login_attempts(db, now=now),
    )
