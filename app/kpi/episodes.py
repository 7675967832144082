# ruff: noqa: S608 - SQL is assembled from code constants only (column names, event types).
"""KPI summaries kept current with the writes they summarise (perf-notes.md §5).

Pairing a placement's events at query time costs about 2 s per million events; the cohort
KPIs (lead times, escalations, GGZ crisis) instead read one row per placement, and the capacity
census one row per unit and census day:

* ``placement.kpi_*``: the clinical time of the placement's *first* event (lowest ``seq``, as
  ``app.kpi.formulas.Stay.first`` defines it) of each type the KPIs read, the highest escalation
  reached and the number of expired holds. ``track_event`` updates them in the transaction of
  each transfer event (called by ``app.placement.events.append``). Events arrive in ``seq``
  order, so "first" is "set once": a back-dated event never moves a first time (the reference
  does not either), and ready -> revoked -> ready keeps the first ready time.
* ``kpi_placement_decline``: declined offers per placement and reason code, likewise.
* ``kpi_capacity_day``: per unit and census day the latest report since the previous local
  midnight; ``track_capacity_report`` upserts it in the transaction of each report.

``rebuild_placements`` / ``rebuild_capacity_days`` recompute both from the logs (migration 0006
backfills with them; the benchmark and the property tests load rows in bulk and call them). The
property tests check that the incremental path and the rebuild agree, and that the SQL KPIs read
from them agree with the reference. If these columns ever change, freeze a copy of this SQL into
migration 0006 first.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    SmallInteger,
    String,
    TextClause,
    Uuid,
    bindparam,
    delete,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import UTCDateTime
from app.kpi import formulas as f

# first event of each type -> its column (the reference's Stay.first of each)
FIRST_COLUMNS: Mapping[str, str] = {
    f.REQUEST_CREATED: "kpi_requested_at",
    f.TRIAGED: "kpi_triaged_at",
    f.OFFER_ACCEPTED: "kpi_accepted_at",
    f.MEDICALLY_READY: "kpi_ready_at",
    f.CANCELLED: "kpi_cancelled_at",
}
NATIONAL = "national"
OTHER = "other"  # the reason of a decline without one (formulas.escalations)
TRACKED_TYPES = frozenset({*FIRST_COLUMNS, f.ESCALATED, f.HOLD_EXPIRED, f.OFFER_DECLINED})

_TYPES: Mapping[str, Any] = {
    "id": Uuid(),
    "reason": String(),
    "at": UTCDateTime(),
    "rank": SmallInteger(),
    "unit_id": Uuid(),
    "day_no": Integer(),
    "report_id": BigInteger(),
    "reported_at": UTCDateTime(),
    "free": Integer(),
}


def _sql(sql: str) -> TextClause:
    """``text`` with typed bind parameters (UUIDs and instants are stored differently on SQLite)."""
    return text(sql).bindparams(
        *[bindparam(k, type_=t) for k, t in _TYPES.items() if f":{k}" in sql]
    )


_FIRST_SQL = {
    kind: _sql(f"UPDATE placement SET {col} = :at WHERE id = :id AND {col} IS NULL")
    for kind, col in FIRST_COLUMNS.items()
}
_ESCALATED_SQL = _sql(
    "UPDATE placement SET kpi_escalated = :rank WHERE id = :id AND kpi_escalated < :rank"
)
_EXPIRED_SQL = _sql("UPDATE placement SET kpi_expired_holds = kpi_expired_holds + 1 WHERE id = :id")
_DECLINED_SQL = _sql(
    """
INSERT INTO kpi_placement_decline (placement_id, reason, declines) VALUES (:id, :reason, 1)
ON CONFLICT (placement_id, reason) DO UPDATE SET declines = kpi_placement_decline.declines + 1
"""
)


def escalation_rank(level: str | None) -> int:
    """1: escalated (to any level but national, or none given); 2: national."""
    return 2 if level == NATIONAL else 1


async def track_event(
    conn: AsyncConnection,
    *,
    placement_id: uuid.UUID,
    event_type: str,
    occurred_at: datetime,
    reason: str | None,
    level: str | None,
) -> None:
    """Fold one appended transfer event into its placement's KPI summary (same transaction).
    Event types no KPI summary reads (``offer_sent``, ...) cost nothing."""
    if event_type not in TRACKED_TYPES:
        return
    if event_type == f.OFFER_DECLINED:
        await conn.execute(_DECLINED_SQL, {"id": placement_id, "reason": reason or OTHER})
    elif event_type == f.ESCALATED:
        params: dict[str, Any] = {"id": placement_id, "rank": escalation_rank(level)}
        await conn.execute(_ESCALATED_SQL, params)
    elif event_type == f.HOLD_EXPIRED:
        await conn.execute(_EXPIRED_SQL, {"id": placement_id})
    else:
        await conn.execute(_FIRST_SQL[event_type], {"id": placement_id, "at": occurred_at})


def _first_at_sql(kind: str) -> str:
    return f"MAX(CASE WHEN e.event_type = '{kind}' AND e.seq = m.first_seq THEN e.occurred_at END)"


def _rebuild_placements_sql() -> str:
    types = ", ".join(f"'{t}'" for t in sorted(TRACKED_TYPES))
    firsts = ",\n         ".join(
        f"{_first_at_sql(kind)} AS {col}" for kind, col in FIRST_COLUMNS.items()
    )
    sets = ", ".join(f"{col} = s.{col}" for col in FIRST_COLUMNS.values())
    # Plain SQL that PostgreSQL and SQLite (>= 3.33, UPDATE ... FROM) both run.
    return f"""
