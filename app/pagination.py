"""Keyset pagination for every paged list: stable order, opaque cursors, no offsets.

A list names its order once, as a ``Keyset`` of columns (the last one unique, so the order is
total). The cursor of the next page holds the last row's values of those columns; decoding checks
each value against its column's type and range (a BIGINT id, a 32-bit sequence number, a UUID, an
aware date-time inside the accepted range), so a malformed or forged cursor is a 422 naming the
``cursor`` parameter and never reaches the database as a value it cannot compare.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, DateTime, Integer, Select, Uuid, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import TypeDecorator, TypeEngine

from app.errors import InvalidInput
from app.schemas import in_range

T = TypeVar("T")
Key = int | uuid.UUID | datetime

_SEPARATOR = "|"
# Longest decimal text of a BIGINT (2**63 - 1): a longer run of digits is refused unparsed.
_MAX_DIGITS = 19


def bad_cursor() -> InvalidInput:
    """The 422 for a cursor this service did not issue (or not for this list)."""
    return InvalidInput(
        "The pagination cursor is not valid; use next_cursor from a previous page.",
        errors=[{"pointer": "query:cursor", "detail": "not a cursor issued by this service"}],
    )


def _int_parser(bits: int) -> Callable[[str], Key]:
    top = 2 ** (bits - 1) - 1

    def parse(text: str) -> Key:
        if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
            raise ValueError(text)
        value = int(text)
        if value > top:
            raise ValueError(text)
        return value

    return parse


def _parse_uuid(text: str) -> Key:
    return uuid.UUID(text)


def _parse_datetime(text: str) -> Key:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None or not in_range(value):
        raise ValueError(text)
    return value


def _parser(column: InstrumentedAttribute[Any]) -> Callable[[str], Key]:
    kind: TypeEngine[Any] = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, DateTime):
        return _parse_datetime
    if isinstance(kind, Uuid):
        return _parse_uuid
    if isinstance(kind, BigInteger):
        return _int_parser(64)
    if isinstance(kind, Integer):
        return _int_parser(32)
    raise TypeError(f"{column} ({kind}) cannot order a paged list")


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


class Keyset:
    """The order of a paged list: ``columns`` compared as one tuple, ascending or descending."""

    def __init__(self, *columns: InstrumentedAttribute[Any], descending: bool = False) -> None:
        if not columns:
            raise ValueError("a keyset needs at least one column")
        self.columns = columns
        self.descending = descending
        self._parsers = [_parser(c) for c in columns]

    def encode(self, values: Sequence[Any]) -> str:
        """The cursor of the page after the row with these column values."""
        raw = _SEPARATOR.join(_text(v) for v in values)
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> tuple[Key, ...]:
        """The column values in ``cursor``, each checked against its column; else a 422."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
            parts = raw.split(_SEPARATOR)
            if len(parts) != len(self._parsers):
                raise ValueError(raw)
            return tuple(parse(part) for parse, part in zip(self._parsers, parts, strict=True))
        except (binascii.Error, UnicodeError, ValueError, OverflowError) as exc:
            raise bad_cursor() from exc

    def after(self, cursor: str) -> ColumnElement[bool]:
        """The condition selecting the rows that follow ``cursor`` in this order."""
        values = self.decode(cursor)
        terms = []
        for i, (column, value) in enumerate(zip(self.columns, values, strict=True)):
            beyond = column < value if self.descending else column > value
            equal = [c == v for c, v in zip(self.columns[:i], values[:i], strict=True)]
            terms.append(and_(*equal, beyond) if equal else beyond)
        return or_(*terms) if len(terms) > 1 else terms[0]

    def select(self, stmt: Select[Any], cursor: str | None, limit: int) -> Select[Any]:
        """``stmt`` from ``cursor`` on, in this order, one row more than ``limit`` (to tell
        whether a next page exists)."""
        if cursor is not None:
            stmt = stmt.where(self.after(cursor))
        order = [c.desc() if self.descending else c.asc() for c in self.columns]
        return stmt.order_by(*order).limit(limit + 1)

    def page(
        self, rows: Sequence[T], limit: int, entity: Callable[[T], Any] | None = None
    ) -> tuple[list[T], str | None]:
        """The first ``limit`` of ``rows`` (fetched by ``select``) and the next page's cursor,
        made from the last row (``entity`` picks the mapped object out of a result row)."""
        if len(rows) <= limit:
            return list(rows), None
        shown = list(rows[:limit])
        last = shown[-1] if entity is None else entity(shown[-1])
        return shown, self.encode([getattr(last, c.key) for c in self.columns])

    async def scalars(
        self, session: AsyncSession, stmt: Select[Any], cursor: str | None, limit: int
    ) -> tuple[list[Any], str | None]:
        """One page of the mapped objects ``stmt`` selects, and the next page's cursor."""
        return self.page((await session.scalars(self.select(stmt, cursor, limit))).all(), limit)

    async def rows(
        self,
        session: AsyncSession,
        stmt: Select[Any],
        cursor: str | None,
        limit: int,
        entity: Callable[[Any], Any],
    ) -> tuple[list[Any], str | None]:
        """One page of the result rows of ``stmt``, and the next page's cursor."""
        found = (await session.execute(self.select(stmt, cursor, limit))).all()
        return self.page(found, limit, entity)


async def fetch_page(
    session: AsyncSession,
    stmt: Select[Any],
    id_column: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[Any], str | None]:
    """Result rows after ``cursor`` ordered by ``id_column`` (the row's first entity's id), plus
    the cursor of the next page."""
    return await Keyset(id_column).rows(session, stmt, cursor, limit, lambda row: row[0])
