"""Readiness (database reachable, schema at the migrations' head) and metrics refresh."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.capacity import service as capacity_service
from app.db import Database
from app.ops.metrics import OLDEST_REPORT_AGE

# The Alembic revisions ship inside the package, so an installed wheel migrates from any
# working directory (alembic.ini at the checkout's root is for `alembic revision` only).
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@lru_cache
def migration_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def readiness(db: Database) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        async with db.read() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            versions: frozenset[str] = frozenset(rows.scalars())
    except Exception as exc:
        checks["database"] = f"unreachable or not migrated: {type(exc).__name__}"
        return False, checks
    checks["database"] = "ok"
    heads = migration_heads()
    at_head = versions == heads
    checks["migrations"] = (
        "ok" if at_head else f"at {', '.join(sorted(versions))}; head {', '.join(sorted(heads))}"
    )
    return at_head, checks


async def refresh_metrics(db: Database, now: datetime) -> None:
    for care_type, age in (await capacity_service.report_ages(db, now)).items():
        OLDEST_REPORT_AGE.labels(care_type).set(age)
