"""Cursor pagination by primary key: stable order, opaque cursors, no offsets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import InvalidInput
from app.schemas import decode_cursor, encode_cursor

T = TypeVar("T")


def cursor_uuid(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        return uuid.UUID(decode_cursor(cursor))
    except ValueError as exc:
        raise InvalidInput(
            "The pagination cursor is not valid; use next_cursor from a previous page.",
            errors=[{"pointer": "query:cursor", "detail": "not a cursor issued by this service"}],
        ) from exc


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
