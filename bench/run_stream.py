"""Live-push benchmark: N open ``/v1/stream`` subscribers, 50 capacity changes, time to the last.

    .venv/bin/python -m bench.run_stream --subscribers 10000 --instances 2
    .venv/bin/python -m bench.run_stream --smoke     # or CI=true: 200 subscribers, 10 changes

Starts its own PostgreSQL (scripts/pg-cluster.sh, default durability), migrates and seeds
(bench.seed_national, 1,000 units), starts one or two app instances (uvicorn, one worker each;
with two, every change reaches the second instance through PostgreSQL LISTEN/NOTIFY), and opens
the subscribers from separate client processes (bench.stream_clients; so the client is not what
limits the figure), split evenly over the instances. Then it writes the changes at a steady rate
(``PUT /v1/units/{id}/capacity`` on the first instance, each acknowledged before the next) and
records for each change the time from sending the write until the last subscriber had the event:
p50, p99 and max over the changes, and whether every subscriber got every change. Also: the app's
RSS per open stream (RSS with the subscribers minus RSS before, per stream) and its CPU per
delivered event (app CPU during the write phase / deliveries). Full runs write
bench/results/<date>-stream-<n>x<instances>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from bench import runner
from bench.runner import PgCluster, Target, log

CLIENTS_PER_PROCESS = 2_500


def _rss_bytes(root_pid: int) -> int:
    """Resident memory of a process tree (uvicorn's master and its worker)."""
    pids = [root_pid]
    children = Path(f"/proc/{root_pid}/task/{root_pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def _put(base: str, key: str, unit_id: str, free: int) -> None:
    request = urllib.request.Request(  # loopback only
        f"{base}/v1/units/{unit_id}/capacity",
        data=json.dumps({"free": free}).encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise RuntimeError(f"capacity write answered {response.status}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    smoke_default = os.environ.get("CI", "").lower() == "true"
    parser = argparse.ArgumentParser(description="N SSE subscribers, time until the last has it")
    parser.add_argument("--smoke", action="store_true", default=smoke_default)
    parser.add_argument("--subscribers", type=int)
    parser.add_argument("--instances", type=int, choices=(1, 2), default=1)
    parser.add_argument("--changes", type=int)
    parser.add_argument("--rate", type=float, default=2.0, help="changes per second")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after writes")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="stream heartbeat seconds")
    parser.add_argument("--keep", action="store_true", help="leave the work dir (logs, data)")
    args = parser.parse_args(argv)
    subscribers = args.subscribers or (200 if args.smoke else 1_000)
    changes = args.changes or (10 if args.smoke else 50)
    started = time.monotonic()

    work = Path(tempfile.mkdtemp(prefix="jpst-"))
    work.chmod(0o755)  # the postgres user must traverse it
    pg = PgCluster(root=work / "pg", port=runner.free_port())
    targets: list[Target] = []
    clients: list[subprocess.Popen[str]] = []
    try:
        log(f"PostgreSQL on port {pg.port} under {pg.root}")
        url = pg.start()
        seed = runner.migrate_and_seed(url, work, units=1_000, seed=7)
        query = "SELECT id FROM unit WHERE staffed_capacity >= 2 AND active ORDER BY id LIMIT"
        units = pg.psql(f"{query} {changes}").split()
        admin_key = f"jp_bench_{secrets.token_urlsafe(24)}"
        py = sys.executable
        for i in range(args.instances):
            port = runner.free_port()
            target = Target(
                name=f"app{i}",
                argv=[
                    *(py, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
                    *("--workers", "1", "--no-access-log", "--log-level", "warning"),
                    *("--backlog", "4096", "--factory", "app.main:create_app"),
                ],
                env={
                    "JUISTEPLEK_DATABASE_URL": url,
                    "JUISTEPLEK_ADMIN_KEY": admin_key,
                    "JUISTEPLEK_ACCESS_LOG": "false",
                    "JUISTEPLEK_LOG_LEVEL": "WARNING",
                    "JUISTEPLEK_STREAM_HEARTBEAT_SECONDS": str(args.heartbeat),
                    "JUISTEPLEK_STREAM_MAX_PER_KEY": str(subscribers),
                    "JUISTEPLEK_STREAM_MAX_PER_INSTANCE": str(subscribers),
                },
                port=port,
                headers={"Authorization": f"Bearer {seed['key']}"},
            )
            target.start(work)
            target.wait_ready("/readyz")
            targets.append(target)
        rss_before = [_rss_bytes(t.proc.pid) for t in targets if t.proc is not None]

        per_target = [subscribers // len(targets)] * len(targets)
        per_target[0] += subscribers - sum(per_target)
        for target, count in zip(targets, per_target, strict=True):
            while count > 0:
                n = min(CLIENTS_PER_PROCESS, count)
                count -= n
                argv = [py, "-m", "bench.stream_clients", "--port", str(target.port)]
                clients.append(
                    subprocess.Popen(
                        [*argv, "--key", seed["key"], "--count", str(n)],
                        cwd=runner.ROOT,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
        connected = failed = 0
        for client in clients:
            assert client.stdout is not None
            _, ok, bad = client.stdout.readline().split()
            connected, failed = connected + int(ok), failed + int(bad)
        log(f"{connected} subscribers connected ({failed} failed) in {len(clients)} processes")
        time.sleep(1.0)
        rss_after = [_rss_bytes(t.proc.pid) for t in targets if t.proc is not None]
        app_pids = [t.proc.pid for t in targets if t.proc is not None]
        cpu_before = sum(runner.tree_cpu_seconds(pid) for pid in app_pids)

        sent: list[float] = []
        interval = 1.0 / args.rate
        next_at = time.monotonic()
        for i in range(changes):
            next_at += interval
            sent.append(time.monotonic())
            _put(targets[0].base_url, admin_key, units[i % len(units)], i % 2)
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(args.settle)
        cpu_used = sum(runner.tree_cpu_seconds(pid) for pid in app_pids) - cpu_before

        tallies: list[dict[str, Any]] = []
        for client in clients:
            stdin: IO[str] | None = client.stdin
            assert stdin is not None
            assert client.stdout is not None
            stdin.write("stop\n")
            stdin.flush()
            tallies.append(json.loads(client.stdout.readline()))
            client.wait(timeout=30)
        # The i-th capacity event (by outbox id) is the i-th write: nothing else writes meanwhile.
        ids = sorted({int(i) for t in tallies for i in t["events"]})[-changes:]
        per_change = []
        for write_at, ident in zip(sent, ids, strict=False):
            got = sum(t["events"].get(str(ident), [0])[0] for t in tallies)
            last = max(t["events"][str(ident)][2] for t in tallies if str(ident) in t["events"])
            per_change.append({"id": ident, "received_by": got, "last_s": last - write_at})
        latencies = [c["last_s"] for c in per_change]
        complete = len(per_change) == changes and all(
            c["received_by"] == connected for c in per_change
        )
        deliveries = sum(c["received_by"] for c in per_change)
        result = {
            "benchmark": "live push (GET /v1/stream)",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": runner.machine_info(pg),
            "method": {
                "subscribers": subscribers,
                "instances": args.instances,
                "workers_per_instance": 1,
                "client_processes": len(clients),
                "changes": changes,
                "rate_per_s": args.rate,
                "heartbeat_s": args.heartbeat,
            },
            "connected": connected,
            "failed": failed,
            "closed_early": sum(t["closed_early"] for t in tallies),
            "heartbeats": sum(t["heartbeats"] for t in tallies),
            "every_change_reached_everyone": complete,
            "to_last_subscriber_s": {
                "p50": round(statistics.median(latencies), 4) if latencies else None,
                "p99": round(_percentile(latencies, 0.99), 4) if latencies else None,
                "max": round(max(latencies), 4) if latencies else None,
            },
            "rss_per_stream_kb": round(
                (sum(rss_after) - sum(rss_before)) / max(1, connected) / 1024, 1
            ),
            "rss_mib": {
                "before": [b >> 20 for b in rss_before],
                "with": [a >> 20 for a in rss_after],
            },
            "app_cpu_us_per_delivered_event": round(cpu_used / max(1, deliveries) * 1e6, 2),
            "per_change": per_change,
            "seconds": round(time.monotonic() - started, 1),
        }
        log(
            f"{connected} subscribers x {args.instances} instance(s): "
            f"complete={complete} to-last p50/p99/max = "
            f"{result['to_last_subscriber_s']} s, RSS/stream {result['rss_per_stream_kb']} KB, "
            f"CPU/event {result['app_cpu_us_per_delivered_event']} us"
        )
        if args.smoke:
            return 0 if complete and failed == 0 else 1
        path = runner.write_json(f"stream-{subscribers}x{args.instances}", result)
        log(f"wrote {path}")
        print(json.dumps({k: v for k, v in result.items() if k != "per_change"}, indent=1))
        return 0
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
        for target in targets:
            target.stop()
        pg.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
