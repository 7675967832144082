"""Test harness: every database test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``scripts/pg-cluster.sh`` (started here unless JUISTEPLEK_TEST_POSTGRES_URL
points at one, and only when the PostgreSQL backend is asked for). Each backend gets a database
built by the Alembic migrations, never by ``create_all``; every test starts from empty tables.

The migrations run once per backend and test run, into a template (a PostgreSQL template
database, an SQLite file); every test database is a copy of it (``CREATE DATABASE ... TEMPLATE``,
SQLite's backup API). The template's name carries a digest of the migration files, so a template
left on a server of one's own from an earlier schema is never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings
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

# No time limit per example: speed targets live in bench/, and on a shared or loaded machine a
# property test's example may take longer than hypothesis' default 200 ms without being wrong.
hypothesis_settings.register_profile("juisteplek", deadline=None)
hypothesis_settings.load_profile("juisteplek")

# The directory of the run's SQLite template and of the locks the workers build templates under.
TEMPLATES_ENV = "JUISTEPLEK_TEST_TEMPLATES"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and not os.environ.get(TEMPLATES_ENV):
        # One directory for the run's templates, shared by the xdist workers (they inherit it).
        templates = tempfile.mkdtemp(prefix="jp-test-templates-")
        os.environ[TEMPLATES_ENV] = templates
        config._juisteplek_templates = templates  # type: ignore[attr-defined]
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
    templates = getattr(config, "_juisteplek_templates", None)
    if templates is not None:
        shutil.rmtree(templates, ignore_errors=True)
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


def _migrations_digest() -> str:
    """A digest of the migration files: the template's name changes with the schema."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "app" / "migrations").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@contextlib.contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """A lock across the run's processes (xdist workers), held while a template is built."""
    directory = Path(os.environ.get(TEMPLATES_ENV) or tempfile.gettempdir())
    with (directory / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_template(admin_url: str) -> str:
    """The name of a PostgreSQL template database migrated to head, built on first use."""
    import asyncpg

    name = f"jp_template_{_migrations_digest()}"
    conn = await asyncpg.connect(_pg_dsn(admin_url))
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return name
        building = f"{name}_building"
        await conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{building}"')
        await asyncio.to_thread(migrate, admin_url.rsplit("/", 1)[0] + "/" + building)
        # Renamed when complete, so a half-built template (an interrupted run) is never cloned.
        await conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true')
        return name
    finally:
        await conn.close()


async def _create_pg_database(admin_url: str, name: str, template: str | None = None) -> str:
    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _sqlite_template() -> Path:
    """An SQLite file migrated to head, built on first use in the run's template directory."""
    directory = Path(os.environ.get(TEMPLATES_ENV) or tempfile.gettempdir())
    path = directory / f"jp_template_{_migrations_digest()}.db"
    if not path.exists():
        building = path.with_suffix(".building")
        for leftover in directory.glob(f"{building.name}*"):
            leftover.unlink()
        migrate(f"sqlite+aiosqlite:///{building}")
        os.replace(building, path)  # complete, or not there at all
    return path


def _copy_sqlite(template: Path, path: Path) -> None:
    """A consistent copy of ``template`` (SQLite's backup API: no torn pages, no WAL left out)."""
    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink()
    source = sqlite3.connect(template)
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


async def fresh_database_url(backend: str, tmp_dir: Path, name: str) -> str:
    """An empty database of ``backend``, migrated to head (a copy of the run's template)."""
    if backend == "sqlite":
        with _exclusive("sqlite"):
            sqlite_template = await asyncio.to_thread(_sqlite_template)
        path = tmp_dir / f"{name}.db"
        await asyncio.to_thread(_copy_sqlite, sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    admin_url = os.environ["JUISTEPLEK_TEST_POSTGRES_URL"]
    with _exclusive("postgresql"):
        template = await _pg_template(admin_url)
    return await _create_pg_database(admin_url, name, template)


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
            # The access-log tables refuse DELETE by trigger; a superuser's replica session (the
            # test cluster's) skips triggers, foreign-key checks included. DELETE, not TRUNCATE:
            # on a few rows it is several times faster than TRUNCATE's new files for 40 tables.
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            deletes = " ".join(f"DELETE FROM {table};" for table in tables)
            await conn.execute(text(f"DO $$ BEGIN {deletes} END $$"))
            # What TRUNCATE ... RESTART IDENTITY did: the tables' own sequences start again.
            await conn.execute(
                text(
                    "SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s"
                    " JOIN pg_depend d ON d.objid = s.seqrelid AND d.deptype IN ('a', 'i')"
                    " JOIN pg_class t ON t.oid = d.refobjid"
                    " WHERE t.relname = ANY(:tables)"
                    " AND t.relnamespace = current_schema()::regnamespace"
                ),
                {"tables": tables},
            )
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


# The files that take longest (measured with `pytest --durations`, both backends), longest first.
# Parallel workers (`-n 4 --dist loadfile --no-loadscope-reorder`) take files in collection order,
# so these start first and the run does not end on one worker finishing a long file alone.
# Every other file follows, those with more tests first.
HEAVIEST_FILES = (
    "tests/browser/test_kpis.py",
    "tests/contract/test_fuzz.py",
    "tests/contract/test_fuzz_edges.py",
    "tests/e2e/test_federation.py",
    "tests/web/test_admin_console.py",
    "tests/browser/test_board_and_placements.py",
    "tests/service/test_kpi_simulate.py",
    "tests/service/test_kpi_sql_properties.py",
    "tests/browser/test_admin.py",
    "tests/api/test_fhir.py",
    "tests/service/test_kpi_referral_fields_properties.py",
    "tests/browser/test_session.py",
    "tests/contract/test_fuzz_placements.py",
    "tests/service/test_kpi_simulate_new_kpis.py",
    "tests/e2e/test_packaging.py",
    "tests/e2e/test_pg_restart.py",
    "tests/e2e/test_durability.py",
    "tests/e2e/test_readme.py",
    "tests/e2e/test_multi_instance.py",
    "tests/browser/test_pages.py",
)


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(trylast=True)  # after pytest has grouped the items by backend
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres_only" in item.keywords and getattr(item, "callspec", None) is not None:
            params: dict[str, Any] = item.callspec.params  # type: ignore[attr-defined]
            if params.get("backend") == "sqlite":
                item.add_marker(pytest.mark.skip(reason="PostgreSQL-only behaviour"))
    if not hasattr(config, "workerinput"):
        return  # one process: pytest's order, one backend after the other
    # An xdist worker: the controller hands out whole files in this order (the same on every
    # worker). The sort is stable: inside a file the order stays pytest's.
    rank = {path: i for i, path in enumerate(HEAVIEST_FILES)}
    tests_in = Counter(_file_of(item) for item in items)
    items.sort(key=lambda item: (rank.get(_file_of(item), len(rank)), -tests_in[_file_of(item)]))
