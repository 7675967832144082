"""Alembic environment: async engines, batch mode for SQLite, the app's metadata.

On PostgreSQL the upgrade runs under a transaction-level advisory lock, so replicas that start
together and each run ``juisteplek migrate`` take turns: the first one migrates, the others then
find the schema at the head and do nothing.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.config import get_settings
from app.db import create_engine
from app.models import Base

config = context.config
target_metadata = Base.metadata

# Any fixed 64-bit number, the same for every instance: "juisteplek migrate" in ASCII, truncated.
MIGRATION_LOCK_ID = 0x6A70_6D69_6772_6174


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until the COMMIT below, before Alembic reads the current version.
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url(), pool_size=1, max_overflow=0)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(_run_async())
