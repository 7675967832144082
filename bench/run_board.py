"""The triagist's board: page server time, and one change reaching 200 open boards.

Usage::

    .venv/bin/python -m bench.run_board            # full run: about 2-3 minutes
    CI=true .venv/bin/python -m bench.run_board    # smoke run (same as --smoke)

1. **Server time of ``GET /ui/board``** (and a filtered board, and the one-row live refresh),
   in process through ``httpx.ASGITransport``: the app's own time per request, no network. For
   the demo region (``juisteplek demo``'s data: 93 units) on SQLite and on PostgreSQL, and for the
   national data set (``bench/seed_national.py``: 11 regions, 10,000 units; the triagist's region
   holds about 900 of them) on PostgreSQL.
2. **200 open boards**: the service under uvicorn (one worker) on the national data set, 200
   server-sent-event connections to ``/ui/stream`` (each with its own web session, as 200 browsers
   would hold), then one capacity report (``PUT /v1/units/{id}/capacity``) at a time. Measured
   from just before the PUT is sent: the time until every board has the ``unit.<id>`` event, and
   the time until every board has also re-fetched the unit's row (``GET /ui/board/units/{id}``,
   which is what the page does on that event).

Writes ``bench/results/<date>-board.json`` and prints a markdown summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from app.auth import service as auth_service
from app.auth import users as user_service
from app.auth.schemas import ApiKeyCreate
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, OrganisationKind, Role
from app.flows.demo import load_demo
from app.main import create_app
from app.principal import Principal
from app.registry.models import Location, Organisation, Subregion, Unit
from bench.runner import (
    PgCluster,
    Target,
    free_port,
    log,
    machine_info,
    migrate_and_seed,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]
ADMIN = Principal(
    key_id=uuid.UUID(int=0),
    name="bench admin",
    roles=frozenset({Role.ADMIN}),
    organisation_id=None,
    region_id=None,
)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _stats(ms: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(_pct(ms, 0.95), 1),
        "max_ms": round(max(ms), 1),
    }


async def _people(db: Database, rap_id: uuid.UUID, sessions: int, settings: Settings) -> list[str]:
    """A triagist of the desk ``rap_id`` and ``sessions`` session tokens for it."""
    async with db.sessionmaker() as session:
        user = await user_service.add_user(
            session,
            name="Bench Triagist",
            email=f"bench-{uuid.uuid4().hex[:6]}@example.nl",
            organisation_id=rap_id,
            roles=frozenset({Role.TRIAGIST}),
            password="bench password 1",
        )
        await session.commit()
    return [
        await user_service.start_session(
            db, user, client_address="127.0.0.1", settings=settings, second_factor_done=True
        )
        for _ in range(sessions)
    ]


async def _provider_key(db: Database, region_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    """A provider key of an organisation of the region, and one of its ELV units."""
    async with db.sessionmaker() as session:
        row = (
            await session.execute(
                select(Unit.id, Organisation.id.label("org"))
                .join(Location, Location.id == Unit.location_id)
                .join(Organisation, Organisation.id == Location.organisation_id)
                .join(Subregion, Subregion.id == Location.subregion_id)
                .where(
                    Subregion.region_id == region_id,
                    Unit.care_type.in_([CareType.ELV_HIGH.value, CareType.ELV_LOW.value]),
                    Unit.staffed_capacity >= 4,
                    Unit.active,
                )
                .order_by(Unit.id)
                .limit(1)
            )
        ).one()
        issued = await auth_service.issue_key(
            session,
            ApiKeyCreate(name="bench provider", organisation_id=row.org, roles=[Role.PROVIDER]),
        )
        await session.commit()
    return issued.key, row.id


async def _rap(db: Database) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.sessionmaker() as session:
        row = (
            await session.execute(
                select(Organisation.id, Organisation.region_id)
                .where(Organisation.kind == OrganisationKind.RAP.value)
                .order_by(Organisation.name)
                .limit(1)
            )
        ).one()
    return row.id, row.region_id


async def page_times(url: str, *, requests: int, label: str) -> dict[str, Any]:
    """Server time of the board page, its filtered form and the one-row refresh, in process."""
    settings = Settings(env="test", database_url=url, access_log=False, log_level="WARNING")
    db = Database.from_url(url, pool_size=5, max_overflow=0)
    try:
        rap_id, region_id = await _rap(db)
        (token,) = await _people(db, rap_id, 1, settings)
        _, unit_id = await _provider_key(db, region_id)
        app = create_app(settings, database=db)
        out: dict[str, Any] = {"label": label}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://bench",
                cookies={"jp_session": token},
                timeout=60,
            ) as client:
                paths = {
                    "board": "/ui/board",
                    "board_elv_high": "/ui/board?care_type=elv_high",
                    "row_refresh": f"/ui/board/units/{unit_id}",
                }
                for name, path in paths.items():
                    for _ in range(3):  # warm-up: template compile, caches
                        r = await client.get(path)
                        assert r.status_code == 200, (path, r.status_code, r.text[:300])
                    ms = []
                    for _ in range(requests):
                        started = time.perf_counter()
                        r = await client.get(path)
                        ms.append((time.perf_counter() - started) * 1000)
                        assert r.status_code == 200
                    out[name] = _stats(ms)
                board = await client.get("/ui/board")
                out["rows_shown"] = board.text.count("data-unit-id=")
        async with db.read() as conn:
            out["units_in_region"] = await conn.scalar(
                select(func.count())
                .select_from(Unit)
                .join(Location, Location.id == Unit.location_id)
                .join(Subregion, Subregion.id == Location.subregion_id)
                .where(Subregion.region_id == region_id)
            )
    finally:
        await db.dispose()
    return out


async def _open_board(
    base: str, token: str, unit_id: uuid.UUID, ready: asyncio.Event, counter: list[int]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 20)
    writer.write(
        (
            f"GET /ui/stream HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            f"Cookie: jp_session={token}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass  # headers
    while True:  # the first frame: ": connected" once the subscription is live
        line = await reader.readline()
        if b"connected" in line:
            break
    counter[0] += 1
    if counter[0] == counter[1]:
        ready.set()
    return reader, writer


async def _wait_event(reader: asyncio.StreamReader, name: bytes) -> float:
    while True:
        line = await reader.readline()
        if not line:
            raise RuntimeError("stream closed")
        if line.rstrip(b"\r\n") == b"event: " + name:
            return time.perf_counter()


async def fan_out(
    url: str, *, clients: int, changes: int, workers: int, work: Path
) -> dict[str, Any]:
    settings = Settings(env="test", database_url=url, access_log=False)
    db = Database.from_url(url, pool_size=2, max_overflow=0)
    try:
        rap_id, region_id = await _rap(db)
        tokens = await _people(db, rap_id, clients, settings)
        key, unit_id = await _provider_key(db, region_id)
    finally:
        await db.dispose()
    port = free_port()
    target = Target(
        name="board-service",
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "app.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={
            "JUISTEPLEK_DATABASE_URL": url,
            "JUISTEPLEK_ACCESS_LOG": "false",
            "JUISTEPLEK_DB_POOL_SIZE": "16",
            "JUISTEPLEK_LOG_LEVEL": "WARNING",
        },
        port=port,
    )
    target.start(work)
    rounds: list[dict[str, Any]] = []
    try:
        target.wait_ready("/healthz")
        base = target.base_url
        ready = asyncio.Event()
        counter = [0, clients]
        started = time.perf_counter()
        streams = await asyncio.gather(
            *(_open_board(base, t, unit_id, ready, counter) for t in tokens)
        )
        await asyncio.wait_for(ready.wait(), 60)
        connect_s = time.perf_counter() - started
        name = f"unit.{unit_id}".encode()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as api:
            sessions = [
                httpx.AsyncClient(
                    base_url=base, timeout=30, cookies={"jp_session": t}, limits=limits
                )
                for t in tokens[:1]
            ]
            fetcher = sessions[0]
            for i in range(changes):
                waits = [asyncio.create_task(_wait_event(r, name)) for r, _ in streams]

                async def fetch_after(wait: asyncio.Task[float]) -> float:
                    await wait
                    for attempt in range(3):
                        try:  # an idle keep-alive connection the server just closed: retry
                            r = await fetcher.get(f"/ui/board/units/{unit_id}")
                            break
                        except (httpx.ReadError, httpx.RemoteProtocolError):
                            if attempt == 2:
                                raise
                    assert r.status_code == 200
                    return time.perf_counter()

                fetches = [asyncio.create_task(fetch_after(w)) for w in waits]
                await asyncio.sleep(0.2)
                await api.get("/healthz")  # a fresh keep-alive connection for the PUT
                t0 = time.perf_counter()
                r = await api.put(
                    f"/v1/units/{unit_id}/capacity",
                    json={"free": 2 + i % 2},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == 200, r.text
                acked = time.perf_counter()
                arrived = await asyncio.wait_for(asyncio.gather(*waits), 30)
                fetched = await asyncio.wait_for(asyncio.gather(*fetches), 60)
                event_ms = [(t - t0) * 1000 for t in arrived]
                rounds.append(
                    {
                        "change": i + 1,
                        "put_ms": round((acked - t0) * 1000, 1),
                        "event_p50_ms": round(statistics.median(event_ms), 1),
                        "event_last_ms": round(max(event_ms), 1),
                        "row_last_ms": round((max(fetched) - t0) * 1000, 1),
                    }
                )
                log(f"change {i + 1}: {rounds[-1]}")
                await asyncio.sleep(0.5)
            for c in sessions:
                await c.aclose()
        for _, writer in streams:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    finally:
        target.stop()
    last = [r["event_last_ms"] for r in rounds]
    rows = [r["row_last_ms"] for r in rounds]
    return {
        "clients": clients,
        "workers": workers,
        "connect_all_s": round(connect_s, 2),
        "rounds": rounds,
        "event_last_ms_median": round(statistics.median(last), 1),
        "event_last_ms_max": round(max(last), 1),
        "row_last_ms_median": round(statistics.median(rows), 1),
        "row_last_ms_max": round(max(rows), 1),
    }


async def _demo_database(url: str) -> None:
    db = Database.from_url(url, pool_size=2, max_overflow=0)
    try:
        async with db.sessionmaker() as session:
            await load_demo(session, ADMIN, now=utcnow(), settings=Settings(database_url=url))
            await session.commit()
    finally:
        await db.dispose()


def _migrate(url: str) -> None:
    from app.cli import run_migrations

    run_migrations(url)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| data set | database | units in the region (rows shown) | `GET /ui/board` p50 / p95 ms "
        "| filtered (ELV high) p50 / p95 ms | one-row refresh p50 / p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for t in result["page_times"]:
        lines.append(
            f"| {t['label']} | {t['database']} | {t['units_in_region']} ({t['rows_shown']}) "
            f"| {t['board']['p50_ms']} / {t['board']['p95_ms']} "
            f"| {t['board_elv_high']['p50_ms']} / {t['board_elv_high']['p95_ms']} "
            f"| {t['row_refresh']['p50_ms']} / {t['row_refresh']['p95_ms']} |"
        )
    f = result["fan_out"]
    lines += [
        "",
        f"{f['clients']} open boards (SSE on `/ui/stream`, {f['workers']} worker), "
        f"{len(f['rounds'])} changes:",
        "",
        "| change | PUT answered ms | event p50 ms | event at the last board ms "
        "| row re-fetched by the last board ms |",
        "|---|---|---|---|---|",
    ]
    for r in f["rounds"]:
        lines.append(
            f"| {r['change']} | {r['put_ms']} | {r['event_p50_ms']} | {r['event_last_ms']} "
            f"| {r['row_last_ms']} |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace, pg_url: str, work: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"page_times": []}
    sqlite_url = f"sqlite+aiosqlite:///{work / 'demo.db'}"
    await asyncio.to_thread(_migrate, sqlite_url)
    await _demo_database(sqlite_url)
    demo_sqlite = await page_times(sqlite_url, requests=args.requests, label="demo region West")
    result["page_times"].append({**demo_sqlite, "database": "SQLite"})
    demo_pg = pg_url.rsplit("/", 1)[0] + "/juisteplek_demo"
    import asyncpg

    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("CREATE DATABASE juisteplek_demo")
    finally:
        await conn.close()
    await asyncio.to_thread(_migrate, demo_pg)
    await _demo_database(demo_pg)
    page = await page_times(demo_pg, requests=args.requests, label="demo region West")
    result["page_times"].append({**page, "database": "PostgreSQL"})
    seeded = await asyncio.to_thread(
        migrate_and_seed, pg_url, work, units=args.units, seed=args.seed
    )
    label = f"national, {seeded['units']:,} units"
    page = await page_times(pg_url, requests=args.requests, label=label)
    result["page_times"].append({**page, "database": "PostgreSQL"})
    result["fan_out"] = await fan_out(
        pg_url, clients=args.clients, changes=args.changes, workers=args.workers, work=work
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", default=bool(os.environ.get("CI")))
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--name", default="board", help="results/<date>-<name>.json")
    args = parser.parse_args(argv)
    if args.smoke:
        args.units, args.requests, args.clients, args.changes = 1_000, 5, 20, 2
    work = Path(tempfile.mkdtemp(prefix="jp-bench-board-"))
    work.chmod(0o755)  # the postgres user must traverse it
    pg = PgCluster(root=work / "pg", port=free_port())
    log(f"work directory {work}")
    pg_url = pg.start()
    try:
        result = asyncio.run(run(args, pg_url, work))
        result["machine"] = machine_info(pg)
        result["smoke"] = args.smoke
    finally:
        pg.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    path = write_json(f"{args.name}-smoke" if args.smoke else args.name, result)
    print(markdown(result))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
