"""Transfer-log appends (docs/domain.md §5): insert only, in the caller's transaction, with the
placement's KPI summary columns kept current (``app.kpi.episodes``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import driver_args, driver_connection
from app.errors import InvalidInput
from app.kpi import episodes
from app.placement.models import TransferEvent

_TABLE = cast(Table, TransferEvent.__table__)
_INSERT = insert(_TABLE)


def occurred_at(
    given: datetime | None, *, now: datetime, previous: datetime | None, skew: timedelta
) -> datetime:
    """The clinical time of an action (docs/domain.md §13): default now, not in the future beyond
    the
    clock skew, not before the placement's previous event."""
    if given is None:
        return now if previous is None or previous <= now else previous
    if given > now + skew:
        raise InvalidInput(
            "occurred_at lies in the future; send the time it really happened.",
            errors=[{"pointer": "#/occurred_at", "detail": "in the future"}],
        )
    if previous is not None and given < previous:
        raise InvalidInput(
            f"occurred_at is before the placement's previous event ({previous.isoformat()}).",
            errors=[{"pointer": "#/occurred_at", "detail": "before the previous event"}],
        )
    return given


async def append(
    conn: AsyncConnection,
    *,
    placement_id: uuid.UUID,
    seq: int,
    event_type: str,
    occurred_at: datetime,
    recorded_at: datetime,
    actor_key_id: uuid.UUID | None,
    actor_organisation_id: uuid.UUID | None,
    from_state: str | None,
    to_state: str,
    unit_id: uuid.UUID | None = None,
    hold_id: uuid.UUID | None = None,
    reason: str | None = None,
    level: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    row = {
        "placement_id": placement_id,
        "seq": seq,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "actor_key_id": actor_key_id,
        "actor_organisation_id": actor_organisation_id,
        "from_state": from_state,
        "to_state": to_state,
        "unit_id": unit_id,
        "hold_id": hold_id,
        "reason": reason,
        "level": level,
        "payload": orjson.dumps(payload or {}, default=str).decode(),
    }
    args = driver_args(conn, _INSERT, row)  # PostgreSQL: straight to the driver (hot path)
    if args is not None:
        await (await driver_connection(conn)).execute(*args)
    else:
        await conn.execute(_INSERT, row)
    # The placement's KPI summary (columns, ready intervals), in this transaction (no
    # statement for untracked types).
    await episodes.track_event(
        conn,
        placement_id=placement_id,
        seq=seq,
        event_type=event_type,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        reason=reason,
        level=level,
    )
