"""The driver path of the write hot path (``app.db.driver_args`` / ``driver_connection``).

Statements sent straight to asyncpg must be the text SQLAlchemy sends, run inside the session's
transaction (committed and rolled back with it), and never be used where SQLAlchemy would add a
value of its own or on SQLite.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text

from app.db import Database, driver_args, driver_connection
from app.errors import database_unavailable
from app.realtime import outbox

_ROW = {
    "event_id": None,
    "topic": "placement",
    "event_type": "placement.test",
    "payload": "{}",
    "region_id": None,
    "organisation_ids": "",
    "created_at": datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
    "webhooks_fanned_out_at": None,
}


async def _count(db: Database, event_id: uuid.UUID) -> int:
    async with db.engine.connect() as conn:
        sql = text("SELECT count(*) FROM outbox_event WHERE event_id = :e")
        value = (await conn.execute(sql, {"e": event_id})).scalar()
    return int(value or 0)


async def test_driver_args_is_the_dialect_text_or_none(db: Database) -> None:
    async with db.sessionmaker() as session:
        conn = await session.connection()
        row = _ROW | {"event_id": uuid.uuid4()}
        args = driver_args(conn, outbox._INSERT, row)
        if db.dialect == "sqlite":
            assert args is None
            return
        assert args is not None
        expected = outbox._INSERT.compile(dialect=conn.dialect, column_keys=list(row)).string
        assert args[0] == expected
        assert "$1" in args[0]
        assert sorted(args[1:], key=repr) == sorted(row.values(), key=repr)
        # created_at left out: SQLAlchemy would fill in its default, so not for the driver
        partial = {k: v for k, v in row.items() if k != "created_at"}
        assert driver_args(conn, outbox._INSERT, partial) is None


async def test_driver_statements_commit_and_roll_back_with_the_session(db: Database) -> None:
    if db.dialect == "sqlite":
        return  # the driver path is PostgreSQL's only
    kept, dropped = uuid.uuid4(), uuid.uuid4()
    for event_id, commit in ((kept, True), (dropped, False)):
        async with db.sessionmaker() as session:
            conn = await session.connection()
            # the first statement of the transaction goes to the driver: BEGIN must come first
            driver = await driver_connection(conn)
            args = driver_args(conn, outbox._INSERT, _ROW | {"event_id": event_id})
            assert args is not None
            assert await driver.fetchval(*args) is not None
            assert conn.in_transaction()
            if commit:
                await session.commit()
            else:
                await session.rollback()
    assert await _count(db, kept) == 1
    assert await _count(db, dropped) == 0


async def test_a_connection_failure_on_the_driver_discards_the_connection(db: Database) -> None:
    """SQLAlchemy does not see a call made straight on the driver fail, so the driver wrapper
    invalidates the connection itself: a connection-level failure (here the client refusing a
    call before it reaches the server) never goes back into the pool; a statement the server
    refuses leaves a sound connection, which is kept."""
    if db.dialect == "sqlite":
        return  # the driver path is PostgreSQL's only
    async with db.sessionmaker() as session:
        conn = await session.connection()
        driver = await driver_connection(conn)
        with pytest.raises(asyncpg.PostgresError):
            await driver.fetchval("SELECT 1 / 0")
        assert not conn.invalidated
        await session.rollback()

    async with db.sessionmaker() as session:
        conn = await session.connection()
        driver = await driver_connection(conn)
        with pytest.raises(asyncpg.InterfaceError):
            await driver.fetchval("SELECT $1::int")  # one argument owed, none given
        assert conn.invalidated
        await session.rollback()
    # The pool hands out a working connection afterwards.
    async with db.sessionmaker() as session:
        assert (await session.execute(text("SELECT 2"))).scalar() == 2


def test_a_connection_left_mid_operation_reads_as_the_database_unavailable() -> None:
    stuck = asyncpg.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    )
    assert database_unavailable(stuck)
    assert not database_unavailable(ValueError("a fault in the code"))
