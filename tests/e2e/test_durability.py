"""Kill -9 under write load loses no acknowledged write.

Starts the real server (``uvicorn --factory app.main:create_app``) on a loopback port, runs
concurrent clients creating placements and holding places, SIGKILLs the server mid-load,
restarts it and checks that every 2xx-acknowledged write is there and that the transfer log,
the placement states, the ``held`` counts and the access-log chain all agree.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Integer, Uuid, bindparam, text

from app.audit import service as audit_service
from app.config import Settings
from app.db import Database, UTCDateTime
from app.placement import service as placement_service
from app.placement.states import replay
from tests.conftest import ROOT, auth, fresh_database_url
from tests.factories import seed_region

pytestmark = pytest.mark.slow

CLIENTS = 12
LOAD_SECONDS = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JUISTEPLEK_DATABASE_URL": url,
        "JUISTEPLEK_ENV": "test",
        "JUISTEPLEK_ACCESS_LOG": "false",
        "JUISTEPLEK_DB_POOL_SIZE": "16",
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient(base_url=base) as c:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "server exited during start-up"
            try:
                if (await c.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not start")


async def test_sigkill_under_write_load_loses_no_acknowledged_write(
    backend: str, tmp_path: Path
) -> None:
    url = await fresh_database_url(backend, tmp_path, f"jp_durability_{uuid.uuid4().hex[:6]}")
    settings = Settings(env="test", database_url=url)
    db = Database.from_url(url)
    try:
        seed = await seed_region(db, settings)
    finally:
        await db.dispose()
    # The ELV high-complex units: they fit placement_body()'s patient.
    units = [str(u) for name, u in seed.units.items() if "elv-high" in name]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = _start(url, port, log)
    acked_placements: set[str] = set()
    acked_holds: dict[str, str] = {}  # placement -> hold
    try:
        await _wait_ready(base, server)
        stop = asyncio.Event()

        async def worker(n: int) -> None:
            rng = random.Random(n)
            from tests.factories import placement_body

            async with httpx.AsyncClient(base_url=base, timeout=5) as c:
                while not stop.is_set():
                    try:
                        r = await c.post(
                            "/v1/placements",
                            json=placement_body(),
                            headers=auth(seed.keys["referrer"]),
                        )
                        if r.status_code != 201:
                            continue
                        pid = r.json()["id"]
                        acked_placements.add(pid)
                        r = await c.post(
                            f"/v1/placements/{pid}/holds",
                            json={"unit_id": rng.choice(units)},
                            headers=auth(seed.keys["triagist"]),
                        )
                        if r.status_code == 201:
                            acked_holds[pid] = r.json()["id"]
                        else:
                            assert r.status_code == 409, r.text
                    except httpx.TransportError:
                        return  # the server is gone

        tasks = [asyncio.create_task(worker(n)) for n in range(CLIENTS)]
        await asyncio.sleep(LOAD_SECONDS)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        stop.set()
        await asyncio.gather(*tasks)
        assert len(acked_placements) >= 10, "too little load to prove anything"

        server = _start(url, port, log)
        await _wait_ready(base, server)
        admin = auth(seed.keys["admin"])
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            for pid in acked_placements:
                r = await c.get(f"/v1/placements/{pid}", headers=admin)
                assert r.status_code == 200, f"acknowledged placement {pid} lost"
                if pid in acked_holds:
                    got = r.json()
                    assert got["state"] == "offered"
                    assert got["current_hold"]["id"] == acked_holds[pid], "acknowledged hold lost"
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)

    # The transfer log replays to every placement's state, numbered without gaps.
    db = Database.from_url(url)
    try:
        async with db.sessionmaker() as session:
            states = {
                row[0]: row[1]
                for row in await session.execute(text("SELECT id, state FROM placement"))
            }
            log_rows = (
                await session.execute(
                    text(
                        "SELECT placement_id, seq, from_state, to_state FROM transfer_event"
                        " ORDER BY placement_id, seq"
                    )
                )
            ).all()
            by_placement: dict[object, list[tuple[int, str | None, str]]] = {}
            for row in log_rows:
                by_placement.setdefault(row[0], []).append((row[1], row[2], row[3]))
            assert set(by_placement) == set(states)
            for placement, events in by_placement.items():
                assert [e[0] for e in events] == list(range(1, len(events) + 1))
                assert replay([(e[1], e[2]) for e in events]) == states[placement]
            for unit in seed.units.values():
                row = (
                    await session.execute(
                        text("SELECT held, reported_at FROM unit_capacity WHERE unit_id = :u")
                        .bindparams(bindparam("u", type_=Uuid()))
                        .columns(held=Integer, reported_at=UTCDateTime()),
                        {"u": unit},
                    )
                ).one()
                held, stamp = row.held, row.reported_at
                assert stamp is not None
                assert held == await placement_service.recount_held(session, unit, stamp)
        assert (await audit_service.verify(db)).ok
    finally:
        await db.dispose()
