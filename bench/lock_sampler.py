"""Lock-wait sampling for the benchmarks: who waits on whose lock, from ``pg_stat_activity``.

A thread polls PostgreSQL every ``interval`` seconds for backends waiting on a heavyweight lock,
with the statement they wait in, the lock type and the statements of the backends blocking them
(``pg_blocking_pids``). Each wait is put in a class by what it waits for:

- ``advisory``: an advisory lock; the access log's former single chain lock, one for every
  audited write of every placement (a wait across placements by construction);
- ``audit chain head``: the row of one chain head, i.e. of the same placement;
- ``held by the audit checkpoint``: a head the checkpoint task is signing (a short batch);
- ``placement row``: the same placement (its version-checked update, its one active hold);
- ``unit capacity row``: the same unit (the overbooking check; another placement may hold it);
- ``notify queue at commit``: PostgreSQL serialises the commits of transactions that sent a
  NOTIFY (the outbox's ``pg_notify``) on one database-wide lock, held through the commit;
- ``other``: anything else, with the lock type.

Diagnostic only: a sample is a snapshot, short waits fall between samples.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

import asyncpg

SAMPLE_SQL = """
SELECT w.pid, w.application_name, l.locktype,
       left(regexp_replace(w.query, '\\s+', ' ', 'g'), 120) AS waiting,
       left(regexp_replace(b.query, '\\s+', ' ', 'g'), 120) AS blocker, b.state AS blocker_state
FROM pg_stat_activity w
JOIN pg_locks l ON l.pid = w.pid AND NOT l.granted
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
JOIN pg_stat_activity b ON b.pid = bp.pid
WHERE w.wait_event_type = 'Lock' AND w.datname = current_database()
"""

NOTIFY_QUEUE = "notify queue at commit"
CROSS_PLACEMENT = frozenset({"advisory"})


def classify(locktype: str, waiting: str, blocker: str = "") -> str:
    q = waiting.lower()
    b = blocker.lower()
    if "audit_checkpoint" in b or "skip locked" in b or "set checkpointed_seq" in b:
        return "held by the audit checkpoint"
    if locktype == "advisory":
        return "advisory"
    if locktype == "object":
        # The only object lock these writes wait on: the database's notify queue, which a
        # transaction that sent a NOTIFY takes at COMMIT and holds through the commit record.
        return NOTIFY_QUEUE
    if "audit_chain_head" in q:
        return "audit chain head"
    if "unit_capacity" in q:
        return "unit capacity row"
    if "placement" in q:
        return "placement row"
    return f"other ({locktype})"


class LockSampler:
    """``start()`` before the timed phase, ``stop()`` after: returns the summary."""

    def __init__(self, dsn: str, *, interval: float = 0.05) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0
        self.with_waits = 0
        self.waits: Counter[tuple[str, str]] = Counter()  # (side, class)
        self.examples: dict[str, dict[str, Any]] = {}
        self.max_waiting = 0
        self.error: str | None = None
        self.started = 0.0
        self.seconds = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._main, name="lock-sampler", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:  # reported in the summary, never fatal
            self.error = repr(exc)

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "lock-sampler"})
        try:
            while not self._stop.is_set():
                rows = await conn.fetch(SAMPLE_SQL)
                self.samples += 1
                waiting = {r["pid"] for r in rows}
                if rows:
                    self.with_waits += 1
                    self.max_waiting = max(self.max_waiting, len(waiting))
                seen: set[tuple[int, str]] = set()
                for r in rows:
                    kind = classify(r["locktype"], r["waiting"] or "", r["blocker"] or "")
                    if (r["pid"], kind) in seen:
                        continue  # one wait, several blockers
                    seen.add((r["pid"], kind))
                    side = (
                        "baseline"
                        if (r["application_name"] or "").startswith("bench-holds-baseline")
                        else "service"
                    )
                    self.waits[(side, kind)] += 1
                    self.examples.setdefault(
                        kind,
                        {
                            "locktype": r["locktype"],
                            "waiting": r["waiting"],
                            "blocker": r["blocker"],
                            "blocker_state": r["blocker_state"],
                        },
                    )
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.seconds = time.monotonic() - self.started
        cross = sum(n for (_, kind), n in self.waits.items() if kind in CROSS_PLACEMENT)
        return {
            "interval_seconds": self.interval,
            "seconds": round(self.seconds, 1),
            "samples": self.samples,
            "samples_with_lock_waits": self.with_waits,
            "max_backends_waiting": self.max_waiting,
            "waits": {f"{side}: {kind}": n for (side, kind), n in sorted(self.waits.items())},
            "cross_placement_waits": cross,
            "examples": self.examples,
            "error": self.error,
        }


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"lock sampling: {summary['samples']} samples every {summary['interval_seconds']} s over"
        f" {summary['seconds']} s; {summary['samples_with_lock_waits']} with a lock wait"
        f" (at most {summary['max_backends_waiting']} backends waiting);"
        f" waits on a lock held for another placement (advisory): "
        f"{summary['cross_placement_waits']}",
    ]
    for name, n in summary["waits"].items():
        lines.append(f"- {name}: {n}")
    for kind, example in summary["examples"].items():
        lines.append(
            f"  - e.g. {kind} ({example['locktype']}): `{example['waiting']}` waits on "
            f"`{example['blocker']}` ({example['blocker_state']})"
        )
    if summary["error"]:
        lines.append(f"- sampler error: {summary['error']}")
    return "\n".join(lines)