UPDATE placement SET {sets}, kpi_escalated = s.kpi_escalated,
       kpi_expired_holds = s.kpi_expired_holds
FROM (
  SELECT e.placement_id,
         {firsts},
         MAX(CASE WHEN e.event_type = '{f.ESCALATED}'
                  THEN CASE WHEN e.level = '{NATIONAL}' THEN 2 ELSE 1 END ELSE 0 END)
           AS kpi_escalated,
         SUM(CASE WHEN e.event_type = '{f.HOLD_EXPIRED}' THEN 1 ELSE 0 END) AS kpi_expired_holds
  FROM transfer_event e
  JOIN (SELECT placement_id, event_type, MIN(seq) AS first_seq FROM transfer_event
        WHERE event_type IN ({types}) GROUP BY placement_id, event_type) m
    ON m.placement_id = e.placement_id AND m.event_type = e.event_type
  WHERE e.event_type IN ({types})
  GROUP BY e.placement_id
) s
WHERE placement.id = s.placement_id
"""


_RESET_PLACEMENTS_SQL = (
    "UPDATE placement SET "
    + ", ".join(f"{col} = NULL" for col in FIRST_COLUMNS.values())
    + ", kpi_escalated = 0, kpi_expired_holds = 0"
)
REBUILD_PLACEMENTS_SQL = (
    _RESET_PLACEMENTS_SQL,
    _rebuild_placements_sql(),
    "DELETE FROM kpi_placement_decline",
    f"""
INSERT INTO kpi_placement_decline (placement_id, reason, declines)
SELECT placement_id, COALESCE(NULLIF(reason, ''), '{OTHER}'), COUNT(*) FROM transfer_event
WHERE event_type = '{f.OFFER_DECLINED}'
GROUP BY placement_id, COALESCE(NULLIF(reason, ''), '{OTHER}')
""",
)


async def rebuild_placements(conn: AsyncConnection) -> None:
    """Recompute every placement's KPI columns and declines from the transfer log."""
    for sql in REBUILD_PLACEMENTS_SQL:
        await conn.execute(text(sql))


# --- capacity census days ----------------------------------------------------------------------


def census_day(reported_at: datetime) -> int:
    """Day number of the first local midnight at or after ``reported_at``: the first census
    moment at which this report can be the latest."""
    return f.local_day(reported_at - timedelta(microseconds=1)) + 1


_UPSERT_DAY_SQL = _sql(
    """
INSERT INTO kpi_capacity_day (unit_id, day_no, report_id, reported_at, free)
VALUES (:unit_id, :day_no, :report_id, :reported_at, :free)
ON CONFLICT (unit_id, day_no) DO UPDATE
SET report_id = excluded.report_id, reported_at = excluded.reported_at, free = excluded.free
WHERE excluded.reported_at > kpi_capacity_day.reported_at
   OR (excluded.reported_at = kpi_capacity_day.reported_at
       AND excluded.report_id > kpi_capacity_day.report_id)
"""
)


def _day_row(
    report_id: int, unit_id: uuid.UUID, reported_at: datetime, free: int
) -> dict[str, Any]:
    return {
        "unit_id": unit_id,
        "day_no": census_day(reported_at),
        "report_id": report_id,
        "reported_at": reported_at,
        "free": free,
    }


async def track_capacity_report(
    conn: AsyncConnection, *, report_id: int, unit_id: uuid.UUID, reported_at: datetime, free: int
) -> None:
    """Fold one new capacity report into ``kpi_capacity_day`` (same transaction)."""
    await conn.execute(_UPSERT_DAY_SQL, _day_row(report_id, unit_id, reported_at, free))


def capacity_day_rows(
    reports: Iterable[tuple[int, uuid.UUID, datetime, int]],
) -> list[dict[str, Any]]:
    """``kpi_capacity_day`` rows from ``(id, unit_id, reported_at, free)`` reports: per unit and
    census day the greatest ``(reported_at, id)``; the same rule as the upsert."""
    best: dict[tuple[uuid.UUID, int], tuple[datetime, int, int]] = {}
    for report_id, unit_id, reported_at, free in reports:
        key = (unit_id, census_day(reported_at))
        current = best.get(key)
        if current is None or (reported_at, report_id) > (current[0], current[1]):
            best[key] = (reported_at, report_id, free)
    return [
        {"unit_id": u, "day_no": d, "report_id": rid, "reported_at": at, "free": free}
        for (u, d), (at, rid, free) in best.items()
    ]


async def rebuild_capacity_days(conn: AsyncConnection) -> int:
    """Recompute ``kpi_capacity_day`` from ``capacity_report``; returns the rows written."""
    from app.capacity.models import CapacityReport
    from app.kpi.models import KpiCapacityDay

    result = await conn.execute(
        select(
            CapacityReport.id,
            CapacityReport.unit_id,
            CapacityReport.reported_at,
            CapacityReport.free,
        )
    )
    rows = capacity_day_rows((r[0], r[1], r[2], r[3]) for r in result.all())
    await conn.execute(delete(KpiCapacityDay))
    if rows:
        await conn.execute(insert(KpiCapacityDay), rows)
    return len(rows)


async def rebuild(conn: AsyncConnection) -> None:
    """Both summaries from the logs (after a bulk load that bypassed the services)."""
    await rebuild_placements(conn)
    await rebuild_capacity_days(conn)
