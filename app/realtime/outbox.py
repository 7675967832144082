"""Publish a change to the outbox inside the caller's transaction (commits with the change).

After the commit the in-process bus is told, and on PostgreSQL the other instances hear of it by a
NOTIFY sent after the commit (``app.realtime.bus``, ``app.realtime.notifier``).

The row is written with a Core INSERT on the session's connection, not an ORM ``add`` + ``flush``:
the unit of work cost more CPU than the statement itself on the hold path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver_args, driver_connection, utcnow
from app.realtime.bus import notify_after_commit
from app.realtime.models import OutboxEvent

_TABLE = cast(Table, OutboxEvent.__table__)
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


@dataclass(frozen=True, slots=True)
class Published:
    """The outbox row just written (uncommitted): its id is the stream's event id."""

    id: int
    event_id: uuid.UUID


async def publish(
    session: AsyncSession,
    *,
    topic: str,
    event_type: str,
    payload: Mapping[str, Any],
    region_id: uuid.UUID | None = None,
    organisation_ids: Iterable[uuid.UUID] = (),
) -> Published:
    """Queue ``payload`` for the stream and webhooks; nothing is sent unless the caller commits."""
    if session.new or session.dirty or session.deleted:
        # Keep the caller's pending ORM changes ahead of the outbox row, as the ORM flush did.
        await session.flush()
    conn = await session.connection()
    event_id = uuid.uuid4()
    row = {
        "event_id": event_id,
        "topic": topic,
        "event_type": event_type,
        "payload": orjson.dumps(payload, default=str).decode(),
        "region_id": region_id,
        "organisation_ids": ",".join(sorted({str(o) for o in organisation_ids})),
        "created_at": utcnow(),
        "webhooks_fanned_out_at": None,
    }
    args = driver_args(conn, _INSERT, row)  # PostgreSQL: straight to the driver (hot path)
    if args is not None:
        outbox_id: int = await (await driver_connection(conn)).fetchval(*args)
    else:
        outbox_id = (await conn.execute(_INSERT, row)).scalar_one()
    notify_after_commit(session, outbox_id)
    return Published(id=outbox_id, event_id=event_id)


async def publish_many(
    session: AsyncSession,
    *,
    topic: str,
    events: Sequence[tuple[str, Mapping[str, Any], Iterable[uuid.UUID]]],
) -> list[int]:
    """Queue many ``(event_type, payload, organisation_ids)`` events in one statement; the ids
    are announced after the commit in one NOTIFY per 7 kB, as ``publish`` does for one."""
    if not events:
        return []
    if session.new or session.dirty or session.deleted:
        await session.flush()
    conn = await session.connection()
    now = utcnow()
    rows = [
        {
            "event_id": uuid.uuid4(),
            "topic": topic,
            "event_type": event_type,
            "payload": orjson.dumps(payload, default=str).decode(),
            "region_id": None,
            "organisation_ids": ",".join(sorted({str(o) for o in organisation_ids})),
            "created_at": now,
            "webhooks_fanned_out_at": None,
        }
        for event_type, payload, organisation_ids in events
    ]
    result = await conn.execute(
        insert(_TABLE).returning(_TABLE.c.id, sort_by_parameter_order=True), rows
    )
    ids = [int(i) for i in result.scalars().all()]
    for outbox_id in ids:
        notify_after_commit(session, outbox_id)
    return ids
