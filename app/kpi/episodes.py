# ruff: noqa: S608 - SQL is assembled from code constants only (column names, event types).
"""KPI summaries kept current with the writes they summarise.

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
* ``kpi_ready_interval``: the wrong-bed ready intervals (docs/domain.md §6.1), one row per interval
  as ``formulas.ready_intervals`` pairs them in ``seq`` order: ``medically_ready`` opens one
  unless one is open or a final event (``transferred`` / ``cancelled``) came earlier;
  ``ready_revoked``, ``hospital_admitted``, ``transferred`` and ``cancelled`` close the open
  one. The row carries the local day numbers and year the midnight census and the age filter
  need, so wrong-bed days pair no events and convert no time zones at query time.
* ``kpi_capacity_day``: per unit and census day the latest report since the previous local
  midnight; ``track_capacity_report`` upserts it in the transaction of each report.

``rebuild_placements`` / ``rebuild_capacity_days`` recompute them from the logs (migrations 0006
and 0007 backfill with the same SQL; the benchmark and the property tests load rows in bulk and
call them). The property tests check that the incremental path and the rebuild agree, and that
the SQL KPIs read from them agree with the reference. If these columns ever change, freeze a
copy of this SQL into migrations 0006 / 0007 first.
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
    column,
    delete,
    insert,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import UTCDateTime
from app.kpi import formulas as f
from app.kpi import queries as q

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
# transfer-log types that open or close a ready interval (formulas.ready_intervals)
READY_CLOSING = frozenset({f.READY_REVOKED, f.HOSPITAL_ADMITTED, *f.FINAL_EVENTS})
TRACKED_TYPES = frozenset(
    {*FIRST_COLUMNS, f.ESCALATED, f.HOLD_EXPIRED, f.OFFER_DECLINED, f.MEDICALLY_READY}
    | READY_CLOSING
)

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
    "seq": Integer(),
    "iday": Integer(),
    "year": SmallInteger(),
    "kind": String(),
    "bd": SmallInteger(),
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


_FINALS = ", ".join(f"'{t}'" for t in sorted(f.FINAL_EVENTS))
# medically_ready opens an interval unless one is open or the log was already final before it
_READY_OPEN_SQL = _sql(
    f"""
INSERT INTO kpi_ready_interval (placement_id, start_seq, start_at, start_day, start_year, backdated)
SELECT :id, :seq, :at, :iday, :year, :bd
WHERE NOT EXISTS (SELECT 1 FROM kpi_ready_interval o
                  WHERE o.placement_id = :id AND o.end_kind IS NULL)
  AND NOT EXISTS (SELECT 1 FROM transfer_event e
                  WHERE e.placement_id = :id AND e.seq < :seq AND e.event_type IN ({_FINALS}))
"""
)
# a closing event ends the open interval, if any (after a final event none is ever open)
_READY_CLOSE_SQL = _sql(
    """
UPDATE kpi_ready_interval
SET end_at = :at, end_day = :iday, end_kind = :kind,
    backdated = CASE WHEN :bd = 1 THEN 1 ELSE backdated END
