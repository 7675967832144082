"""Reading the outbox for the stream and webhooks: rows after an id, the shared event envelope."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, select

from app.db import Database
from app.realtime.models import OutboxEvent


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One committed outbox row, as the stream and the webhooks see it."""

    id: int
    event_id: uuid.UUID
    topic: str
    event_type: str
    region_id: uuid.UUID | None
    organisation_ids: frozenset[uuid.UUID]
    created_at: datetime
    payload: str

    def body(self) -> bytes:
        """The JSON envelope: SSE ``data`` and the webhook request body (same bytes every time)."""
        return orjson.dumps(
            {
                "id": str(self.event_id),
                "sequence": self.id,
                "type": self.event_type,
                "topic": self.topic,
                "created_at": self.created_at,
                "data": orjson.Fragment(self.payload),
            }
        )


_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.event_id,
    OutboxEvent.topic,
    OutboxEvent.event_type,
    OutboxEvent.region_id,
    OutboxEvent.organisation_ids,
    OutboxEvent.created_at,
    OutboxEvent.payload,
)


def parse_organisation_ids(text: str) -> frozenset[uuid.UUID]:
    out = set()
    for part in text.split(","):
        try:
            out.add(uuid.UUID(part))
        except ValueError:
            continue
    return frozenset(out)


def to_event(row: Any) -> StreamEvent:
    return StreamEvent(
        id=int(row.id),
        event_id=uuid.UUID(str(row.event_id)),
        topic=row.topic,
        event_type=row.event_type,
        region_id=None if row.region_id is None else uuid.UUID(str(row.region_id)),
        organisation_ids=parse_organisation_ids(row.organisation_ids),
        created_at=row.created_at,
        payload=row.payload,
    )


async def latest_id(db: Database) -> int:
    async with db.read() as conn:
        value = (await conn.execute(select(func.max(OutboxEvent.id)))).scalar()
    return int(value or 0)


async def ids_after(db: Database, after_id: int, *, limit: int) -> list[int]:
    """Ids above ``after_id`` in order (an index-only scan: cheap to repeat as a safety net)."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(OutboxEvent.id)
            .where(OutboxEvent.id > after_id)
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        return [int(r) for r in rows.scalars()]


async def events_by_id(db: Database, ids: Sequence[int]) -> list[StreamEvent]:
    if not ids:
        return []
    async with db.read() as conn:
        rows = await conn.execute(
            select(*_COLUMNS).where(OutboxEvent.id.in_(list(ids))).order_by(OutboxEvent.id)
        )
        return [to_event(r) for r in rows]


async def events_after(db: Database, after_id: int, *, limit: int) -> list[StreamEvent]:
    """Committed events above ``after_id``, oldest first (the ``Last-Event-ID`` replay)."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(*_COLUMNS).where(OutboxEvent.id > after_id).order_by(OutboxEvent.id).limit(limit)
        )
        return [to_event(r) for r in rows]
