"""Migration 0009 keeps a log written before chains existed: its rows become the chain
``legacy`` (positions in id order, SHA-256 hashes unchanged), which verifies, and new rows chain
per object next to it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import text

from app.audit import service as audit_service
from app.audit.chain import GENESIS, HASHED_FIELDS, row_hash
from app.db import Database
from app.enums import Role
from app.ops.service import alembic_config
from app.principal import Principal
from tests.conftest import fresh_database_url


def _legacy_rows(n: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for i in range(n):
        row: dict[str, Any] = dict.fromkeys(HASHED_FIELDS)
        row |= {
            "event_code": "placement.read",
            "action": "R",
            "occurred_at": datetime(2026, 11, 30, 9, 0, i, tzinfo=UTC),
            "outcome": "success",
            "user_display": "old key",
            "role": "triagist",
            "source": "juisteplek-api",
            "object_type": "placement",
            "object_id": str(uuid.uuid4()),
            "purpose": "treatment",
            "detail": "{}",
        }
        row |= {"prev_hash": prev, "hash": row_hash(prev, row)}
        prev = row["hash"]
        rows.append(row)
    return rows


async def test_rows_from_before_the_chains_verify_as_the_legacy_chain(
    backend: str, tmp_path: Path
) -> None:
    url = await fresh_database_url(backend, tmp_path, f"jp_legacy_{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0007")
    db = Database.from_url(url, pool_size=2, max_overflow=0)
    try:
        columns = [*HASHED_FIELDS, "prev_hash", "hash"]
        insert = text(
            f"INSERT INTO audit_log ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})"
        )
        async with db.engine.begin() as conn:
            for row in _legacy_rows(4):
                await conn.execute(insert, row)
        await db.dispose()
        await asyncio.to_thread(command.upgrade, alembic_config(url), "heads")
        db = Database.from_url(url, pool_size=2, max_overflow=0)
        result = await audit_service.verify(db)
        assert result.ok, result
        assert (result.rows, result.chains) == (4, 1)
        principal = Principal(
            key_id=uuid.uuid4(),
            name="new key",
            roles=frozenset({Role.ADMIN}),
            organisation_id=None,
            region_id=None,
        )
        async with db.sessionmaker() as session:
            entry = audit_service.AuditEntry(event_code="t", action="R", object_id="x")
            await audit_service.append(session, audit_service.AuditContext(principal), [entry])
            await session.commit()
        assert [c.heads for c in await audit_service.checkpoint_all(db)] == [2]
        result = await audit_service.verify(db)
        assert result.ok, result
        assert (result.rows, result.chains, result.unsigned_rows) == (5, 2, 0)
        async with db.engine.connect() as conn:
            legacy = await conn.execute(
                text("SELECT chain_seq FROM audit_log WHERE chain = 'legacy' ORDER BY id")
            )
            assert [int(r[0]) for r in legacy] == [1, 2, 3, 4]
    finally:
        await db.dispose()
