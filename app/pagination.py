"""Cursor pagination by primary key: stable order, opaque cursors, no offsets."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import InvalidInput
from app.schemas import decode_cursor, encode_cursor, in_range

T = TypeVar("T")

# Row ids and sequence numbers are BIGINT: 18 digits always fit, so a forged cursor never
# reaches the database as a number it cannot compare.
_SEQUENCE = re.compile(r"[0-9]{1,18}")


def bad_cursor() -> InvalidInput:
    return InvalidInput(
        "The pagination cursor is not valid; use next_cursor from a previous page.",
        errors=[{"pointer": "query:cursor", "detail": "not a cursor issued by this service"}],
    )


def cursor_uuid(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        return uuid.UUID(decode_cursor(cursor))
    except ValueError as exc:
        raise bad_cursor() from exc


def cursor_int(cursor: str) -> int:
    """The row id or sequence number of a cursor made by ``encode_cursor(str(n))``."""
    raw = decode_cursor(cursor)
    if not _SEQUENCE.fullmatch(raw):
        raise bad_cursor()
    return int(raw)


def cursor_time_id(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (timestamp, id) of a cursor made by ``encode_cursor(f"{at.isoformat()}|{id}")``."""
    at, _, ident = decode_cursor(cursor).partition("|")
    try:
        when = datetime.fromisoformat(at)
        key = uuid.UUID(ident)
    except ValueError as exc:
        raise bad_cursor() from exc
    if when.tzinfo is None or not in_range(when):
        raise bad_cursor()
    return when, key


async def fetch_page(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Any], str | None]:
    """Rows after ``cursor`` ordered by ``id_column``, plus the cursor of the next page."""
    after = cursor_uuid(cursor)
    if after is not None:
        stmt = stmt.where(id_column > after)
    rows = (await session.execute(stmt.order_by(id_column).limit(limit + 1))).all()
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1][0]
    return rows, encode_cursor(str(last.id))
