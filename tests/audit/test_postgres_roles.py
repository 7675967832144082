"""The least-privilege PostgreSQL roles of docs/audit.md, run verbatim in the test cluster: the
app role does its normal writes but cannot truncate, update, delete, re-trigger or drop the log."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app.audit import service as audit_service
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.conftest import auth, migrate
from tests.factories import GRZ, placement_body, seed_region

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def _sql_blocks() -> list[str]:
    section = DOC.read_text("utf-8").split("## PostgreSQL roles", 1)[1]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def _statements(block: str, names: dict[str, str]) -> list[str]:
    for old, new in names.items():
        block = re.sub(rf"\b{old}\b", new, block)
    return [s.strip() for s in block.split(";") if s.strip()]


def _dsn(url: str, user: str, database: str) -> str:
    base = url.replace("postgresql+asyncpg://", "postgresql://")
    rest = base.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql://{user}@{rest}/{database}"


async def test_app_role_writes_but_cannot_rewrite_the_log(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL roles")
    admin_url = os.environ["JUISTEPLEK_TEST_POSTGRES_URL"]
    tag = uuid.uuid4().hex[:8]
    names = {
        "juisteplek_owner": f"jp_owner_{tag}",
        "juisteplek_app": f"jp_app_{tag}",
        "juisteplek": f"jp_roles_{tag}",
    }
    setup, grants = _sql_blocks()
    admin = await asyncpg.connect(_dsn(admin_url, "postgres", "postgres"))
    try:
        for statement in _statements(setup, names):
            await admin.execute(statement)
    finally:
        await admin.close()
    owner_dsn = _dsn(admin_url, names["juisteplek_owner"], names["juisteplek"])
    app_dsn = _dsn(admin_url, names["juisteplek_app"], names["juisteplek"])
    await asyncio.to_thread(migrate, owner_dsn.replace("postgresql://", "postgresql+asyncpg://"))
    owner = await asyncpg.connect(owner_dsn)
    try:
        for statement in _statements(grants, names):
            await owner.execute(statement)
    finally:
        await owner.close()

    # The app's normal writes, as the app role: seed, refer, hold, accept, read; the log verifies.
    app_url = app_dsn.replace("postgresql://", "postgresql+asyncpg://")
    db = Database.from_url(app_url, pool_size=4, max_overflow=0)
    try:
        settings = Settings(env="test", database_url=app_url, access_log=False)
        seed = await seed_region(db, settings)
        app = create_app(settings, database=db)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            ) as client,
        ):
            r = await client.post(
                "/v1/placements",
                json=placement_body(**GRZ),
                headers=auth(seed.keys["referrer"]) | {"Idempotency-Key": "roles-1"},
            )
            assert r.status_code == 201, r.text
            pid = r.json()["id"]
            unit = {"unit_id": str(seed.units["leiden-grz"])}
            r = await client.post(
                f"/v1/placements/{pid}/holds", json=unit, headers=auth(seed.keys["triagist"])
            )
            assert r.status_code == 201, r.text
            r = await client.post(
                f"/v1/placements/{pid}/accept", headers=auth(seed.keys["provider"])
            )
            assert r.status_code == 200, r.text
            r = await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["referrer"]))
            assert r.status_code == 200, r.text
        assert await audit_service.checkpoint(db) is not None
        result = await audit_service.verify(db)
        assert result.ok, result
        assert result.rows >= 4

        refused = [
            "TRUNCATE audit_log",
            "UPDATE audit_log SET user_display = 'x'",
            "DELETE FROM audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TABLE audit_log",
            "CREATE TABLE evil (id int)",
            "UPDATE transfer_event SET reason = 'x'",
            "DELETE FROM transfer_event",
            "TRUNCATE transfer_event",
            "DELETE FROM audit_checkpoint",
            "UPDATE audit_checkpoint_head SET seq = 1",
            "DELETE FROM audit_chain_head",
            "SET session_replication_role = replica",
            "UPDATE alembic_version SET version_num = 'x'",
        ]
        for statement in refused:
            async with db.engine.connect() as conn:
                with pytest.raises(Exception, match=r"permission denied|must be owner") as info:
                    await conn.execute(text(statement))
                assert "append-only" not in str(info.value), statement  # privilege, not trigger
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar() == (
                result.rows
            )
    finally:
        await db.dispose()
