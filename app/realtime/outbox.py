"""Publish a change to the outbox inside the caller's transaction (commits with the change).

After the commit the in-process bus is told; on PostgreSQL the transaction also sends
``pg_notify('juisteplek_outbox', ids)`` just before it commits, which PostgreSQL delivers to every
listening app instance only when (and if) the commit succeeds (``app.realtime.bus``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.realtime.bus import notify_after_commit
from app.realtime.models import OutboxEvent


async def publish(
    session: AsyncSession,
    *,
    topic: str,
    event_type: str,
    payload: Mapping[str, Any],
    region_id: uuid.UUID | None = None,
    organisation_ids: Iterable[uuid.UUID] = (),
) -> OutboxEvent:
    """Queue ``payload`` for the stream and webhooks; nothing is sent unless the caller commits."""
    event = OutboxEvent(
        event_id=uuid.uuid4(),
        topic=topic,
        event_type=event_type,
        payload=orjson.dumps(payload, default=str).decode(),
        region_id=region_id,
        organisation_ids=",".join(sorted({str(o) for o in organisation_ids})),
        created_at=utcnow(),
    )
    session.add(event)
    await session.flush()
    notify_after_commit(session, event.id)
    return event
