"""Test harness: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``scripts/pg-cluster.sh`` (started here unless JUISTEPLEK_TEST_POSTGRES_URL
points at one). Each backend gets a database built by the Alembic migrations, never by
``create_all``; every test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.models import Base
from tests.factories import Seed, seed_region
from tests.response_check import ResponseCheck

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = [
    b for b in os.environ.get("JUISTEPLEK_TEST_BACKENDS", "sqlite,postgresql").split(",") if b
]


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    if "postgresql" not in BACKENDS or os.environ.get("JUISTEPLEK_TEST_POSTGRES_URL"):
        return
    if hasattr(config, "workerinput"):
        return  # the xdist controller started it and passed the URL in the environment
    # A cluster of this run's own (directory and port), so runs side by side never share one.
    pgroot = os.environ.get("PGROOT") or tempfile.mkdtemp(prefix="jppg-test-")
    url = (
        subprocess.run(
            [str(ROOT / "scripts" / "pg-cluster.sh"), "start"],
            check=True,
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "PGROOT": pgroot,
                "PGPORT": os.environ.get("PGPORT") or str(_free_port()),
                "PGEXTRA": "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            },
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    os.environ["JUISTEPLEK_TEST_POSTGRES_URL"] = url
    config._juisteplek_pgroot = pgroot  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    pgroot = getattr(config, "_juisteplek_pgroot", None)
    if pgroot is not None:
        subprocess.run(
            [str(ROOT / "scripts" / "pg-cluster.sh"), "stop"],
            check=False,
            env={**os.environ, "PGROOT": pgroot},
        )
        if not os.environ.get("PGROOT"):
            shutil.rmtree(pgroot, ignore_errors=True)


def migrate(url: str) -> None:
    from app.cli import run_migrations

    run_migrations(url)


async def _create_pg_database(admin_url: str, name: str) -> str:
    import asyncpg

    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def fresh_database_url(backend: str, tmp_dir: Path, name: str) -> str:
    """An empty database of ``backend``, migrated to head."""
    if backend == "sqlite":
        path = tmp_dir / f"{name}.db"
        path.unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = await _create_pg_database(os.environ["JUISTEPLEK_TEST_POSTGRES_URL"], name)
    await asyncio.to_thread(migrate, url)
    return url


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return await fresh_database_url(
        backend, tmp_path_factory.mktemp(backend), f"jp_test_{_worker()}"
    )


@pytest.fixture(scope="session")
async def session_db(database_url: str) -> AsyncIterator[Database]:
    db = Database.from_url(database_url, pool_size=30, max_overflow=20)
    yield db
    await db.dispose()


async def truncate_all(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            # The access-log tables refuse TRUNCATE by trigger; a superuser's replica session
            # (the test cluster's) skips triggers.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
async def db(session_db: Database) -> Database:
    await truncate_all(session_db)
    return session_db


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        env="test", database_url=database_url, access_log=False, api_key_cache_seconds=0
    )


@pytest.fixture
async def app(db: Database, settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=db)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Every JSON answer is validated against its operation's OpenAPI response schema.
    transport = httpx.ASGITransport(app=ResponseCheck(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def seed(db: Database, settings: Settings) -> Seed:
    """A small region: three subregions, a few organisations, units and one key per role."""
    return await seed_region(db, settings)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_only" in item.keywords and getattr(item, "callspec", None) is not None:
            params: dict[str, Any] = item.callspec.params  # type: ignore[attr-defined]
            if params.get("backend") == "sqlite":
                item.add_marker(pytest.mark.skip(reason="PostgreSQL-only behaviour"))
