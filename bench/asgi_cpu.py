"""In-process CPU per search request: the ASGI apps called directly, no HTTP server, no wrk.

Much less noisy than the HTTP benchmark on a shared machine, so it resolves differences of
0.1 ms/request between service variants (bench/variants.py). Each configuration runs in its own
process (patches are applied at start-up), in interleaved order, 3 times.

    .venv/bin/python -m bench.asgi_cpu                          # baseline, service, variants
    .venv/bin/python -m bench.asgi_cpu --configs baseline,service,all_fixes
    BENCH_PYINSTRUMENT=1 .venv/bin/python -m bench.asgi_cpu --configs service --repeats 1

``BENCH_PYINSTRUMENT=1`` samples each child's last batch with pyinstrument (install it into the
venv; it is not a project dependency) and prints the call tree.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bench import runner

CARE_TYPES = ["elv_high"] * 3 + ["elv_low"] * 2 + ["elv_palliative", "grz", "grz", "wlz_crisis"]
CARE_TYPES += ["ggz_crisis", "district_nursing_acute", "district_nursing", "local_other"]
CONFIGS = "baseline,service,scope_uncached"


def queries(subregions: list[dict[str, Any]], n: int, seed: int = 7) -> list[str]:
    """The same mix as bench/search.lua."""
    rng, out = random.Random(seed), []
    for _ in range(n):
        s = rng.choice(subregions)
        q = f"care_type={rng.choice(CARE_TYPES)}&subregion={s['code']}"
        if rng.random() < 0.6:
            q += "&target_group=" + rng.choice(["somatic"] * 3 + ["psychogeriatric"])
        if rng.random() < 0.5:
            q += "&escalate=true"
        if rng.random() < 0.5:
            lat, lon = s["lat"] + (rng.random() - 0.5) * 0.2, s["lon"] + (rng.random() - 0.5) * 0.3
            q += f"&near={lat:.4f},{lon:.4f}"
        out.append(q)
    return out


async def _call(app: Any, query: str, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/availability",
        "raw_path": b"/v1/availability",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    if status != 200:
        raise RuntimeError(f"{query}: status {status}")


async def _batch(app: Any, qs: list[str], headers: list[tuple[bytes, bytes]]) -> float:
    """CPU ms per request for ``qs`` with 8 requests in flight."""
    sem = asyncio.Semaphore(8)

    async def one(q: str) -> None:
        async with sem:
            await _call(app, q, headers)

    started = time.process_time()
    await asyncio.gather(*(one(q) for q in qs))
    return (time.process_time() - started) * 1000 / len(qs)


async def _child(config: str, seed: dict[str, Any], batches: int) -> list[float]:
    if config == "baseline":
        from bench import baseline_app

        app: Any = baseline_app.app
        headers = [(b"host", b"x")]
    else:
        from bench import variants

        factory = "create_app" if config == "service" else config
        app = getattr(variants, factory)()
        headers = [(b"host", b"x"), (b"authorization", f"Bearer {seed['key']}".encode())]
    qs = queries(seed["subregions"], 400)
    async with app.router.lifespan_context(app):
        await _batch(app, qs[:150], headers)  # warm-up: statement caches, pools
        out = [await _batch(app, qs, headers) for _ in range(batches - 1)]
        if os.environ.get("BENCH_PYINSTRUMENT"):
            out.append(await _sampled(_batch(app, qs, headers)))
        else:
            out.append(await _batch(app, qs, headers))
        return out


async def _sampled(batch: Coroutine[Any, Any, float]) -> float:
    """Run ``batch`` under pyinstrument (a sampling profiler: install it into the venv, it is not
    a project dependency) and print its call tree to stderr."""
    pyinstrument = importlib.import_module("pyinstrument")
    prof = pyinstrument.Profiler(interval=0.0005, async_mode="disabled")
    prof.start()
    result = await batch
    prof.stop()
    print(prof.output_text(unicode=False, show_all=False), file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=CONFIGS)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one configuration, in this process
        import uvloop

        seed = json.loads(os.environ["BENCH_SEED_JSON"])
        print(json.dumps(uvloop.run(_child(args.child, seed, 3))))
        return 0
    work = Path(tempfile.mkdtemp(prefix="jpa-"))
    work.chmod(0o755)
    pg = runner.PgCluster(root=work / "pg", port=runner.free_port())
    try:
        url = pg.start()
        seed = runner.migrate_and_seed(url, work, units=args.units, seed=42)
        env = {
            **os.environ,
            "JUISTEPLEK_DATABASE_URL": url,
            "BENCH_DATABASE_URL": url,
            "BENCH_POOL_SIZE": "16",
            "JUISTEPLEK_DB_POOL_SIZE": "16",
            "JUISTEPLEK_DB_MAX_OVERFLOW": "0",
            "JUISTEPLEK_ACCESS_LOG": "false",
            "JUISTEPLEK_LOG_LEVEL": "WARNING",
            "BENCH_SEED_JSON": json.dumps(seed),
        }
        configs = args.configs.split(",")
        results: dict[str, list[float]] = {c: [] for c in configs}
        for r in range(args.repeats):
            for config in configs if r % 2 == 0 else configs[::-1]:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.asgi_cpu", "--child", config],
                    cwd=runner.ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if out.returncode:
                    raise SystemExit(f"{config} failed:\n{out.stderr[-3000:]}")
                if os.environ.get("BENCH_PYINSTRUMENT"):
                    print(f"## {config}\n{out.stderr}")
                results[config] += json.loads(out.stdout.strip().splitlines()[-1])
        base = statistics.median(results.get("baseline") or [float("nan")])
        print("| configuration | CPU ms/request (median) | min | x baseline |")
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
