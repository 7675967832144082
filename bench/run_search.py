"""Availability search benchmark: GET /v1/availability vs the bare baseline (bench/README.md).

    .venv/bin/python -m bench.run_search            # full: 10k units, 2 s warm-up, 3 x 8 s ABBA
    .venv/bin/python -m bench.run_search --smoke    # or CI=true: 1k units, 1 x 3 s, checks only

Starts its own PostgreSQL (scripts/pg-cluster.sh, default durability), migrates, seeds
(bench.seed_national), starts the service and bench.baseline_app with the same workers and pool
size on two loopback ports, checks that both give equal JSON (and send the same SQL), then runs
wrk with bench/search.lua. Full runs write bench/results/<date>-search.json and print markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import runner
from bench.runner import Goals, PgCluster, Target, log

SCRIPT = runner.ROOT / "bench" / "search.lua"
PATH = "/v1/availability"
LABELS = {
    "baseline": "baseline (Starlette + asyncpg + orjson, no auth)",
    "service": "service (FastAPI app, GET /v1/availability)",
}
_TIMESTAMP = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(?:Z|\+00:00)"')


def probes(subregions: list[dict[str, Any]]) -> list[str]:
    """Query strings covering every statement shape the service builds."""
    s = subregions
    return [
        f"care_type=elv_high&subregion={s[0]['code']}&escalate=true"
        f"&near={s[0]['lat']},{s[0]['lon']}&target_group=somatic",
        f"care_type=grz&subregion={s[7 % len(s)]['code']}",
        f"care_type=district_nursing&care_type=district_nursing_acute&subregion={s[3]['code']}"
        "&escalate=true&sex=female&features=oxygen",
        "care_type=elv_low&include_stale=true&limit=200",
        f"care_type=ggz_crisis&target_group=psychiatric&near=52.0,5.0&sex=male"
        f"&subregion={s[12 % len(s)]['code']}&escalate=true",
    ]


def _normalised(body: bytes) -> Any:
    data = json.loads(_TIMESTAMP.sub(r'"\1Z"', body.decode()))
    if isinstance(data, dict):
        data.pop("generated_at", None)
    return data


def check_probes(service: Target, baseline: Target, queries: list[str]) -> list[dict[str, Any]]:
    """Each probe: 200 from both, equal JSON after normalising timestamps (3 tries per probe,
    since ``age_minutes`` may tick over between the two requests)."""
    checked = []
    for query in queries:
        for attempt in range(3):
            s_status, s_body = runner.http_get(f"{service.base_url}{PATH}?{query}", service.headers)
            b_status, b_body = runner.http_get(f"{baseline.base_url}{PATH}?{query}", {})
            if (s_status, b_status) != (200, 200):
                raise SystemExit(f"probe {query}: status {s_status} / {b_status}: {s_body[:300]!r}")
            equal = _normalised(s_body) == _normalised(b_body)
            if equal or attempt == 2:
                break
        if not equal:
            raise SystemExit(f"probe {query}: service and baseline JSON differ")
        count = json.loads(s_body)["count"]
        checked.append({"query": query, "count": count, "bytes": len(s_body), "equal": True})
    if checked[0]["count"] == 0:
        raise SystemExit("the first probe found nothing: the seed is wrong")
    return checked


def check_same_sql(pg: PgCluster, service: Target, baseline: Target, query: str) -> bool:
    """After the same probe on both, the latest search statement of each app must be identical."""
    for target in (service, baseline):
        runner.http_get(f"{target.base_url}{PATH}?{query}", target.headers)
    latest = pg.psql(
        "SELECT string_agg(application_name || '=' || md5(query), ' ' ORDER BY application_name)"
        " FROM (SELECT DISTINCT ON (application_name) application_name, query"
        "       FROM pg_stat_activity WHERE query LIKE '%FROM unit_capacity c%'"
        "       AND pid <> pg_backend_pid() ORDER BY application_name, query_start DESC) q"
    )
    digests = dict(part.split("=") for part in latest.split())
    same = len(digests) == 2 and len(set(digests.values())) == 1
    log(f"same SQL text on both sides: {same} ({latest})")
    return same


def main(argv: list[str] | None = None) -> int:
    smoke_default = os.environ.get("CI", "").lower() == "true"
    parser = argparse.ArgumentParser(description="GET /v1/availability vs a bare baseline")
    parser.add_argument("--smoke", action="store_true", default=smoke_default)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=16)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--units", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float, help="seconds per round and target")
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--attempts", type=int, help="re-run the timed phase if invalid (max 3)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--service-app", default="app.main:create_app")
    parser.add_argument("--name", default="search", help="results/<date>-<name>.json")
    parser.add_argument("--keep", action="store_true", help="leave the work dir (logs, data)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    units = args.units or (1_000 if smoke else 10_000)
    rounds = args.rounds or (1 if smoke else 3)
    duration = args.duration or (3.0 if smoke else 8.0)
    warmup = args.warmup if args.warmup is not None else (0.0 if smoke else 2.0)
    attempts = min(3, args.attempts or (1 if smoke else 2))
    started = time.monotonic()

    runner.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="jpb-"))
    work.chmod(0o755)  # the postgres user must traverse it
    pg = PgCluster(root=work / "pg", port=runner.free_port())
    targets: list[Target] = []
    try:
        log(f"PostgreSQL on port {pg.port} under {pg.root}")
        url = pg.start()
        py = sys.executable
        env = {"JUISTEPLEK_DATABASE_URL": url}
        seed = runner.migrate_and_seed(url, work, units=units, seed=args.seed)
        subs = ",".join(f"{s['code']}:{s['lat']}:{s['lon']}" for s in seed["subregions"])
        uvicorn = [py, "-m", "uvicorn", "--host", "127.0.0.1", "--workers", str(args.workers)]
        uvicorn += ["--no-access-log", "--log-level", "warning"]
        service_port, baseline_port = runner.free_port(), runner.free_port()
        service = Target(
            name="service",
            argv=[*uvicorn, "--port", str(service_port), "--factory", args.service_app],
            env={
                **env,
                "JUISTEPLEK_ACCESS_LOG": "false",
                "JUISTEPLEK_LOG_LEVEL": "WARNING",
                "JUISTEPLEK_DB_POOL_SIZE": str(args.pool_size),
                "JUISTEPLEK_DB_MAX_OVERFLOW": "0",
            },
            port=service_port,
            lua_args=[seed["key"], str(args.seed), subs],
            headers={"Authorization": f"Bearer {seed['key']}"},
        )
        baseline = Target(
            name="baseline",
            argv=[*uvicorn, "--port", str(baseline_port), "bench.baseline_app:app"],
            env={"BENCH_DATABASE_URL": url, "BENCH_POOL_SIZE": str(args.pool_size)},
            port=baseline_port,
            lua_args=["-", str(args.seed), subs],
        )
        targets = [service, baseline]
        queries = probes(seed["subregions"])
        for target in targets:
            target.start(work)
            target.wait_ready(f"{PATH}?{queries[1]}")
        checked = check_probes(service, baseline, queries)
        log(f"probes equal: {[(c['count'], c['bytes']) for c in checked]}")
        same_sql = check_same_sql(pg, service, baseline, queries[0])
        if not same_sql:
            raise SystemExit("service and baseline sent different search SQL")
        goals = Goals(rps_ratio_min=0.7, app_cpu_ratio_max=2.0)  # bench/README.md, "Targets"
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
        summary = results[-1]
        if smoke:
            bad = [r for r in summary["rounds"] if r["non_2xx"] or sum(r["socket_errors"].values())]
            log(f"smoke done in {time.monotonic() - started:.0f} s; failures: {bad or 'none'}")
            return 1 if bad else 0
        report = {
            "benchmark": "availability search",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": runner.machine_info(pg),
            "method": {
                "wrk": f"-t1 -c{args.connections} --latency -s bench/search.lua",
                "workers": args.workers,
                "pool_size": args.pool_size,
                "rounds": rounds,
                "seconds_per_round": duration,
                "warmup_seconds": warmup,
                "order": "ABBA (service, baseline / baseline, service / ...)",
                "units": units,
                "seed": args.seed,
                "seed_counts": seed["counts"],
                "service_app": args.service_app,
            },
            "probes": checked,
            "same_sql": same_sql,
            **summary,
            "earlier_attempts": results[:-1],
            "total_seconds": round(time.monotonic() - started, 1),
        }
        path = runner.write_json(args.name, report)
        print(runner.markdown(summary, LABELS))
        print()
        print(runner.rounds_markdown(summary["rounds"]))
        log(f"wrote {path.relative_to(runner.ROOT)} in {report['total_seconds']} s")
        return 0
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
