"""Two app instances (uvicorn subprocesses) on one PostgreSQL: LISTEN/NOTIFY fans events out.

The outbox poll is set to a minute, so an event that shows up within seconds on the instance that
did not write it came through ``pg_notify`` and the other instance's LISTEN connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import auth
from tests.factories import Seed

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def instances(database_url: str, log_dir: Path, count: int = 2) -> Iterator[list[str]]:
    """Start ``count`` uvicorn processes on free loopback ports; yields their base URLs."""
    env = {
        **os.environ,
        "JUISTEPLEK_DATABASE_URL": database_url,
        "JUISTEPLEK_ENV": "test",
        "JUISTEPLEK_OUTBOX_POLL_SECONDS": "60",
        "JUISTEPLEK_API_KEY_CACHE_SECONDS": "0",
        "JUISTEPLEK_ACCESS_LOG": "false",
        "JUISTEPLEK_LOG_LEVEL": "WARNING",
    }
    procs: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    with contextlib.ExitStack() as logs:
        try:
            for n in range(count):
                port = _free_port()
                log_path = log_dir / f"instance-{n}.log"
                log = logs.enter_context(log_path.open("wb"))
                command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
                command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
                proc = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
                procs.append((proc, f"http://127.0.0.1:{port}", log_path))
            deadline = time.monotonic() + 60
            for proc, base, log_path in procs:
                while True:
                    if proc.poll() is not None:
                        raise AssertionError(f"instance exited: {log_path.read_text()[-2000:]}")
                    with contextlib.suppress(httpx.TransportError):
                        if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                            break
                    assert time.monotonic() < deadline, "instances did not start in 60 s"
                    time.sleep(0.05)
            yield [base for _, base, _ in procs]
        finally:
            for proc, _, _ in procs:
                proc.terminate()
            for proc, _, _ in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


async def _frames(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    frame: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            frame["comment"] = line[1:].strip()
        else:
            key, _, value = line.partition(":")
            frame[key] = value.removeprefix(" ")


async def _next_event(frames: AsyncIterator[dict[str, str]]) -> dict[str, str]:
    async with asyncio.timeout(10):
        while True:
            frame = await anext(frames)
            if "event" in frame:
                return frame


async def test_a_write_on_one_instance_reaches_streams_on_both(
    database_url: str, seed: Seed, tmp_path: Path
) -> None:
    with instances(database_url, tmp_path) as (a, b):
        async with (
            httpx.AsyncClient(timeout=10) as c,
            c.stream("GET", f"{b}/v1/stream", headers=auth(seed.keys["triagist"])) as on_b,
            c.stream("GET", f"{a}/v1/stream", headers=auth(seed.keys["analyst"])) as on_a,
        ):
            assert on_b.status_code == on_a.status_code == 200
            frames_b, frames_a = _frames(on_b), _frames(on_a)
            assert (await anext(frames_b))["comment"] == "connected"
            assert (await anext(frames_a))["comment"] == "connected"

            started = time.monotonic()
            r = await c.put(
                f"{a}/v1/units/{seed.units['gouda-elv-high']}/capacity",
                json={"free": 1},
                headers=auth(seed.keys["admin"]),
            )
            assert r.status_code == 200, r.text
            from_b = await _next_event(frames_b)
            elapsed = time.monotonic() - started
            from_a = await _next_event(frames_a)
            assert from_b["event"] == from_a["event"] == "capacity.reported"
            assert from_b["id"] == from_a["id"]
            body = orjson.loads(from_b["data"])
            assert body["data"]["unit_id"] == str(seed.units["gouda-elv-high"])
            assert elapsed < 10  # far below the 60 s poll: it came by NOTIFY

            # and the other way round
            r = await c.put(
                f"{b}/v1/units/{seed.units['gouda-elv-high']}/capacity",
                json={"free": 0},
                headers=auth(seed.keys["admin"]),
            )
            assert r.status_code == 200, r.text
            again_a = await _next_event(frames_a)
            assert int(again_a["id"]) == int(from_a["id"]) + 1
            assert orjson.loads(again_a["data"])["data"]["free"] == 0
