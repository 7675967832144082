"""Holds benchmark: POST /v1/placements/{id}/holds vs a raw one-statement reservation (§6).

    .venv/bin/python -m bench.run_holds            # full: 1k units, 2 s warm-up, 3 x 8 s ABBA
    .venv/bin/python -m bench.run_holds --smoke    # or CI=true: small, 1 x 3 s, checks only

Starts its own PostgreSQL (scripts/pg-cluster.sh, default durability), migrates, seeds a registry
and triaged placements with consent (bench/holds_seed.py), starts the service and
bench/holds_baseline.py with the same workers and pool size, checks one probe hold on each side,
then:

1. overbooking check on PostgreSQL: a hot unit with ``--hot-places`` places, ``--clients``
   concurrent HTTP clients, each creating triaged placements (POST /v1/placements) and holding
   them on the hot unit until refused with 409 no-capacity; afterwards exactly N holds exist and
   ``held == N``;
2. the timed phase: wrk with bench/holds.lua, every placement held once, on ~1,000 units with a
   huge ``free`` so no request gets 409; invariants afterwards (``held`` == active holds per
   unit, one offer_sent event and one offered placement per service hold, the audit chain
   verifies); meanwhile ``pg_stat_activity`` is sampled for lock waits (bench/lock_sampler.py),
   reported per class (``lock_waits`` in the JSON);
3. the same overbooking check on SQLite: the service on a migrated SQLite file (its default
   driver), with the same number of workers.

``--baseline-mode full`` swaps the baseline for a diagnostic one (``HOLDS_BASELINE_MODE=full`` in
bench/holds_baseline.py): the service's writes, with the same statements, in one transaction,
with no FastAPI, auth or pydantic. Its placements are seeded like the service's, and the
invariants then also check one offered placement, offer_sent event and audit row per baseline
hold.

Full runs write bench/results/<date>-holds.json and print markdown. Exits non-zero if an
invariant fails (in smoke mode also on any non-2xx response); never on the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench import holds_seed, lock_sampler, runner
from bench.lock_sampler import LockSampler
from bench.runner import Goals, PgCluster, Target, log

SCRIPT = runner.ROOT / "bench" / "holds.lua"
BASELINE_BASE = 10_000_000  # baseline placements are placement_id(BASELINE_BASE + n)
LABELS = {
    "baseline": "baseline (Starlette + asyncpg, one CTE statement, no auth)",
    "service": "service (FastAPI app, POST /v1/placements/{id}/holds)",
}
FULL_LABEL = "baseline full (Starlette + asyncpg, the service's 7 statements in 1 transaction)"
HUGE = 10_000_000


def migrate(url: str) -> None:
    env = {**os.environ, "JUISTEPLEK_DATABASE_URL": url}
    cmd = [sys.executable, "-c", "from app.cli import main; main()", "migrate"]
    subprocess.run(cmd, cwd=runner.ROOT, env=env, check=True, timeout=120, capture_output=True)


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # loopback only
        url, data=data, method="POST", headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def probe(service: Target, baseline: Target, unit: str, state: dict[str, Path]) -> dict[str, Any]:
    """One hold on each side (their first seeded placement); equal fields, both 201."""
    got = {}
    for target, base in ((service, 0), (baseline, BASELINE_BASE)):
        pid = holds_seed.placement_id(base + 1)
        status, body = post(
            f"{target.base_url}/v1/placements/{pid}/holds", {"unit_id": unit}, target.headers
        )
        if status != 201:
            raise SystemExit(f"probe {target.name}: status {status}: {body}")
        state[target.name].write_text("1")
        got[target.name] = body
    s, b = got["service"], got["baseline"]
    if set(s) != set(b):
        raise SystemExit(f"probe: different fields: {sorted(s)} / {sorted(b)}")
    same = ("unit_id", "organisation_id", "status", "accepted_at", "released_at")
    if any(s[k] != b[k] for k in same):
        raise SystemExit(f"probe: different values: {s} / {b}")
    return {"fields": sorted(s), "service": s, "baseline": b}


# --- overbooking check ---------------------------------------------------------------------------


async def _overbook(base_url: str, key: str, unit: str, clients: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as c:

        async def client() -> int:
            mine = 0
            while True:
                made = await c.post("/v1/placements", json=holds_seed.placement_body())
                statuses[f"create {made.status_code}"] += 1
                if made.status_code != 201:
                    raise SystemExit(f"create: {made.status_code} {made.text[:300]}")
                pid = made.json()["id"]
                held = await c.post(f"/v1/placements/{pid}/holds", json={"unit_id": unit})
                statuses[f"hold {held.status_code}"] += 1
                if held.status_code == 201:
                    mine += 1
                    continue
                if held.status_code == 409 and held.json().get("type") == "/problems/no-capacity":
                    return mine
                raise SystemExit(f"hold: {held.status_code} {held.text[:300]}")

        started = time.monotonic()
        per_client = await asyncio.gather(*(client() for _ in range(clients)))
    return {
        "clients": clients,
        "holds_201": sum(per_client),
        "statuses": dict(sorted(statuses.items())),
        "seconds": round(time.monotonic() - started, 2),
    }


_CHECKS = {
    "held": "SELECT held FROM unit_capacity WHERE unit_id = {u}",
    "active_holds": "SELECT count(*) FROM placement_hold WHERE unit_id = {u} AND status = 'active'",
    "offered_placements": "SELECT count(*) FROM placement WHERE state = 'offered'"
    " AND current_hold_id IN (SELECT id FROM placement_hold WHERE unit_id = {u})",
    "offer_sent_events": "SELECT count(*) FROM transfer_event WHERE event_type = 'offer_sent'"
    " AND unit_id = {u}",
}


def overbooking_check(
    db: str, base_url: str, key: str, unit: str, places: int, clients: int, query: Any
) -> dict[str, Any]:
    """Run the hot-unit check; ``query(sql) -> int`` reads the database afterwards."""
    log(f"overbooking check on {db}: {places} places, {clients} clients")
    result = asyncio.run(_overbook(base_url, key, unit, clients))
    counts = {name: int(query(sql)) for name, sql in _CHECKS.items()}
    result |= {"database": db, "places": places, **counts}
    result["ok"] = result["holds_201"] == places and all(v == places for v in counts.values())
    log(f"overbooking {db}: {result}")
    return result


def sqlite_overbooking(
    work: Path, args: argparse.Namespace, uvicorn: list[str], places: int
) -> dict[str, Any]:
    """The service on a fresh SQLite file (its default driver, aiosqlite), same check."""
    path = work / "holds.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate(url)
    seeded = asyncio.run(holds_seed.seed_registry(url, units=20, seed=args.seed))
    hot = seeded["units"][0]
    asyncio.run(holds_seed.set_capacity(url, [hot], free=places))
    port = runner.free_port()
    target = Target(
        name="service-sqlite",
        argv=[*uvicorn, "--port", str(port), "--factory", args.service_app],
        env={
            "JUISTEPLEK_DATABASE_URL": url,
            "JUISTEPLEK_ACCESS_LOG": "false",
            "JUISTEPLEK_LOG_LEVEL": "WARNING",
        },
        port=port,
    )
    target.start(work)
    try:
        target.wait_ready("/readyz")

        def query(sql: str) -> int:
            with sqlite3.connect(path, timeout=30) as conn:
                return int(conn.execute(sql.format(u=f"'{uuid.UUID(hot).hex}'")).fetchone()[0])

        result = overbooking_check(
            "SQLite", target.base_url, seeded["key"], hot, places, args.clients, query
        )
        if not target.alive():
            raise SystemExit("the SQLite service crashed")
        return result
    finally:
        target.stop()


# --- invariants after the timed phase ------------------------------------------------------------


def _per_hold_counts(q: Any, where: str, prefix: str) -> dict[str, int]:
    """Offered placements, offer_sent events and placement.hold audit rows of the placements
    matching ``where`` (on ``p``)."""
    return {
        f"{prefix}_offered": int(
            q(f"SELECT count(*) FROM placement p WHERE {where} AND state = 'offered'")
        ),
        f"{prefix}_offer_events": int(
            q(
                f"SELECT count(*) FROM transfer_event e JOIN placement p ON p.id = e.placement_id"
                f" WHERE {where} AND e.event_type = 'offer_sent'"
            )
        ),
        f"{prefix}_hold_audit_rows": int(
            q(
                f"SELECT count(*) FROM audit_log a JOIN placement p ON p.id::text = a.object_id"
                f" WHERE {where} AND a.event_code = 'placement.hold'"
            )
        ),
    }


def timed_invariants(
    pg: PgCluster, url: str, used: dict[str, int], *, full_baseline: bool = False
) -> dict[str, Any]:
    """Holds == held per unit; one offered placement, offer_sent event, audit row per service
    hold (and per baseline hold with ``full_baseline``); the access-log chain verifies."""
    q = pg.psql
    split = holds_seed.placement_id(BASELINE_BASE)
    svc = f"p.id::text LIKE '00000000-0000-4000-8000-%' AND p.id < '{split}'"
    bas = f"p.id::text LIKE '00000000-0000-4000-8000-%' AND p.id >= '{split}'"
    out: dict[str, Any] = {
        "used_placements": used,
        "units_held_mismatch": int(
            q(
                "SELECT count(*) FROM unit_capacity c WHERE held <> (SELECT count(*) FROM"
                " placement_hold h WHERE h.unit_id = c.unit_id AND h.status = 'active')"
            )
        ),
        "held_total": int(q("SELECT sum(held) FROM unit_capacity")),
        "active_holds": int(q("SELECT count(*) FROM placement_hold WHERE status = 'active'")),
        "service_holds": int(
            q(
                f"SELECT count(*) FROM placement_hold h JOIN placement p ON p.id = h.placement_id"
                f" WHERE {svc}"
            )
        ),
        **_per_hold_counts(q, svc, "service"),
        "baseline_holds": int(
            q(
                f"SELECT count(*) FROM placement_hold h WHERE h.placement_id >= '{split}'"
                f" AND h.placement_id::text LIKE '00000000-0000-4000-8000-%'"
            )
        ),
    }
    if full_baseline:
        out |= _per_hold_counts(q, bas, "baseline")
    from app.audit.service import verify
    from app.db import Database

    async def _verify() -> dict[str, Any]:
        db = Database.from_url(url, pool_size=1, max_overflow=0)
        try:
            return (await verify(db)).model_dump()
        finally:
            await db.dispose()

    out["audit_chain"] = asyncio.run(_verify())
    n = out["service_holds"]
    out["ok"] = (
        out["units_held_mismatch"] == 0
        and out["held_total"] == out["active_holds"]
        and out["service_offered"] == n
        and out["service_offer_events"] == n
        and out["service_hold_audit_rows"] == n
        and out["audit_chain"]["ok"]
    )
    if full_baseline:
        b = out["baseline_holds"]
        out["ok"] = (
            out["ok"]
            and out["baseline_offered"] == b
            and out["baseline_offer_events"] == b
            and out["baseline_hold_audit_rows"] == b
        )
    return out


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    smoke_default = os.environ.get("CI", "").lower() == "true"
    parser = argparse.ArgumentParser(description="POST holds vs a one-statement baseline")
    parser.add_argument("--smoke", action="store_true", default=smoke_default)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=16)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--units", type=int, help="units with huge free for the timed phase")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float, help="seconds per round and target")
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--attempts", type=int, help="re-run the timed phase if invalid (max 3)")
    parser.add_argument("--service-placements", type=int, help="seeded for the service")
    parser.add_argument("--baseline-placements", type=int, help="seeded for the baseline")
    parser.add_argument("--hot-places", type=int, default=200, help="overbooking check: N")
    parser.add_argument("--clients", type=int, default=50, help="overbooking check: clients")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite check")
    parser.add_argument(
        "--no-webhook-dispatch",
        action="store_true",
        help="diagnostic: the service without its webhook dispatcher loop (not the product)",
    )
    parser.add_argument(
        "--baseline-mode",
        choices=("one", "full"),
        default="one",
        help="one: the one-statement target baseline; full: diagnostic, the service's writes"
        " with the same statements in one transaction (bench/holds_baseline.py)",
    )
    parser.add_argument(
        "--lock-sample-interval",
        type=float,
        default=0.05,
        help="seconds between pg_stat_activity lock-wait samples in the timed phase",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--service-app", default="app.main:create_app")
    parser.add_argument("--name", default="holds", help="results/<date>-<name>.json")
    parser.add_argument("--keep", action="store_true", help="leave the work dir (logs, data)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    units = args.units or (200 if smoke else 1_000)
    rounds = args.rounds or (1 if smoke else 3)
    duration = args.duration or (3.0 if smoke else 8.0)
    warmup = args.warmup if args.warmup is not None else (0.0 if smoke else 2.0)
    attempts = min(3, args.attempts or (1 if smoke else 2))
    n_service = args.service_placements or (2_000 if smoke else 25_000 * attempts)
    full = args.baseline_mode == "full"
    # The baseline does ~4,500 holds a second here: seed enough that it never runs out.
    per_attempt = 120_000 if full else 200_000
    n_baseline = args.baseline_placements or (30_000 if smoke else per_attempt * attempts)
    started = time.monotonic()

    runner.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="jpb-holds-"))
    work.chmod(0o755)  # the postgres user must traverse it
    pg = PgCluster(root=work / "pg", port=runner.free_port())
    targets: list[Target] = []
    py = sys.executable
    uvicorn = [py, "-m", "uvicorn", "--host", "127.0.0.1", "--workers", str(args.workers)]
    uvicorn += ["--no-access-log", "--log-level", "warning"]
    try:
        log(f"PostgreSQL on port {pg.port} under {pg.root}")
        url = pg.start()
        migrate(url)
        seeded = asyncio.run(holds_seed.seed_registry(url, units=units + 1, seed=args.seed))
        hot, timed_units = seeded["units"][0], seeded["units"][1:]
        asyncio.run(holds_seed.set_capacity(url, timed_units, free=HUGE))
        asyncio.run(holds_seed.set_capacity(url, [hot], free=args.hot_places))
        t0 = time.monotonic()
        placements = {
            "service": asyncio.run(
                holds_seed.seed_placements(url, seeded["key"], first=1, count=n_service)
            ),
            "baseline": asyncio.run(
                holds_seed.seed_placements(
                    url, seeded["key"], first=BASELINE_BASE + 1, count=n_baseline
                )
            ),
        }
        log(
            f"seeded {n_service} + {n_baseline} placements in {time.monotonic() - t0:.1f} s:"
            f" {placements['service']['copied']}"
        )
        units_file = work / "units.txt"
        units_file.write_text("\n".join(timed_units) + "\n")
        state = {"service": work / "service.state", "baseline": work / "baseline.state"}
        service_port, baseline_port = runner.free_port(), runner.free_port()
        service = Target(
            name="service",
            argv=[*uvicorn, "--port", str(service_port), "--factory", args.service_app],
            env={
                "JUISTEPLEK_DATABASE_URL": url,
                "JUISTEPLEK_ACCESS_LOG": "false",
                "JUISTEPLEK_LOG_LEVEL": "WARNING",
                "JUISTEPLEK_DB_POOL_SIZE": str(args.pool_size),
                "JUISTEPLEK_DB_MAX_OVERFLOW": "0",
                **(
                    {"JUISTEPLEK_WEBHOOK_DISPATCH_ENABLED": "false"}
                    if args.no_webhook_dispatch
                    else {}
                ),
            },
            port=service_port,
            lua_args=[seeded["key"], "0", str(state["service"]), str(units_file), str(args.seed)],
            headers={"Authorization": f"Bearer {seeded['key']}"},
        )
        baseline = Target(
            name="baseline",
            argv=[*uvicorn, "--port", str(baseline_port), "bench.holds_baseline:app"],
            env={
                "BENCH_DATABASE_URL": url,
                "BENCH_POOL_SIZE": str(args.pool_size),
                "HOLDS_BASELINE_MODE": args.baseline_mode,
            },
            port=baseline_port,
            lua_args=[
                "-",
                str(BASELINE_BASE),
                str(state["baseline"]),
                str(units_file),
                str(args.seed),
            ],
        )
        targets = [service, baseline]
        for target in targets:
            target.start(work)
            target.wait_ready("/readyz")
        probed = probe(service, baseline, timed_units[0], state)
        log("probe holds: equal fields and values")
        overbooking = [
            overbooking_check(
                "PostgreSQL",
                service.base_url,
                seeded["key"],
                hot,
                args.hot_places,
                args.clients,
                lambda sql: pg.psql(sql.format(u=f"'{hot}'")),
            )
        ]
        # bench/README.md, "Targets": the bar is set against the full baseline (same writes).
        goals = Goals(rps_ratio_min=0.6, app_cpu_ratio_max=2.5) if full else Goals()
        sampler = LockSampler(url, interval=args.lock_sample_interval)
        sampler.start()
        try:
            results = runner.timed_attempts(
                service,
                baseline,
                pg,
                SCRIPT,
                attempts=attempts,
                smoke=smoke,
                rounds=rounds,
                seconds=duration,
                warmup=warmup,
                connections=args.connections,
                goals=goals,
            )
        finally:
            locks = sampler.stop()
        log(lock_sampler.markdown(locks))
        summary = results[-1]
        used = {name: int(path.read_text()) for name, path in state.items()}
        if used["service"] > n_service or used["baseline"] > n_baseline:
            log(f"ran out of seeded placements: used {used}; raise --*-placements")
        invariants = timed_invariants(pg, url, used, full_baseline=full)
        log(f"invariants after the timed phase: {invariants}")
        for target in targets:
            target.stop()
        if not args.no_sqlite:
            overbooking.append(sqlite_overbooking(work, args, uvicorn, args.hot_places))
        failures = [f"overbooking on {o['database']}" for o in overbooking if not o["ok"]]
        if not invariants["ok"]:
            failures.append("invariants after the timed phase")
        if smoke:
            bad = [r for r in summary["rounds"] if r["non_2xx"] or sum(r["socket_errors"].values())]
            if bad:
                failures.append(f"non-2xx or socket errors: {bad}")
            log(f"smoke done in {time.monotonic() - started:.0f} s; failures: {failures or 'none'}")
            return 1 if failures else 0
        report = {
            "benchmark": "holds",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": runner.machine_info(pg),
            "method": {
                "wrk": f"-t1 -c{args.connections} --latency -s bench/holds.lua",
                "workers": args.workers,
                "pool_size": args.pool_size,
                "rounds": rounds,
                "seconds_per_round": duration,
                "warmup_seconds": warmup,
                "order": "ABBA (service, baseline / baseline, service / ...)",
                "units": len(timed_units),
                "seed": args.seed,
                "seed_counts": seeded["counts"],
                "placements": {"service": n_service, "baseline": n_baseline, **placements},
                "service_app": args.service_app,
                "webhook_dispatch": not args.no_webhook_dispatch,
                "baseline_mode": args.baseline_mode,
            },
            "probe": probed,
            "overbooking": overbooking,
            "invariants": invariants,
            "lock_waits": locks,
            **summary,
            "earlier_attempts": results[:-1],
            "failures": failures,
            "total_seconds": round(time.monotonic() - started, 1),
        }
        path = runner.write_json(args.name, report)
        labels = {**LABELS, "baseline": FULL_LABEL} if full else LABELS
        print(runner.markdown(summary, labels))
        print()
        print(runner.rounds_markdown(summary["rounds"]))
        print()
        print(lock_sampler.markdown(locks))
        print()
        for o in overbooking:
            print(
                f"overbooking {o['database']}: {o['holds_201']} holds for {o['places']} places,"
                f" held={o['held']}, active={o['active_holds']}, ok={o['ok']}"
            )
        log(f"wrote {path.relative_to(runner.ROOT)} in {report['total_seconds']} s")
        return 1 if failures else 0
    finally:
        for target in targets:
            target.stop()
        pg.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
