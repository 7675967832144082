"""Shared machinery for paired benchmarks: PostgreSQL, servers, wrk, CPU, gates.

A benchmark module (``bench.run_search``; a holds benchmark can be added the same way) builds two
:class:`Target` s, a service and its bare baseline, and calls :func:`run_paired` with its own wrk
Lua script and arguments, then :func:`summarise` and :func:`markdown`. Everything here is generic:
nothing knows which endpoint is measured.

Measured per round and target: wrk req/s and p50/p99, app CPU ms/request (utime+stime of the
uvicorn process tree from ``/proc/<pid>/stat``), PostgreSQL CPU ms/request (the process tree of
our own postmaster, so another cluster on the machine is not counted) and CPU steal
(``/proc/stat``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "asyncpg",
    "orjson",
    "pydantic",
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- PostgreSQL ---------------------------------------------------------------------------------


@dataclass
class PgCluster:
    """A throw-away cluster via scripts/pg-cluster.sh (default durability: no PGEXTRA)."""

    root: Path
    port: int
    db: str = "juisteplek"
    url: str = ""

    @property
    def _env(self) -> dict[str, str]:
        env = {**os.environ, "PGROOT": str(self.root), "PGPORT": str(self.port), "PGDB": self.db}
        env.pop("PGEXTRA", None)
        return env

    def start(self) -> str:
        script = ROOT / "scripts" / "pg-cluster.sh"
        out = subprocess.run(
            ["bash", str(script), "start"],
            env=self._env,
            check=True,
            capture_output=True,
            text=True,
            timeout=180,
        )
        self.url = out.stdout.strip().splitlines()[-1]
        return self.url

    def stop(self) -> None:
        script = ROOT / "scripts" / "pg-cluster.sh"
        subprocess.run(["bash", str(script), "stop"], env=self._env, check=False, timeout=60)

    def postmaster_pid(self) -> int:
        return int((self.root / "data" / "postmaster.pid").read_text().split()[0])

    def psql(self, sql: str) -> str:
        argv = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", self.db]
        out = subprocess.run(
            [*argv, "-Atc", sql],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip()


def migrate_and_seed(url: str, work: Path, *, units: int, seed: int) -> dict[str, Any]:
    """``juisteplek migrate`` then ``bench.seed_national``; returns the seed file's JSON."""
    env = {**os.environ, "JUISTEPLEK_DATABASE_URL": url}
    py = sys.executable
    migrate = [py, "-c", "from app.cli import main; main()", "migrate"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
    out = work / "seed.json"
    argv = [py, "-m", "bench.seed_national", "--url", url, "--units", str(units), "--seed"]
    subprocess.run([*argv, str(seed), "--out", str(out)], cwd=ROOT, check=True, timeout=300)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


# --- servers ------------------------------------------------------------------------------------


@dataclass
class Target:
    """One HTTP server under test: started as a process tree whose CPU we account."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    lua_args: list[str] = field(default_factory=list)  # passed to the wrk script after "--"
    headers: dict[str, str] = field(default_factory=dict)  # for probes
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> None:
        out = (log_dir / f"{self.name}.log").open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited during start-up")
            try:
                status, _ = http_get(self.base_url + path, self.headers, timeout=5)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready within {timeout} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # uvicorn's master stops its workers
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
            self.proc.wait(timeout=5)


def http_get(url: str, headers: dict[str, str], timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)  # loopback only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- CPU accounting -----------------------------------------------------------------------------


def _proc_stats() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime+stime+cutime+cstime in ticks) for every live process."""
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw.rsplit(")", 1)[1].split()
        # fields[1] = ppid (4), fields[11..14] = utime, stime, cutime, cstime (14-17)
        stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return stats


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU used so far by a process tree (live processes plus the children they reaped)."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo += children.get(pid, [])
    return total / CLK_TCK


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds: target tree, postmaster tree, waited children (wrk) and the whole machine."""

    app: float
    pg: float
    children: float
    busy: float  # user + nice + system of all CPUs (irq/softirq are not charged to processes)
    steal: float
    total: float

    @classmethod
    def take(cls, app_pid: int, pg_pid: int) -> Snapshot:
        # user nice system idle iowait irq softirq steal (guest time is included in user)
        cpu = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            app=tree_cpu_seconds(app_pid),
            pg=tree_cpu_seconds(pg_pid),
            children=usage.ru_utime + usage.ru_stime,
            busy=(cpu[0] + cpu[1] + cpu[2]) / CLK_TCK,
            steal=cpu[7] / CLK_TCK,
            total=sum(cpu) / CLK_TCK,
        )


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(text: str) -> WrkResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", text)
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", text, re.MULTILINE))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if done is None or "50" not in latency or "99" not in latency:
        raise RuntimeError(f"cannot parse wrk output:\n{text}")
    requests = int(done.group(1))
    seconds = _ms(done.group(2) + done.group(3)) / 1000
    names = ("connect", "read", "write", "timeout")
    return WrkResult(
        requests=requests,
        seconds=seconds,
        rps=requests / seconds,
        p50_ms=_ms(latency["50"]),
        p99_ms=_ms(latency["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=dict(zip(names, map(int, errors.groups()), strict=True)) if errors else {},
    )


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    log("installing wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False).returncode:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True)
    return shutil.which("wrk") or "wrk"


def run_wrk(
    target: Target, script: Path, seconds: float, *, connections: int, threads: int = 1
) -> WrkResult:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    argv += ["--timeout", "2s", "-s", str(script), target.base_url, "--", *target.lua_args]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
    if out.returncode:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    return parse_wrk(out.stdout)


# --- paired rounds ------------------------------------------------------------------------------


@dataclass
class Round:
    target: str
    round: int
    position: int  # 0 = first in its round, 1 = second (ABBA)
    rps: float
    p50_ms: float
    p99_ms: float
    app_cpu_ms_per_req: float
    pg_cpu_ms_per_req: float
    steal_pct: float
    other_cpu_pct: float  # machine CPU used by processes outside this benchmark, % of all CPUs
    wrk_cpu_ms_per_req: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]


def measure(
    target: Target,
    pg: PgCluster,
    script: Path,
    seconds: float,
    *,
    connections: int,
    round_no: int,
    position: int,
) -> Round:
    assert target.proc is not None
    pg_pid = pg.postmaster_pid()
    s0 = Snapshot.take(target.proc.pid, pg_pid)
    wrk = run_wrk(target, script, seconds, connections=connections)
    s1 = Snapshot.take(target.proc.pid, pg_pid)
    n = max(1, wrk.requests)
    app, pg_cpu, load = s1.app - s0.app, s1.pg - s0.pg, s1.children - s0.children
    total = max(1e-9, s1.total - s0.total)
    other = (s1.busy - s0.busy) - app - pg_cpu - load
    return Round(
        target=target.name,
        round=round_no,
        position=position,
        rps=round(wrk.rps, 1),
        p50_ms=round(wrk.p50_ms, 2),
        p99_ms=round(wrk.p99_ms, 2),
        app_cpu_ms_per_req=round(app * 1000 / n, 3),
        pg_cpu_ms_per_req=round(pg_cpu * 1000 / n, 3),
        steal_pct=round(100 * (s1.steal - s0.steal) / total, 1),
        other_cpu_pct=round(max(0.0, 100 * other / total), 1),
        wrk_cpu_ms_per_req=round(load * 1000 / n, 3),
        requests=wrk.requests,
        non_2xx=wrk.non_2xx,
        socket_errors=wrk.socket_errors,
    )


def run_paired(
    a: Target,
    b: Target,
    pg: PgCluster,
    script: Path,
    *,
    rounds: int,
    seconds: float,
    warmup: float,
    connections: int,
) -> list[Round]:
    """Warm up each target, then ``rounds`` rounds in ABBA order (A B, B A, A B, ...)."""
    for target in (a, b):
        if warmup > 0:
            log(f"warm-up {target.name} {warmup:g} s")
            run_wrk(target, script, warmup, connections=connections)
    results = []
    for r in range(rounds):
        for position, target in enumerate((a, b) if r % 2 == 0 else (b, a)):
            result = measure(
                target, pg, script, seconds, connections=connections, round_no=r, position=position
            )
            log(
                f"round {r + 1}/{rounds} {target.name:<9} {result.rps:8.1f} req/s  "
                f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
                f"app {result.app_cpu_ms_per_req:.3f} ms/req  pg {result.pg_cpu_ms_per_req:.3f}"
                f" ms/req  steal {result.steal_pct:.0f}%  other {result.other_cpu_pct:.0f}%"
            )
            results.append(result)
            if not target.alive():
                raise RuntimeError(f"{target.name} died during the run")
    return results


# --- summary, gates, output ---------------------------------------------------------------------


@dataclass(frozen=True)
class Goals:
    """Service/baseline targets (bench/README.md) and validity gates."""

    rps_ratio_min: float = 0.5
    app_cpu_ratio_max: float = 3.0
    pg_cpu_ratio_max: float = 1.5
    p99_ratio_max: float = 4.0  # sanity check, not a target
    max_steal_pct: float = 20.0
    max_other_cpu_pct: float = 25.0  # other work on a shared machine, % of all CPUs
    max_baseline_rps_cv_pct: float = 15.0
    allow_non_2xx: bool = False


METRICS: tuple[str, ...] = ("rps", "p50_ms", "p99_ms", "app_cpu_ms_per_req", "pg_cpu_ms_per_req")
METRICS += ("steal_pct", "other_cpu_pct")


def _cv_pct(values: Sequence[float]) -> float:
    if len(values) < 2 or statistics.mean(values) == 0:
        return 0.0
    return 100 * statistics.stdev(values) / statistics.mean(values)


def summarise(rounds: list[Round], service: str, baseline: str, goals: Goals) -> dict[str, Any]:
    per: dict[str, dict[str, Any]] = {}
    for name in (baseline, service):
        mine = [r for r in rounds if r.target == name]
        per[name] = {m: round(statistics.median(getattr(r, m) for r in mine), 3) for m in METRICS}
        per[name]["rps_cv_pct"] = round(_cv_pct([r.rps for r in mine]), 1)
        per[name]["app_cpu_cv_pct"] = round(_cv_pct([r.app_cpu_ms_per_req for r in mine]), 1)
    by_round = {(r.target, r.round): r for r in rounds}
    n_rounds = max(r.round for r in rounds) + 1
    ratios: dict[str, list[float]] = {m: [] for m in METRICS[:5]}
    for i in range(n_rounds):
        s, b = by_round[(service, i)], by_round[(baseline, i)]
        for m in ratios:
            ratios[m].append(round(getattr(s, m) / max(getattr(b, m), 1e-9), 3))
    ratio = {m: round(statistics.median(v), 3) for m, v in ratios.items()}
    flags = []
    worst_steal = max(r.steal_pct for r in rounds)
    if worst_steal > goals.max_steal_pct:
        flags.append(f"steal {worst_steal:.0f}% > {goals.max_steal_pct:g}% in a round")
    worst_other = max(r.other_cpu_pct for r in rounds)
    if worst_other > goals.max_other_cpu_pct:
        flags.append(f"other processes used {worst_other:.0f}% of the machine in a round")
    if per[baseline]["rps_cv_pct"] > goals.max_baseline_rps_cv_pct:
        flags.append(
            f"baseline req/s CV {per[baseline]['rps_cv_pct']}% > {goals.max_baseline_rps_cv_pct:g}%"
        )
    if any(sum(r.socket_errors.values()) for r in rounds):
        flags.append("wrk socket errors or timeouts")
    if not goals.allow_non_2xx and any(r.non_2xx for r in rounds):
        flags.append("unexpected non-2xx responses")
    verdicts = {
        "rps_ratio": [
            ratio["rps"],
            f">= {goals.rps_ratio_min}",
            ratio["rps"] >= goals.rps_ratio_min,
        ],
        "app_cpu_ratio": [
            ratio["app_cpu_ms_per_req"],
            f"<= {goals.app_cpu_ratio_max}",
            ratio["app_cpu_ms_per_req"] <= goals.app_cpu_ratio_max,
        ],
        "pg_cpu_ratio": [
            ratio["pg_cpu_ms_per_req"],
            f"<= {goals.pg_cpu_ratio_max}",
            ratio["pg_cpu_ms_per_req"] <= goals.pg_cpu_ratio_max,
        ],
        "p99_ratio (sanity)": [
            ratio["p99_ms"],
            f"<= {goals.p99_ratio_max}",
            ratio["p99_ms"] <= goals.p99_ratio_max,
        ],
    }
    return {
        "service": service,
        "baseline": baseline,
        "medians": per,
        "paired_ratios": ratios,
        "median_paired_ratio": ratio,
        "verdicts": verdicts,
        "valid": not flags,
        "flags": flags,
        "rounds": [asdict(r) for r in rounds],
    }


def timed_attempts(
    service: Target,
    baseline: Target,
    pg: PgCluster,
    script: Path,
    *,
    attempts: int,
    smoke: bool,
    rounds: int,
    seconds: float,
    warmup: float,
    connections: int,
    goals: Goals | None = None,
) -> list[dict[str, Any]]:
    """The timed phase, repeated (up to ``attempts``) until a run passes the validity gates;
    one summary per attempt, the last one the result. Exits if a target died meanwhile."""
    goals = goals or Goals()
    results: list[dict[str, Any]] = []
    for attempt in range(attempts):
        log(f"timed phase, attempt {attempt + 1}/{attempts}")
        rows = run_paired(
            service,
            baseline,
            pg,
            script,
            rounds=rounds,
            seconds=seconds,
            warmup=warmup,
            connections=connections,
        )
        results.append(summarise(rows, service.name, baseline.name, goals))
        if smoke or results[-1]["valid"]:
            break
        log(f"run flagged invalid: {results[-1]['flags']}")
    for target in (service, baseline):
        if not target.alive():
            raise SystemExit(f"{target.name} crashed")
    return results


def markdown(summary: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    labels = labels or {}
    lines = [
        "| target | req/s | p50 ms | p99 ms | app CPU ms/req | PG CPU ms/req | steal % | other % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in (summary["baseline"], summary["service"]):
        m = summary["medians"][name]
        lines.append(
            f"| {labels.get(name, name)} | {m['rps']:,.0f} | {m['p50_ms']:.1f} "
            f"| {m['p99_ms']:.1f} | {m['app_cpu_ms_per_req']:.3f} "
            f"| {m['pg_cpu_ms_per_req']:.3f} | {m['steal_pct']:.0f} | {m['other_cpu_pct']:.0f} |"
        )
    r = summary["median_paired_ratio"]
    lines.append(
        f"| **service / baseline** (median of per-round ratios) | **{r['rps']:.2f}x** "
        f"| {r['p50_ms']:.2f}x | {r['p99_ms']:.2f}x | **{r['app_cpu_ms_per_req']:.2f}x** "
        f"| **{r['pg_cpu_ms_per_req']:.2f}x** | | |"
    )
    lines += ["", "| goal | measured | target | met |", "|---|---:|---|---|"]
    for goal, (value, target, met) in summary["verdicts"].items():
        lines.append(f"| {goal} | {value:.2f} | {target} | {'yes' if met else '**no**'} |")
    lines.append("")
    lines.append(
        "Run valid (validity gates): "
        + ("yes" if summary["valid"] else "**no**: " + "; ".join(summary["flags"]))
    )
    return "\n".join(lines)


def rounds_markdown(rounds: list[dict[str, Any]]) -> str:
    lines = [
        "| round | target | req/s | p50 ms | p99 ms | app CPU ms/req | PG CPU ms/req | steal % "
        "| other % |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rounds:
        lines.append(
            f"| {r['round'] + 1} | {r['target']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['app_cpu_ms_per_req']:.3f} | {r['pg_cpu_ms_per_req']:.3f} "
            f"| {r['steal_pct']:.0f} | {r['other_cpu_pct']:.0f} |"
        )
    return "\n".join(lines)


def machine_info(pg: PgCluster | None) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    wrk_path = shutil.which("wrk")
    wrk = subprocess.run([wrk_path or "true", "-v"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else None,
        "mem_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg.psql("SHOW server_version") if pg is not None else None,
        "wrk": (wrk.stdout or wrk.stderr).split(" [")[0].strip() if wrk_path else None,
        "packages": versions,
        "git_commit": commit.stdout.strip() or None,
    }


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{time.strftime('%Y-%m-%d')}-{name}.json"
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path
