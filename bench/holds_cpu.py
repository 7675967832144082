"""In-process CPU per hold: the ASGI apps called directly, no HTTP server, no wrk.

The holds counterpart of bench/asgi_cpu.py: less noisy than the HTTP benchmark, so it attributes
the service's cost. Each configuration runs in its own process, interleaved, ``--repeats`` times;
``--profile`` prints the top of a cProfile of the service instead.

    .venv/bin/python -m bench.holds_cpu                      # baseline vs service
    .venv/bin/python -m bench.holds_cpu --profile 40         # where the service's CPU goes
    .venv/bin/python -m bench.holds_cpu --tree before=/tmp/old --tree after=.   # A/B two trees

``--tree NAME=DIR`` runs the service from another checkout (``import app`` resolves to DIR), as
one more configuration interleaved with the others: it measures a code change in-process. The
trees must share the database schema of this one.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bench import holds_seed, runner
from bench.run_holds import BASELINE_BASE, HUGE, migrate

PER_BATCH = 400


async def _call(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    if status != 201:
        raise RuntimeError(f"{path}: status {status}")


async def _batch(app: Any, ids: range, units: list[str], headers: list[Any]) -> float:
    """CPU ms per hold for placements ``ids`` with 8 requests in flight."""
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with sem:
            path = f"/v1/placements/{holds_seed.placement_id(i)}/holds"
            body = json.dumps({"unit_id": units[i % len(units)]}).encode()
            await _call(app, path, body, headers)

    started = time.process_time()
    await asyncio.gather(*(one(i) for i in ids))
    return (time.process_time() - started) * 1000 / len(ids)


async def _sampled(batch: Coroutine[Any, Any, float]) -> float:
    """Run ``batch`` under pyinstrument (a sampling profiler: install it into the venv, it is not
    a project dependency) and print its call tree to stderr, idle time in the loop included."""
    pyinstrument = importlib.import_module("pyinstrument")
    prof = pyinstrument.Profiler(interval=0.0005, async_mode="disabled")
    prof.start()
    result = await batch
    prof.stop()
    print(prof.output_text(unicode=False, show_all=False), file=sys.stderr)
    return result


async def _child(config: str, seed: dict[str, Any], batches: int, profile: int) -> list[float]:
    first = seed["next"][config]
    headers: list[Any] = [(b"host", b"x"), (b"content-type", b"application/json")]
    if config == "baseline":
        from bench import holds_baseline

        app: Any = holds_baseline.app
        first += BASELINE_BASE
    else:
        from app.main import create_app

        app = create_app()
        headers.append((b"authorization", f"Bearer {seed['key']}".encode()))
    units = seed["units"]
    async with app.router.lifespan_context(app):
        await _batch(app, range(first, first + 100), units, headers)  # warm-up
        first += 100
        out = []
        for b in range(batches):
            ids = range(first + b * PER_BATCH, first + (b + 1) * PER_BATCH)
            if profile and b == batches - 1 and os.environ.get("BENCH_PYINSTRUMENT"):
                out.append(await _sampled(_batch(app, ids, units, headers)))
            elif profile and b == batches - 1:
                prof = cProfile.Profile()
                prof.enable()
                out.append(await _batch(app, ids, units, headers))
                prof.disable()
                text = io.StringIO()
                stats = pstats.Stats(prof, stream=text).sort_stats("tottime")
                stats.print_stats(profile)
                stats.sort_stats("cumulative").print_stats(profile)
                print(text.getvalue(), file=sys.stderr)
            else:
                out.append(await _batch(app, ids, units, headers))
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="baseline,service")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="print N cProfile lines")
    parser.add_argument(
        "--tree", action="append", default=[], metavar="NAME=DIR", help="service from DIR"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    trees: dict[str, Path] = {}
    for spec in args.tree:
        name, _, path = spec.partition("=")
        trees[name] = Path(path).resolve()
    if args.child:
        import uvloop

        seed = json.loads(os.environ["BENCH_SEED_JSON"])
        print(json.dumps(uvloop.run(_child(args.child, seed, args.batches, args.profile))))
        return 0
    configs = ["service"] if args.profile else args.configs.split(",")
    if trees:
        configs = [c for c in configs if c == "baseline"] + list(trees)
    repeats = 1 if args.profile else args.repeats
    per_child = 100 + args.batches * PER_BATCH
    work = Path(tempfile.mkdtemp(prefix="jph-"))
    work.chmod(0o755)
    pg = runner.PgCluster(root=work / "pg", port=runner.free_port())
    try:
        url = pg.start()
        migrate(url)
        seeded = asyncio.run(holds_seed.seed_registry(url, units=300, seed=42))
        asyncio.run(holds_seed.set_capacity(url, seeded["units"], free=HUGE))
        services = sum(1 for c in configs if c != "baseline")
        n = per_child * repeats + 1
        asyncio.run(holds_seed.seed_placements(url, seeded["key"], first=1, count=n * services))
        asyncio.run(
            holds_seed.seed_placements(url, seeded["key"], first=BASELINE_BASE + 1, count=n)
        )
        env = {
            **os.environ,
            "JUISTEPLEK_DATABASE_URL": url,
            "BENCH_DATABASE_URL": url,
            "BENCH_POOL_SIZE": "16",
            "JUISTEPLEK_DB_POOL_SIZE": "16",
            "JUISTEPLEK_DB_MAX_OVERFLOW": "0",
            "JUISTEPLEK_ACCESS_LOG": "false",
            "JUISTEPLEK_LOG_LEVEL": "WARNING",
        }
        results: dict[str, list[float]] = {c: [] for c in configs}
        used = {"baseline": 1, "service": 1}
        for r in range(repeats):
            for config in configs if r % 2 == 0 else configs[::-1]:
                key = "baseline" if config == "baseline" else "service"
                seed = {**seeded, "next": {key: used[key]}}
                argv_ = [sys.executable, "-m", "bench.holds_cpu", "--child", key]
                argv_ += ["--batches", str(args.batches), "--profile", str(args.profile)]
                out = subprocess.run(
                    argv_,
                    cwd=trees.get(config, runner.ROOT),
                    env={**env, "BENCH_SEED_JSON": json.dumps(seed)},
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if out.returncode:
                    raise SystemExit(f"{config} failed:\n{out.stderr[-3000:]}")
                if args.profile:
                    print(out.stderr)
                used[key] += per_child
                results[config] += json.loads(out.stdout.strip().splitlines()[-1])
        base = statistics.median(results.get("baseline") or [float("nan")])
        print("| configuration | CPU ms/hold (median) | min | x baseline |")
        print("|---|---:|---:|---:|")
        for config, values in results.items():
            med = statistics.median(values)
            print(f"| {config} | {med:.3f} | {min(values):.3f} | {med / base:.2f} |")
        return 0
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
