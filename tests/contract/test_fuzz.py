"""Schema-driven fuzzing (schemathesis) of the running service: no 5xx, no response off-schema.

The service runs as a real uvicorn process on loopback with the demo region loaded; the run is
seeded and bounded (about three minutes). Besides single requests it runs the stateful phase, which
chains operations through the links schemathesis infers from the schema (an id a POST returns,
used in the operations on that resource).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# positive_data_acceptance is left out on purpose: a schema-valid body may still break a business
# rule (an unknown region id, a reused Idempotency-Key), and those answers are correct 4xx.
CHECKS = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The demo on loopback: its base URL and one key per role."""
    database = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    out = subprocess.run(
        [str(BIN / "juisteplek"), "demo", "--database", str(database), "--no-serve"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    keys = dict(re.findall(r"^\s+(admin|referrer)\s+(jp_\S+)", out, re.MULTILINE))
    assert set(keys) == {"admin", "referrer"}, out
    port = free_port()
    env = {
        **os.environ,
        "JUISTEPLEK_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "JUISTEPLEK_ACCESS_LOG": "false",
        "JUISTEPLEK_LOG_LEVEL": "ERROR",
    }
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
        yield base, keys
    finally:
        server.terminate()
        server.wait(10)


def _schemathesis(base: str, key: str, cwd: Path, *options: str) -> None:
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
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-6000:]


def test_schemathesis_finds_no_server_error_or_schema_violation(
    demo_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, keys = demo_server
    _schemathesis(
        base,
        keys["admin"],
        tmp_path,
        "--max-examples",
        os.environ.get("JUISTEPLEK_FUZZ_EXAMPLES", "10"),
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-time",
        "120",
    )


def test_schemathesis_walks_placements_as_a_transfer_desk(
    demo_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """With the hospital's referrer key the documented request examples are valid, so the
    stateful phase chains real placements through holds, events, cancel and the other actions."""
    base, keys = demo_server
    _schemathesis(
        base,
        keys["referrer"],
        tmp_path,
        "--include-path-regex",
        "^/v1/placements",
        "--phases",
        "examples,stateful",
        "--max-time",
        "45",
    )
