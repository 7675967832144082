"""Database plumbing: declarative base, UTC timestamps, engines for SQLite and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` so an acknowledged commit survives a crash, and
every write transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of
failing on a lock upgrade (SQLAlchemy's documented aiosqlite transaction recipe).

On PostgreSQL a pooled connection the server has closed (a restart, a failover) is replaced when
it is checked out, so the first request after the database is back does not fail on it; a request
whose connection breaks mid-way gets a 503 with ``Retry-After`` (``app.errors``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out on both backends (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _install_sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (the driver's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        readonly = connection.get_execution_options().get("juisteplek_readonly", False)
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _install_closed_connection_check(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling without a round trip per checkout (``pool_pre_ping``
    costs one ``SELECT 1`` per request): the driver already knows when the server closed the
    socket, and the pool replaces such a connection (up to three attempts) before handing it out.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver_connection = getattr(dbapi_connection, "driver_connection", None)
        is_closed = getattr(driver_connection, "is_closed", None)
        if is_closed is not None and is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def create_engine(url: str, *, pool_size: int = 20, max_overflow: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _install_sqlite_pragmas(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        # Waiting for a connection is bounded: while the database is down, requests answer 503
        # within seconds instead of piling up.
        pool_timeout=10,
        connect_args={
            "server_settings": {"application_name": "juisteplek"},
            "timeout": 5,  # seconds to establish a connection
        },
    )
    _install_closed_connection_check(engine)
    return engine


@dataclass(eq=False)  # identity: one instance per app, usable as a cache key
class Database:
    """Engines and session factory of one app instance."""

    engine: AsyncEngine
    read_engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 20, max_overflow: int = 10) -> Database:
        engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        if engine.dialect.name == "sqlite":
            read_engine = engine.execution_options(juisteplek_readonly=True)
        else:
            # Reads need no transaction; AUTOCOMMIT saves a BEGIN/COMMIT round trip per search.
            read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False, autoflush=False),
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


# --- the driver path for hot statements on PostgreSQL --------------------------------------------
# SQLAlchemy's work per execute (parameter and result processing, cursor adaptation, the
# greenlet hop) costs about twice the asyncpg call itself: 0.13 against 0.04 ms of CPU for one of
# the hold's statements (bench/results.md, "Holds"). The hot write paths send their statements
# straight to the driver, with the text SQLAlchemy would send, inside the same transaction.

_DRIVER_SQL: dict[tuple[int, tuple[str, ...]], tuple[object, str, tuple[str, ...]] | None] = {}


def driver_args(conn: AsyncConnection, stmt: Any, params: dict[str, Any]) -> list[Any] | None:
    """``[sql, value of $1, value of $2, ...]`` to run ``stmt`` with ``params`` on the asyncpg
    driver: the text SQLAlchemy's asyncpg dialect sends (same casts), compiled once per statement
    and set of keys. None on SQLite, and for a statement that needs more than the values given
    (a Python-side default, an expanding list): run those through SQLAlchemy.

    The values go to asyncpg as they are: UUIDs, UTC-aware datetimes, numbers and text, which it
    takes as the typed columns' bind processing would pass them.
    """
    if conn.dialect.name != "postgresql":
        return None
    key = (id(stmt), tuple(params))
    if key not in _DRIVER_SQL:
        try:
            compiled = stmt.compile(dialect=conn.dialect, column_keys=list(params))
        except SQLAlchemyError:
            compiled = None
        names = () if compiled is None else tuple(compiled.positiontup or ())
        usable = (
            compiled is not None
            and all(name in params for name in names)
            and "POSTCOMPILE" not in compiled.string
        )
        # ``stmt`` is kept with its text so its id is not reused while the entry exists.
        _DRIVER_SQL[key] = (stmt, compiled.string, names) if usable and compiled else None
    hit = _DRIVER_SQL[key]
    if hit is None:
        return None
    return [hit[1], *(params[name] for name in hit[2])]


class DriverConnection:
    """The asyncpg connection under a SQLAlchemy connection, for statements sent to it directly.

    SQLAlchemy discards a pooled connection when one of its own calls fails at the connection
    level; a call made straight on the driver bypasses that. So any failure here other than the
    server refusing the statement (a ``PostgresError``: the connection is still sound) — a lost
    socket, a timeout, a cancelled request that left the protocol mid-operation — invalidates
    the SQLAlchemy connection, and the pool never hands that connection out again.
    """

    __slots__ = ("_conn", "_driver")

    def __init__(self, conn: AsyncConnection, driver: Any) -> None:
        self._conn = conn
        self._driver = driver

    async def _run(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._driver, method)(*args)
        except BaseException as exc:
            await _invalidate_unless_statement_error(self._conn, exc)
            raise

    async def execute(self, *args: Any) -> Any:
        return await self._run("execute", *args)

    async def fetch(self, *args: Any) -> Any:
        return await self._run("fetch", *args)

    async def fetchrow(self, *args: Any) -> Any:
        return await self._run("fetchrow", *args)

    async def fetchval(self, *args: Any) -> Any:
        return await self._run("fetchval", *args)


async def _invalidate_unless_statement_error(conn: AsyncConnection, exc: BaseException) -> None:
    import asyncpg

    if isinstance(exc, asyncpg.PostgresError):
        return
    with contextlib.suppress(Exception):
        await conn.invalidate()


async def driver_connection(conn: AsyncConnection) -> DriverConnection:
    """The asyncpg connection under ``conn``, in ``conn``'s transaction: SQLAlchemy's adapter
    sends BEGIN lazily, before its first statement, so it is sent here when no statement went
    through SQLAlchemy yet (an AUTOCOMMIT connection sends none). SQLAlchemy then commits or
    rolls the transaction back as usual."""
    raw = await conn.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    if adapter._transaction is None:
        try:
            await adapter._start_transaction()
        except BaseException as exc:
            await _invalidate_unless_statement_error(conn, exc)
            raise
    return DriverConnection(conn, raw.driver_connection)
