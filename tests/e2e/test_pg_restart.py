"""PostgreSQL restarts under write load: 503 + Retry-After while it is down, nothing else.

A PostgreSQL cluster of this module's own (``scripts/pg-cluster.sh``, default durability) so the
session's shared cluster is not disturbed. The real server (``uvicorn --factory``) takes a load of
capacity reports, placements and holds while the database is stopped and started three times.
Every answer is a 2xx, a 4xx the load expects, or a 503 problem document with ``Retry-After``;
``/readyz`` says 503 while the database is down and 200 again after it is back, without restarting
the app; every acknowledged write is in the database afterwards. The LISTEN/NOTIFY listener
reconnects on its own and asks for a catch-up.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.config import Settings
from app.db import Database
from app.realtime.listener import PgListener, asyncpg_dsn
from tests.conftest import BACKENDS, ROOT, _create_pg_database, auth, migrate
from tests.factories import placement_body, seed_region

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("postgresql" not in BACKENDS, reason="needs PostgreSQL"),
    pytest.mark.skipif(
        not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        reason="needs PostgreSQL's server binaries for a cluster of its own",
    ),
]

CLUSTER = ROOT / "scripts" / "pg-cluster.sh"
CLIENTS = 8
RESTARTS = 3
DOWN_SECONDS = 2.0
UP_SECONDS = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    url: str
    env: dict[str, str]

    def run(self, action: str) -> None:
        subprocess.run([str(CLUSTER), action], check=True, env=self.env, capture_output=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    pgroot = tempfile.mkdtemp(prefix="jppg-restart-")
    env = {**os.environ, "PGROOT": pgroot, "PGPORT": str(_free_port()), "PGEXTRA": ""}
    started = subprocess.run(
        [str(CLUSTER), "start"], check=True, capture_output=True, text=True, env=env
    )
    url = started.stdout.strip().splitlines()[-1]
    try:
        yield Cluster(url=url, env=env)
    finally:
        subprocess.run([str(CLUSTER), "stop"], check=False, env=env, capture_output=True)
        shutil.rmtree(pgroot, ignore_errors=True)


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)  # 5xx that are not a 503 with Retry-After
    dropped: list[str] = field(default_factory=list)  # connections the server dropped
    placements: set[str] = field(default_factory=set)
    holds: set[str] = field(default_factory=set)
    reports: set[int] = field(default_factory=set)

    def check(self, what: str, r: httpx.Response) -> None:
        self.statuses[r.status_code] += 1
        if r.status_code < 500:
            return
        problem = r.headers.get("content-type", "").startswith("application/problem+json")
        if r.status_code != 503 or not r.headers.get("retry-after") or not problem:
            self.bad.append(f"{what}: {r.status_code} {r.text[:200]}")


def _start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JUISTEPLEK_DATABASE_URL": url,
        "JUISTEPLEK_ENV": "test",
        "JUISTEPLEK_ACCESS_LOG": "false",
        "JUISTEPLEK_DB_POOL_SIZE": "12",
        "JUISTEPLEK_API_KEY_CACHE_SECONDS": "0",  # every request reads its key from the database
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_status(c: httpx.AsyncClient, path: str, status: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if (await c.get(path)).status_code == status:
                return True
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    return False


@pytest.fixture
async def served(cluster: Cluster, tmp_path: Path) -> AsyncIterator[tuple[str, str, Path]]:
    url = await _create_pg_database(cluster.url, f"jp_restart_{uuid.uuid4().hex[:6]}")
    await asyncio.to_thread(migrate, url)
    port = _free_port()
    log = tmp_path / "server.log"
    server = _start_server(url, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            assert await _wait_status(c, "/healthz", 200, 20), log.read_text()
        yield url, base, log
    finally:
        server.terminate()
        server.wait(timeout=15)


async def test_restarts_under_load_give_only_503_and_lose_no_acknowledged_write(
    cluster: Cluster, served: tuple[str, str, Path]
) -> None:
    url, base, log = served
    db = Database.from_url(url)
    try:
        seed = await seed_region(db, Settings(env="test", database_url=url))
    finally:
        await db.dispose()
    own_units = [str(seed.units["leiden-elv-high"]), str(seed.units["leiden-grz"])]
    elv_units = [str(u) for name, u in seed.units.items() if "elv-high" in name]
    tally = Tally()
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            while not stop.is_set():
                try:
                    unit = rng.choice(own_units)
                    r = await c.put(
                        f"/v1/units/{unit}/capacity",
                        json={"free": rng.randint(0, 2)},
                        headers=auth(seed.keys["provider"]),
                    )
                    tally.check("capacity", r)
                    if r.status_code == 200:
                        tally.reports.add(r.json()["id"])
                    r = await c.post(
                        "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
                    )
                    tally.check("placement", r)
                    if r.status_code != 201:
                        continue
                    pid = r.json()["id"]
                    tally.placements.add(pid)
                    r = await c.post(
                        f"/v1/placements/{pid}/holds",
                        json={"unit_id": rng.choice(elv_units)},
                        headers=auth(seed.keys["triagist"]),
                    )
                    tally.check("hold", r)
                    if r.status_code == 201:
                        tally.holds.add(r.json()["id"])
                    elif r.status_code < 500:
                        assert r.status_code == 409, r.text  # no place left
                except httpx.TransportError as exc:
                    tally.dropped.append(f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=base, timeout=30) as probe:
        tasks = [asyncio.create_task(worker(n)) for n in range(CLIENTS)]
        readiness_while_down = []
        try:
            await asyncio.sleep(UP_SECONDS)
            for _ in range(RESTARTS):
                await asyncio.to_thread(cluster.run, "pause")
                await asyncio.sleep(DOWN_SECONDS / 2)
                readiness_while_down.append((await probe.get("/readyz")).status_code)
                await asyncio.sleep(DOWN_SECONDS / 2)
                await asyncio.to_thread(cluster.run, "resume")
                # Recovery without restarting the app.
                assert await _wait_status(probe, "/readyz", 200, 30), "not ready after restart"
                await asyncio.sleep(UP_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    assert readiness_while_down == [503] * RESTARTS
    assert tally.bad == [], tally.bad[:5]
    assert tally.dropped == [], tally.dropped[:5]
    assert tally.statuses[503] > 0, "the load never met the outage: the test proves nothing"
    assert len(tally.placements) >= 20, f"too little load: {tally.statuses}"
    assert len(tally.reports) >= 20, f"too little load: {tally.statuses}"
    assert "Traceback" not in log.read_text(), "the server logged an unexpected error"

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        placements = {
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM placement WHERE id = ANY($1::uuid[])", list(tally.placements)
            )
        }
        holds = {
            str(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM placement_hold WHERE id = ANY($1::uuid[])", list(tally.holds)
            )
        }
        reports = {
            int(r["id"])
            for r in await conn.fetch(
                "SELECT id FROM capacity_report WHERE id = ANY($1::bigint[])", list(tally.reports)
            )
        }
    finally:
        await conn.close()
    assert tally.placements - placements == set(), "acknowledged placements lost"
    assert tally.holds - holds == set(), "acknowledged holds lost"
    assert tally.reports - reports == set(), "acknowledged capacity reports lost"


async def test_listener_reconnects_after_a_restart_and_asks_for_a_catch_up(
    cluster: Cluster,
) -> None:
    received: list[int] = []
    got_ids = asyncio.Event()
    reconnected = asyncio.Event()

    def on_ids(ids: list[int]) -> None:
        received.extend(ids)
        got_ids.set()

    listener = PgListener(
        cluster.url,
        on_ids=on_ids,
        on_reconnect=reconnected.set,
        channel="juisteplek_restart_test",
    )
    await listener.start()
    try:
        assert listener.connected.is_set()
        await asyncio.to_thread(cluster.run, "restart")
        await asyncio.wait_for(reconnected.wait(), timeout=30)
        conn = await asyncpg.connect(asyncpg_dsn(cluster.url))
        try:
            await conn.execute("SELECT pg_notify('juisteplek_restart_test', '41,42')")
        finally:
            await conn.close()
        await asyncio.wait_for(got_ids.wait(), timeout=10)
        assert received == [41, 42]
    finally:
        await listener.stop()
