"""The installed package migrates on its own, and replicas may migrate at the same moment."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.ops.service import MIGRATIONS, migration_heads
from app.realtime.listener import asyncpg_dsn
from tests.conftest import BACKENDS, ROOT, _create_pg_database

pytestmark = pytest.mark.slow

JUISTEPLEK = str(Path(sys.executable).parent / "juisteplek")


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUISTEPLEK_")}
    return {**env, "JUISTEPLEK_DATABASE_URL": url, **extra}


def test_the_wheel_ships_the_migrations_and_migrates_from_anywhere(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("juisteplek-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    revisions = sorted(p.name for p in (MIGRATIONS / "versions").glob("2*.py"))
    assert len(revisions) >= 7
    for name in ("env.py", "script.py.mako", *(f"versions/{r}" for r in revisions)):
        assert f"app/migrations/{name}" in names, name
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE not shipped"

    # Run `juisteplek migrate` from the unpacked wheel, in a directory with no checkout around.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = elsewhere / "fresh.db"
    code = (
        "import sys, app; from app.cli import main; print(app.__file__, file=sys.stderr); "
        "sys.argv = ['juisteplek', 'migrate']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=_env(f"sqlite+aiosqlite:///{database}", PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(str(site / "app")), "not the installed copy"
    assert "database at head" in done.stdout
    assert database.stat().st_size > 0


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="needs PostgreSQL")
async def test_concurrent_migrations_of_an_empty_postgresql_database_all_succeed() -> None:
    url = await _create_pg_database(
        os.environ["JUISTEPLEK_TEST_POSTGRES_URL"], f"jp_replicas_{uuid.uuid4().hex[:6]}"
    )
    runs = [
        await asyncio.create_subprocess_exec(
            JUISTEPLEK,
            "migrate",
            env=_env(url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = await asyncio.gather(*(run.communicate() for run in runs))
    for run, (out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, err.decode()
        assert b"database at head" in out
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        versions = {
            r["version_num"] for r in await conn.fetch("SELECT version_num FROM alembic_version")
        }
    finally:
        await conn.close()
    assert versions == set(migration_heads())


def test_the_image_execs_the_server_which_migrates_first(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    [cmd] = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert cmd.startswith('CMD ["juisteplek", "serve", "--migrate"'), "exec form: no shell as PID 1"
    assert "/readyz" in dockerfile.split("HEALTHCHECK", 1)[1].split("\nCMD", 1)[0]
    assert "sqlite+aiosqlite:////var/lib/juisteplek/" in dockerfile
    assert "chown juisteplek:juisteplek /var/lib/juisteplek" in dockerfile
    assert "COPY migrations" not in dockerfile, "the migrations come with the package"

    port = _free_port()
    database = tmp_path / "image.db"
    server = subprocess.Popen(
        [JUISTEPLEK, "serve", "--migrate", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=_env(f"sqlite+aiosqlite:///{database}", JUISTEPLEK_ENV="test"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the server exited"
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.2)
        assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
