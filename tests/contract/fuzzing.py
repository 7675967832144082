"""Fuzzing support: the live servers schemathesis runs against, and one seeded run of it.

The fuzz runs are split over three test files (``test_fuzz*.py``) so that parallel test workers
take one each: each run is long, and one file per worker keeps them side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.db import Database
from tests.conftest import (
    TEMPLATES_ENV,
    _copy_sqlite,
    _exclusive,
    _migrations_digest,
    _worker,
    fresh_database_url,
)
from tests.factories import seed_region

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOOKS = Path(__file__).with_name("fuzz_hooks.py")
# Schemathesis sends wrong keys on purpose; the per-address throttle would answer 429 for a minute.
SERVER_ENV = {
    "JUISTEPLEK_ACCESS_LOG": "false",
    "JUISTEPLEK_LOG_LEVEL": "ERROR",
    "JUISTEPLEK_AUTH_FAILURE_LIMIT": "0",
}

# positive_data_acceptance is left out on purpose: a schema-valid body may still break a business
# rule (an unknown region id, a reused Idempotency-Key), and those answers are correct 4xx.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _demo_database() -> tuple[Path, dict[str, str]]:
    """The demo region (``juisteplek demo --no-serve``) in the run's template directory, built
    once per run: the SQLite file and one key per role."""
    directory = Path(os.environ.get(TEMPLATES_ENV) or tempfile.gettempdir())
    database = directory / f"fuzz_demo_{_migrations_digest()}.db"
    keys_file = database.with_suffix(".keys.json")
    with _exclusive("fuzz-demo"):
        if not keys_file.exists():
            for leftover in directory.glob(f"{database.name}*"):
                leftover.unlink()
            out = subprocess.run(
                [str(BIN / "juisteplek"), "demo", "--database", str(database), "--no-serve"],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            ).stdout
            keys = dict(re.findall(r"^\s+(admin|referrer)\s+(jp_\S+)", out, re.MULTILINE))
            assert set(keys) == {"admin", "referrer"}, out
            keys_file.write_text(json.dumps(keys))
    return database, json.loads(keys_file.read_text())


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The demo on loopback: its base URL and one key per role. Each fuzz file fuzzes a copy of
    its own (the run writes to it); the demo is built once per test run."""
    template, keys = _demo_database()
    database = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    _copy_sqlite(template, database)
    with running_server(f"sqlite+aiosqlite:///{database}") as base:
        yield base, keys


@contextlib.contextmanager
def running_server(database_url: str) -> Iterator[str]:
    """uvicorn serving ``database_url`` on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, **SERVER_ENV, "JUISTEPLEK_DATABASE_URL": database_url}
    server = subprocess.Popen(
        [str(BIN / "uvicorn"), "--factory", "app.main:create_app", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def schemathesis_run(base: str, key: str, cwd: Path, *options: str) -> None:
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{base}/openapi.json",
            "-H",
            f"Authorization: Bearer {key}",
            *CHECKS,
            "--seed",
            "1",
            "--exclude-path-regex",
            "^/v1/stream$",
            *options,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:]


@pytest.fixture(scope="module")
async def edge_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[str, str]]:
    """A seeded region on ``backend`` (a database of its own) behind uvicorn: URL, admin key."""
    url = await fresh_database_url(
        backend, tmp_path_factory.mktemp(f"edges-{backend}"), f"jp_fuzz_edges_{_worker()}"
    )
    db = Database.from_url(url)
    try:
        seed = await seed_region(db, Settings(env="test", database_url=url))
    finally:
        await db.dispose()
    with running_server(url) as base:
        yield base, seed.keys["admin"]
