"""The migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from app.db import Database
from app.models import Base
from app.ops.service import migration_heads


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_agree(session_db: Database) -> None:
    async with session_db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_database_is_at_the_head(session_db: Database) -> None:
    from sqlalchemy import text

    async with session_db.engine.connect() as conn:
        result = await conn.execute(text("SELECT version_num FROM alembic_version"))
        assert frozenset(result.scalars()) == migration_heads()