WHERE placement_id = :id AND end_kind IS NULL
"""
)


def end_kind(event_type: str, reason: str | None) -> str:
    """How a closing event ends a ready interval (``formulas.ReadyInterval.end_kind``)."""
    if event_type == f.READY_REVOKED:
        return "revoked"
    if event_type == f.HOSPITAL_ADMITTED:
        return "hospital_transfer"
    if event_type == f.TRANSFERRED:
        return "transferred"
    return "died" if reason == "died" else "cancelled"


def escalation_rank(level: str | None) -> int:
    """1: escalated (to any level but national, or none given); 2: national."""
    return 2 if level == NATIONAL else 1


async def track_event(
    conn: AsyncConnection,
    *,
    placement_id: uuid.UUID,
    seq: int,
    event_type: str,
    occurred_at: datetime,
    recorded_at: datetime,
    reason: str | None,
    level: str | None,
) -> None:
    """Fold one appended transfer event into its placement's KPI summary (same transaction;
    events arrive in ``seq`` order). Event types no KPI summary reads (``offer_sent``, ...)
    cost nothing."""
    if event_type not in TRACKED_TYPES:
        return
    if event_type == f.MEDICALLY_READY or event_type in READY_CLOSING:
        ready: dict[str, Any] = {
            "id": placement_id,
            "at": occurred_at,
            "iday": f.local_day(occurred_at),
            "bd": int(recorded_at - occurred_at > f.BACKDATED_AFTER),
        }
        if event_type == f.MEDICALLY_READY:
            ready |= {"seq": seq, "year": f.local_date(occurred_at).year}
            await conn.execute(_READY_OPEN_SQL, ready)
        else:
            await conn.execute(_READY_CLOSE_SQL, ready | {"kind": end_kind(event_type, reason)})
        if event_type not in FIRST_COLUMNS:
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


def rebuild_ready_intervals_sql(dialect: str) -> tuple[str, ...]:
    """``kpi_ready_interval`` from the transfer log: ``formulas.ready_intervals`` as window
    functions over each placement's boundary events in ``seq`` order. Events after the first
    final one are dropped; a ``medically_ready`` right after another (nothing closed in between)
    is dropped; each remaining ``medically_ready`` pairs with the next remaining event (a closing
    one, or none: open). PostgreSQL and SQLite (day numbers via ``kpi_calendar``, which must
    cover the log's dates: the migrations fill 2015-2040) run the same text but for the
    dialect helpers of ``app.kpi.queries``."""
    boundary = ", ".join(f"'{t}'" for t in sorted({f.MEDICALLY_READY, *READY_CLOSING}))
    bd_us = int(f.BACKDATED_AFTER.total_seconds()) * 1_000_000

    def late(at: str, rec: str) -> str:
        return f"{q._us(dialect, rec)} - {q._us(dialect, at)} > {bd_us}"

    start_day = q._day(dialect, "k.occurred_at")
    insert_sql = f"""
INSERT INTO kpi_ready_interval
  (placement_id, start_seq, start_at, start_day, start_year, end_at, end_day, end_kind, backdated)
SELECT k.placement_id, k.seq, k.occurred_at, {start_day}, {q._year_of_day(dialect, start_day)},
       k.end_at, {q._day(dialect, "k.end_at")},
       CASE k.end_type WHEN '{f.READY_REVOKED}' THEN 'revoked'
                       WHEN '{f.HOSPITAL_ADMITTED}' THEN 'hospital_transfer'
                       WHEN '{f.TRANSFERRED}' THEN 'transferred'
                       WHEN '{f.CANCELLED}' THEN
                         CASE WHEN k.end_reason = 'died' THEN 'died' ELSE 'cancelled' END
       END,
       CASE WHEN {late("k.occurred_at", "k.recorded_at")}
              OR (k.end_at IS NOT NULL AND {late("k.end_at", "k.end_rec")})
            THEN 1 ELSE 0 END
FROM (
  SELECT b.placement_id, b.seq, b.event_type, b.occurred_at, b.recorded_at,
         LEAD(b.event_type) OVER w AS end_type, LEAD(b.occurred_at) OVER w AS end_at,
         LEAD(b.recorded_at) OVER w AS end_rec, LEAD(b.reason) OVER w AS end_reason
  FROM (
    SELECT e.placement_id, e.seq, e.event_type, e.occurred_at, e.recorded_at, e.reason,
           LAG(e.event_type) OVER (PARTITION BY e.placement_id ORDER BY e.seq) AS prev_type,
           MAX(CASE WHEN e.event_type IN ({_FINALS}) THEN 1 ELSE 0 END) OVER (
             PARTITION BY e.placement_id ORDER BY e.seq
             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS after_final
    FROM transfer_event e
    WHERE e.event_type IN ({boundary})
  ) b
  WHERE COALESCE(b.after_final, 0) = 0
    AND (b.event_type <> '{f.MEDICALLY_READY}' OR b.prev_type IS NULL
         OR b.prev_type <> '{f.MEDICALLY_READY}')
  WINDOW w AS (PARTITION BY b.placement_id ORDER BY b.seq)
) k
WHERE k.event_type = '{f.MEDICALLY_READY}'
"""
    return ("DELETE FROM kpi_ready_interval", insert_sql)


async def rebuild_ready_intervals(conn: AsyncConnection) -> None:
    """Recompute ``kpi_ready_interval`` from the transfer log."""
    if conn.dialect.name != "postgresql":
        span = (
            await conn.execute(
                text(
                    "SELECT MIN(occurred_at) AS lo, MAX(occurred_at) AS hi FROM transfer_event"
                ).columns(lo=UTCDateTime(), hi=UTCDateTime())
            )
        ).one()
        if span[0] is not None:
            await q.ensure_calendar(conn, f.local_date(span[0]), f.local_date(span[1]))
    for sql in rebuild_ready_intervals_sql(conn.dialect.name):
        await conn.execute(text(sql))


async def rebuild_placements(conn: AsyncConnection) -> None:
    """Recompute every placement's KPI columns, declines and ready intervals from the log."""
    for sql in REBUILD_PLACEMENTS_SQL:
        await conn.execute(text(sql))
    await rebuild_ready_intervals(conn)


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


async def track_capacity_reports(
    conn: AsyncConnection, reports: Iterable[tuple[int, uuid.UUID, datetime, int]]
) -> None:
    """Fold many new ``(id, unit_id, reported_at, free)`` reports, one per unit, in one
    statement (executemany); the same upsert as ``track_capacity_report``."""
    rows = [_day_row(*report) for report in reports]
    if rows:
        await conn.execute(_UPSERT_DAY_SQL, rows)


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
    from app.kpi.models import KpiCapacityDay

    # The report log read as the KPI queries read the other tables: by name (the KPI package
    # sits below the capacity package that writes it).
    report = table(
        "capacity_report",
        column("id", BigInteger),
        column("unit_id", Uuid),
        column("reported_at", UTCDateTime),
        column("free", Integer),
    )

    result = await conn.execute(
        select(report.c.id, report.c.unit_id, report.c.reported_at, report.c.free)
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
