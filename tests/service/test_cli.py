"""The command line names the database it uses, finds the demo's, and fails in one clear line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import cli
from app.config import get_settings

ENV_KEYS = ("JUISTEPLEK_DATABASE_URL", "JUISTEPLEK_DEMO_REPORT_MINUTES")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory and no database configured (as on a fresh clone)."""
    monkeypatch.chdir(tmp_path)
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _invoke(*args: str) -> Result:
    get_settings.cache_clear()
    return CliRunner().invoke(cli, list(args))


def _error_lines(result: Result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def test_a_command_without_a_database_says_so_and_creates_none(workdir: Path) -> None:
    result = _invoke("audit", "verify")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "database: sqlite+aiosqlite:///./juisteplek.db (the default" in result.output
    [error] = _error_lines(result)
    assert "there is no database at" in error
    assert "juisteplek demo" in error
    assert list(workdir.iterdir()) == [], "no empty database file left behind"


def test_serve_without_a_database_refuses_and_creates_none(workdir: Path) -> None:
    result = _invoke("serve", "--port", "1")
    assert result.exit_code == 1
    [error] = _error_lines(result)
    assert "juisteplek migrate" in error
    assert list(workdir.iterdir()) == []


def test_commands_find_the_database_the_demo_made(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = _invoke("demo", "--no-serve")
    assert demo.exit_code == 0, demo.output
    assert (workdir / "juisteplek-demo.db").exists()
    assert os.environ["JUISTEPLEK_DEMO_REPORT_MINUTES"] == "5.0"
    assert get_settings().demo_report_minutes == 5.0, "the demo runs with its providers reporting"
    for key in ENV_KEYS:  # a new shell: nothing configured
        monkeypatch.delenv(key)

    verify = _invoke("audit", "verify")
    assert verify.exit_code == 0, verify.output
    assert "juisteplek-demo.db (the demo's" in verify.output
    assert "audit log intact" in verify.output
    listing = _invoke("triage", "list")
    assert listing.exit_code == 0, listing.output
    assert not (workdir / "juisteplek.db").exists()


def test_a_database_without_tables_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = workdir / "empty.db"
    empty.touch()
    monkeypatch.setenv("JUISTEPLEK_DATABASE_URL", f"sqlite+aiosqlite:///{empty}")
    result = _invoke("triage", "list")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    [error] = _error_lines(result)
    assert "has no JuistePlek schema" in error
    assert "juisteplek migrate" in error
    assert "(JUISTEPLEK_DATABASE_URL)" in result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_database_is_one_line(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+asyncpg://juisteplek:secret@127.0.0.1:{_closed_port()}/juisteplek"
    monkeypatch.setenv("JUISTEPLEK_DATABASE_URL", url)
    result = _invoke("create-key", "--name", "ops", "--role", "admin")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    [error] = _error_lines(result)
    assert error.startswith("error: cannot reach the database postgresql+asyncpg://juisteplek:***@")
    assert "secret" not in result.output
    migrate = _invoke("migrate")
    assert migrate.exit_code == 1
    assert len(_error_lines(migrate)) == 1


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env["JUISTEPLEK_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'x.db'}"
    for args in (["audit", "verify"], ["migrate"]):
        done = subprocess.run(
            [str(Path(sys.executable).parent / "juisteplek"), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert list(tmp_path.iterdir()) == []
