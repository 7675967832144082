# ruff: noqa: S608 - SQL is assembled from code constants only (dialect snippets, generated
# bucket literals); every value that comes from a request is a typed bind parameter.
"""The KPIs of ``app.kpi.formulas`` as SQL aggregates, on PostgreSQL and SQLite alike.

Each function returns the same row types as its reference in ``formulas`` and must agree with it
exactly (the property tests check this on random transfer logs). Portability rests on three
small dialect helpers: ``_day`` (the local date of an instant as a day number: PostgreSQL's time
zone database, or the ``kpi_calendar`` table on SQLite, which has none), ``_us`` (an instant as
integer microseconds, so durations are exact) and ``_max/_min`` (GREATEST/LEAST). Everything else
is the same SQL text, except how lead times rank durations (``_ranks_sql``). Wrong-bed days (from
the ready intervals), the cohort KPIs (lead times, escalations, GGZ) and the capacity census read
the summaries ``app.kpi.episodes`` keeps with every write, so they pair no events at query time.
Cohorts select on UTC bounds of the local period
(``local_midnight``), which is exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Integer,
    String,
    Table,
    TextClause,
    Uuid,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import UTCDateTime
from app.kpi import formulas as f
from app.kpi.models import KpiCalendar

# --- dialect helpers ---------------------------------------------------------------------------


def _day(dialect: str, col: str) -> str:
    """Day number of the Europe/Amsterdam date of the instant ``col`` (NULL when ``col`` is)."""
    if dialect == "postgresql":
        return f"(CAST(timezone('Europe/Amsterdam', {col}) AS DATE) - DATE '2000-01-01')"
    return (
        f"(SELECT kc.day_no FROM kpi_calendar kc WHERE kc.midnight_utc <= {col} "
        "ORDER BY kc.midnight_utc DESC LIMIT 1)"
    )


def _us(dialect: str, col: str) -> str:
    """The instant ``col`` as integer microseconds since 1970 (exact on both backends)."""
    if dialect == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {col}) * 1000000 AS BIGINT)"
    # SQLite stores UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's fixed storage format).
    return (
        f"(CAST(strftime('%s', substr({col}, 1, 19)) AS INTEGER) * 1000000 "
        f"+ CAST(substr({col}, 21, 6) AS INTEGER))"
    )


def _ranks_sql(dialect: str) -> str:
    """From durations ``d(label, kind, t0, t1)``: per label and kind ``n`` and the durations
    ``t1 - t0`` in microseconds at ranks ``(n + 1) / 2`` and ``n / 2 + 1`` (the median is their
    mean) and ``ceil(0.9 n)`` (nearest-rank P90), as ``formulas.median_us`` / ``p90_us`` do.

    PostgreSQL sorts each group's intervals inside ``array_agg`` (a sort of bare values, about
    half the cost of a window sort of the rows) and converts the three picked ones; SQLite ranks
    integer durations with ``ROW_NUMBER``. Both are exact."""
    if dialect == "postgresql":
        pick = "CAST(EXTRACT(EPOCH FROM v[CAST({k} AS INTEGER)]) * 1000000 AS BIGINT)"
        return f"""
SELECT label, kind, n, {pick.format(k="(n + 1) / 2")} AS m1, {pick.format(k="n / 2 + 1")} AS m2,
       {pick.format(k="(9 * n + 9) / 10")} AS p90
FROM (SELECT label, kind, COUNT(*) AS n, array_agg(t1 - t0 ORDER BY t1 - t0) AS v
      FROM d GROUP BY label, kind) a"""
    dur = f"({_us(dialect, 't1')} - {_us(dialect, 't0')})"
    return f""", r AS (
  SELECT label, kind, {dur} AS dur,
         ROW_NUMBER() OVER (PARTITION BY label, kind ORDER BY {dur}) AS rn,
         COUNT(*) OVER (PARTITION BY label, kind) AS n
  FROM d
)
SELECT label, kind, n,
       SUM(CASE WHEN rn = (n + 1) / 2 THEN dur ELSE 0 END) AS m1,
       SUM(CASE WHEN rn = n / 2 + 1 THEN dur ELSE 0 END) AS m2,
       SUM(CASE WHEN rn = (9 * n + 9) / 10 THEN dur ELSE 0 END) AS p90
FROM r GROUP BY label, kind, n"""


def _year_of_day(dialect: str, day: str) -> str:
    if dialect == "postgresql":
        return f"CAST(EXTRACT(YEAR FROM (DATE '2000-01-01' + {day})) AS INTEGER)"
    return f"CAST(strftime('%Y', date('2000-01-01', ({day}) || ' days')) AS INTEGER)"


def _max(dialect: str, *args: str) -> str:
    return ("GREATEST" if dialect == "postgresql" else "MAX") + "(" + ", ".join(args) + ")"


def _min(dialect: str, *args: str) -> str:
    return ("LEAST" if dialect == "postgresql" else "MIN") + "(" + ", ".join(args) + ")"


def _ts_literal(dialect: str, t: datetime) -> str:
    stamp = t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if dialect == "postgresql":
        return f"TIMESTAMPTZ '{stamp}+00'"
    return f"'{stamp}'"


def _date_literal(dialect: str, d: date) -> str:
    return f"DATE '{d.isoformat()}'" if dialect == "postgresql" else f"'{d.isoformat()}'"


def _label_literal(label: str | None) -> str:
    if label is None:
        return "CAST(NULL AS VARCHAR(10))"
    assert all(c.isalnum() or c == "-" for c in label)  # generated month/week labels only
    return f"'{label}'"


def _age_band_sql(age: str) -> str:
    parts = [f"WHEN {age} >= {low} THEN '{label}'" for label, low, _ in reversed(f.AGE_BANDS)]
    return "CASE " + " ".join(parts[:-1]) + f" ELSE '{f.AGE_BANDS[0][0]}' END"


def _uuid_str(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(uuid.UUID(str(value)))


def _label(group_by: str | None, value: Any) -> str | None:
    if group_by in ("hospital", "subregion"):
        return f.UNKNOWN if value is None else _uuid_str(value)
    return None if value is None else str(value)


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def _stay_filter_sql(flt: f.StayFilter, alias: str = "p") -> str:
    where = []
    if flt.definition == "narrow":
        where.append(f"substr({alias}.care_type, 1, 4) = '{f.WLZ_PREFIX}'")
    if flt.hospital_id is not None:
        where.append(f"{alias}.referrer_organisation_id = :hospital_id")
    if flt.subregion_id is not None:
        where.append(f"{alias}.subregion_id = :subregion_id")
    if flt.care_type is not None:
        where.append(f"{alias}.care_type = :care_type")
    if flt.region_id is not None:
        where.append(f"{alias}.region_id = :region_id")
    return " AND ".join(where) or "1 = 1"


# Rows that carry a subregion (inflow counts, locations) belong to the caller's region so.
_IN_REGION = "IN (SELECT rs.id FROM subregion rs WHERE rs.region_id = :region_id)"


def _stay_params(flt: f.StayFilter) -> dict[str, Any]:
    return {
        "hospital_id": _uuid(flt.hospital_id),
        "subregion_id": _uuid(flt.subregion_id),
        "care_type": flt.care_type,
        "age_min": flt.age_min,
        "region_id": _uuid(flt.region_id),
    }


def _bind(sql: str, params: Mapping[str, Any]) -> tuple[TextClause, dict[str, Any]]:
    """``text`` with typed bind parameters for those ``sql`` uses (asyncpg needs the types)."""
    types: dict[str, Any] = {
        "hospital_id": Uuid(),
        "subregion_id": Uuid(),
        "region_id": Uuid(),
        "care_type": String(),
        "age_min": Integer(),
        "now": UTCDateTime(),
        "floor": Integer(),
        "ttl_bed_us": BigInteger(),
        "ttl_dn_us": BigInteger(),
        "now_us": BigInteger(),
        "m0": UTCDateTime(),
        "m1": UTCDateTime(),
        "d0": Integer(),
        "d1": Integer(),
        "now_day": Integer(),
        "p0": Date(),
        "p1": Date(),
    }
    used = {k: v for k, v in params.items() if f":{k}" in sql}
    clause = text(sql).bindparams(*[bindparam(k, type_=types[k]) for k in used])
    return clause, used


def _buckets_sql(dialect: str, parts: Sequence[f.Bucket], kind: str) -> str:
    """A ``bk(label, lo, hi)`` VALUES list: day numbers, UTC instants or dates per bucket."""
    rows = []
    for b in parts:
        if kind == "day":
            lo, hi = str(f.day_no(b.start)), str(f.day_no(b.end))
        elif kind == "instant":
            lo = _ts_literal(dialect, f.local_midnight(b.start))
            hi = _ts_literal(dialect, f.local_midnight(b.end))
        else:
            lo, hi = _date_literal(dialect, b.start), _date_literal(dialect, b.end)
        rows.append(f"({_label_literal(b.label)}, {lo}, {hi})")
    return "bk(label, lo, hi) AS (VALUES " + ", ".join(rows) + ")"


def _days_sql(dialect: str, parts: Sequence[f.Bucket]) -> str:
    """A ``bk(label, d)`` VALUES list: every date of the buckets with its bucket's label (an
    equality join on a date hashes; a range join on bucket bounds is a nested loop)."""
    rows = [
        f"({_label_literal(b.label)}, {_date_literal(dialect, f.date_of(n))})"
        for b in parts
        for n in range(f.day_no(b.start), f.day_no(b.end))
    ]
    return "bk(label, d) AS (VALUES " + ", ".join(rows) + ")"


async def _run(
    conn: AsyncConnection,
    clause: TextClause,
    params: Mapping[str, Any],
    *,
    tuned: bool = True,
) -> Any:
    """Execute a KPI aggregate. On PostgreSQL, for this statement only, its sorts get 64 MB of
    work_mem (the default 4 MB spills sorts over a year of placements to disk) and JIT is off
    (compiling costs 0.2-0.4 s per statement here, more than these queries run). One round trip
    sets both, one resets both (the read engine autocommits, so SET LOCAL would not last).
    ``tuned=False``: a small aggregate (below the JIT cost threshold), run as is."""
    if conn.dialect.name != "postgresql" or not tuned:
        return await conn.execute(clause, params)
    await conn.execute(_SET_SQL)
    try:
        return await conn.execute(clause, params)
    finally:
        await conn.execute(_RESET_SQL)


_SET_SQL = text("SELECT set_config('work_mem', '64MB', false), set_config('jit', 'off', false)")
_RESET_SQL = text(
    "SELECT set_config(name, reset_val, false) FROM pg_settings WHERE name IN ('work_mem', 'jit')"
)


# --- calendar ----------------------------------------------------------------------------------


def calendar_table() -> Table:
    return cast(Table, KpiCalendar.__table__)


async def ensure_calendar(conn: AsyncConnection, first: date, last_excl: date) -> int:
    """Add the missing local dates of ``[first, last_excl]`` to ``kpi_calendar``; returns how
    many rows were added. Cheap when complete (one indexed count)."""
    lo, hi = f.day_no(first), f.day_no(last_excl)
    have: int = (
        await conn.execute(
            text("SELECT COUNT(*) FROM kpi_calendar WHERE day_no BETWEEN :lo AND :hi"),
            {"lo": lo, "hi": hi},
        )
    ).scalar_one()
    if have == hi - lo + 1:
        return 0
    present: set[int] = set(
        (
            await conn.execute(
                text("SELECT day_no FROM kpi_calendar WHERE day_no BETWEEN :lo AND :hi"),
                {"lo": lo, "hi": hi},
            )
        ).scalars()
    )
    rows = [
        {"day_no": n, "local_date": f.date_of(n), "midnight_utc": f.local_midnight(f.date_of(n))}
        for n in range(lo, hi + 1)
        if n not in present
    ]
    await conn.execute(insert(KpiCalendar), rows)
    return len(rows)


# --- 6.1 wrong-bed days ------------------------------------------------------------------------


def wrong_bed_sql(dialect: str, period: f.Period, flt: f.StayFilter, group_by: str | None) -> str:
    """VBD from ``kpi_ready_interval`` (``app.kpi.episodes``: the ready intervals of
    ``formulas.ready_intervals``, kept with each event, with their local day numbers). An
    interval covers the midnights of days ``a + 1 .. b`` (``a`` its start day, ``b`` its end
    day or, while open, the day of ``now``), clipped to each bucket by day-number arithmetic;
    no event is paired and no time zone converted at query time."""
    parts = f.buckets(period, group_by)
    label = {
        None: "bk.label",
        "month": "bk.label",
        "week": "bk.label",
        "hospital": "x.hospital_id",
        "subregion": "x.subregion_id",
        "age_band": _age_band_sql("x.age"),
        "care_type": "x.care_type",
        "source": "x.origin_setting",
    }[group_by]
    days = _max(
        dialect,
        "0",
        f"{_min(dialect, 'x.b', 'bk.hi - 1')} - {_max(dialect, 'x.a + 1', 'bk.lo')} + 1",
    )
    age_where = "i.start_year - p.birth_year >= :age_min" if flt.age_min is not None else "1 = 1"
    return f"""
WITH x AS MATERIALIZED (
  SELECT p.patient_key, p.care_type, p.origin_setting, p.referrer_organisation_id AS hospital_id,
         p.subregion_id, i.start_year - p.birth_year AS age, i.start_day AS a,
         COALESCE(i.end_day, :now_day) AS b, i.end_day AS ed, i.backdated AS bd,
         CASE WHEN i.end_kind IS NULL THEN 1 ELSE 0 END AS open_,
         CASE WHEN i.end_kind = 'hospital_transfer' THEN 1 ELSE 0 END AS h2h,
         CASE WHEN i.end_kind = 'died' THEN 1 ELSE 0 END AS died
  FROM kpi_ready_interval i JOIN placement p ON p.id = i.placement_id
  WHERE ((i.start_day < :d1 AND COALESCE(i.end_day, :now_day) >= :d0)
         OR (i.end_day >= :d0 AND i.end_day < :d1))
    AND {_stay_filter_sql(flt)} AND {age_where}
), {_buckets_sql(dialect, parts, "day")}, y AS (
  SELECT {label} AS label, x.patient_key, x.open_, x.bd, x.h2h, x.died, {days} AS days,
         CASE WHEN x.ed >= bk.lo AND x.ed < bk.hi THEN 1 ELSE 0 END AS end_in
  FROM x CROSS JOIN bk
)
SELECT label, SUM(days) AS days,
       COUNT(DISTINCT CASE WHEN days > 0 THEN patient_key END) AS patients,
       SUM(CASE WHEN days > 0 THEN 1 ELSE 0 END) AS intervals,
       SUM(CASE WHEN days > 0 THEN open_ ELSE 0 END) AS open_intervals,
       SUM(CASE WHEN days > 0 THEN bd ELSE 0 END) AS backdated,
       SUM(h2h * end_in) AS hospital_transfers,
       SUM(died * end_in) AS deaths
FROM y
WHERE days > 0 OR (end_in = 1 AND (h2h = 1 OR died = 1))
GROUP BY label
"""


async def wrong_bed_days(
    conn: AsyncConnection,
    period: f.Period,
    *,
    now: datetime,
    flt: f.StayFilter | None = None,
    group_by: str | None = None,
) -> list[f.WrongBedRow]:
    flt = flt or f.StayFilter()
    dialect = conn.dialect.name
    sql = wrong_bed_sql(dialect, period, flt, group_by)
    params = {
        **_stay_params(flt),
        "now_day": f.local_day(now),
        "d0": f.day_no(period.start),
        "d1": f.day_no(period.end),
    }
    clause, used = _bind(sql, params)
    result = await _run(conn, clause, used)
    parts = f.buckets(period, group_by)
    rows: dict[str | None, f.WrongBedRow] = {}
    if group_by is None or group_by in f.TIME_GROUPS:
        rows = {b.label: f.WrongBedRow(b.label, b.days) for b in parts}
    for r in result.mappings():
        label = _label(group_by, r["label"])
        rows[label] = f.WrongBedRow(
            group=label,
            calendar_days=rows[label].calendar_days if label in rows else period.days,
            days=int(r["days"]),
            patients=int(r["patients"]),
            intervals=int(r["intervals"]),
            open_intervals=int(r["open_intervals"]),
            backdated=int(r["backdated"]),
            hospital_transfers=int(r["hospital_transfers"]),
            deaths=int(r["deaths"]),
        )
    return sorted(rows.values(), key=lambda r: (r.group is None, r.group or ""))


# --- cohort KPIs: placements requested in the period -------------------------------------------


def _cohort_sql(
    dialect: str,
    period: f.Period,
    flt: f.StayFilter,
    group_by: str | None,
    *,
    ggz: bool = False,
) -> str:
    """``c``: one row per placement requested in the period (first ``request_created``; for
    GGZ cases the clock start t0), with its first triaged / accepted / cancelled times, whether
    and how far it escalated, its expired holds, and its label.

    All from the placement's KPI columns (``app.kpi.episodes``: first events by ``seq``, kept in
    the transaction of each event), so no event is paired at query time."""
    parts = f.buckets(period, group_by)
    start = "COALESCE(p.kpi_ready_at, p.kpi_requested_at)" if ggz else "p.kpi_requested_at"
    label = {
        None: "bk.label",
        "month": "bk.label",
        "week": "bk.label",
        "hospital": "p.referrer_organisation_id",
        "subregion": "p.subregion_id",
        "age_band": _age_band_sql(
            f"({_year_of_day(dialect, _day(dialect, start))} - p.birth_year)"
        ),
        "care_type": "p.care_type",
        "source": "p.origin_setting",
        "patient_group": f"COALESCE(p.patient_group, '{f.UNKNOWN}')",
    }[group_by]
    age_where = (
        f"{_year_of_day(dialect, _day(dialect, start))} - p.birth_year >= :age_min"
        if flt.age_min is not None
        else "1 = 1"
    )
    extra = f"p.care_type = '{f.GGZ_CARE_TYPE}'" if ggz else _stay_filter_sql(flt)
    if ggz and flt.region_id is not None:
        extra += " AND p.region_id = :region_id"
    return f"""
{_buckets_sql(dialect, parts, "instant")}, c AS (
  SELECT {label} AS label, p.id, p.urgency_level, p.kpi_requested_at AS created_at,
         p.kpi_triaged_at AS triaged_at, p.kpi_accepted_at AS accepted_at,
         p.kpi_cancelled_at AS cancelled_at,
         CASE WHEN p.kpi_escalated > 0 THEN 1 ELSE 0 END AS esc,
         CASE WHEN p.kpi_escalated = 2 THEN 1 ELSE 0 END AS nat,
         p.kpi_expired_holds AS expired, {start} AS t0
  FROM placement p JOIN bk ON {start} >= bk.lo AND {start} < bk.hi
  WHERE p.kpi_requested_at IS NOT NULL AND {start} >= :m0 AND {start} < :m1
    AND {extra} AND {age_where}
)"""


def _cohort_params(period: f.Period, flt: f.StayFilter) -> dict[str, Any]:
    return {
        **_stay_params(flt),
        "m0": f.local_midnight(period.start),
        "m1": f.local_midnight(period.end),
    }


async def lead_times(
    conn: AsyncConnection,
    period: f.Period,
    *,
    flt: f.StayFilter | None = None,
    group_by: str | None = "care_type",
) -> list[f.LeadTimeSummary]:
    flt = flt or f.StayFilter()
    dialect = conn.dialect.name
    sql = (
        "WITH "
        + _cohort_sql(dialect, period, flt, group_by)
        + """, d AS (
  SELECT label, 0 AS kind, created_at AS t0, triaged_at AS t1 FROM c
  WHERE triaged_at IS NOT NULL
  UNION ALL
  SELECT label, 1, created_at, accepted_at FROM c WHERE accepted_at IS NOT NULL
)"""
        + _ranks_sql(dialect)
        + """
UNION ALL
SELECT label, 2, COUNT(*), 0, 0, 0 FROM c GROUP BY label
"""
    )
    clause, params = _bind(sql, _cohort_params(period, flt))
    stats: dict[str | None, dict[str, tuple[int, int, int, int]]] = {}
    kinds_of = {0: "triage", 1: "placement", 2: "requests"}
    for r in (await _run(conn, clause, params)).all():
        label = _label(group_by, r[0])
        values = (int(r[2]), int(r[3]), int(r[4]), int(r[5]))
        stats.setdefault(label, {})[kinds_of[int(r[1])]] = values
    out = []
    for label, kinds in stats.items():
        tri = kinds.get("triage")
        pla = kinds.get("placement")
        out.append(
            f.LeadTimeSummary(
                group=label,
                requests=kinds["requests"][0],
                triaged=tri[0] if tri else 0,
                triage_median_us=(tri[1] + tri[2]) / 2 if tri else None,
                triage_p90_us=tri[3] if tri else None,
                placed=pla[0] if pla else 0,
                placement_median_us=(pla[1] + pla[2]) / 2 if pla else None,
                placement_p90_us=pla[3] if pla else None,
            )
        )
    return sorted(out, key=lambda r: r.group or "")


async def escalations(
    conn: AsyncConnection,
    period: f.Period,
    *,
    flt: f.StayFilter | None = None,
    group_by: str | None = None,
) -> list[f.EscalationRow]:
    flt = flt or f.StayFilter()
    dialect = conn.dialect.name
    sql = (
        "WITH "
        + _cohort_sql(dialect, period, flt, group_by)
        + """
SELECT c.label, '' AS reason, COUNT(*) AS requests, SUM(c.esc) AS escalated,
       SUM(c.esc * (1 - c.nat)) AS to_region, SUM(c.nat) AS to_national,
       SUM(c.expired) AS expired
FROM c
GROUP BY c.label
UNION ALL
SELECT c.label, k.reason, SUM(k.declines), 0, 0, 0, 0
FROM c JOIN kpi_placement_decline k ON k.placement_id = c.id
GROUP BY c.label, k.reason
"""
    )
    clause, params = _bind(sql, _cohort_params(period, flt))
    rows: dict[str | None, f.EscalationRow] = {}
    declines: list[tuple[str | None, str, int]] = []
    for r in (await _run(conn, clause, params)).all():
        label = _label(group_by, r[0])
        if r[1] == "":
            rows[label] = f.EscalationRow(
                group=label,
                requests=int(r[2]),
                escalated=int(r[3]),
                to_region=int(r[4]),
                to_national=int(r[5]),
                expired_holds=int(r[6]),
            )
        else:
            declines.append((label, str(r[1]), int(r[2])))
    for label, reason, count in declines:
        rows[label].declines[reason] = count
    return sorted(rows.values(), key=lambda r: r.group or "")


async def ggz_crisis_within_norm(
    conn: AsyncConnection,
    period: f.Period,
    *,
    now: datetime,
    subregion_id: str | None = None,
    group_by: str | None = None,
    region_id: str | None = None,
) -> list[f.GgzRow]:
    dialect = conn.dialect.name
    flt = f.StayFilter(subregion_id=subregion_id, region_id=region_id)
    cohort = _cohort_sql(dialect, period, flt, group_by, ggz=True)
    if subregion_id is not None:
        cohort = cohort.replace(
            f"p.care_type = '{f.GGZ_CARE_TYPE}'",
            f"p.care_type = '{f.GGZ_CARE_TYPE}' AND p.subregion_id = :subregion_id",
        )
    hour = 3_600_000_000
    norm = (
        f"CASE WHEN c.urgency_level <= 2 THEN {hour} WHEN c.urgency_level = 3 THEN {4 * hour} "
        f"ELSE {24 * hour} END"
    )
    return await _clock_rows(
        conn, cohort, "c.t0", norm, _cohort_params(period, flt), now, group_by, f.GgzRow
    )


_EPOCH_1970 = datetime(1970, 1, 1, tzinfo=UTC)
C = TypeVar("C", bound=f.ClockCounts)


def _clock_sql(dialect: str, start: str, norm: str) -> str:
    """``formulas.clock_outcome`` as an SQL CASE over a cohort row ``c`` (its accepted_at,
    cancelled_at and the clock's ``start``) against ``norm`` (µs, an SQL expression)."""
    return f"""CASE WHEN c.accepted_at IS NOT NULL THEN
           CASE WHEN {_us(dialect, "c.accepted_at")} - {_us(dialect, start)} <= {norm}
                THEN 'within' ELSE 'late' END
         WHEN c.cancelled_at IS NOT NULL THEN 'left'
         WHEN :now_us - {_us(dialect, start)} > {norm} THEN 'overdue'
         ELSE 'pending' END"""


async def _clock_rows(
    conn: AsyncConnection,
    cohort: str,
    start: str,
    norm: str,
    params: dict[str, Any],
    now: datetime,
    group_by: str | None,
    make: Callable[[str | None], C],
) -> list[C]:
    """``formulas.clock_outcome`` in SQL over a cohort (columns label, accepted_at,
    cancelled_at and the clock's ``start``) against ``norm`` (µs, an SQL expression), counted
    per group into rows made by ``make``."""
    outcome = _clock_sql(conn.dialect.name, start, norm)
    sql = (
        "WITH "
        + cohort
        + f""", k AS (SELECT c.label, {outcome} AS outcome FROM c)
SELECT label, outcome, COUNT(*) FROM k GROUP BY label, outcome
"""
    )
    clause, used = _bind(sql, {**params, "now_us": f.duration_us(now, _EPOCH_1970)})
    rows: dict[str | None, C] = {}
    for r in (await _run(conn, clause, used)).all():
        label = _label(group_by, r[0])
        rows.setdefault(label, make(label)).add(str(r[1]), int(r[2]))
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- 6.2 inflow --------------------------------------------------------------------------------


async def inflow(
    conn: AsyncConnection,
    period: f.Period,
    *,
    age_min: int | None = None,
    subregion_id: str | None = None,
    group_by: str | None = None,
    region_id: str | None = None,
) -> list[f.InflowRow]:
    dialect = conn.dialect.name
    parts = f.buckets(period, group_by)
    label = {
        None: "bk.label",
        "month": "bk.label",
        "week": "bk.label",
        "subregion": "i.subregion_id",
        "age_band": "i.age_band",
        "source": "i.source",
    }[group_by]
    rav_codes = ", ".join(repr(u) for u in sorted(f.COUNTED_RAV_URGENCY))
    counted = " OR ".join(
        f"(i.source = '{src}' AND i.contact_type IN ({', '.join(repr(c) for c in sorted(kinds))})"
        + (f" AND i.urgency_native IN ({rav_codes})" if src == "rav" else "")
        + ")"
        for src, kinds in f.COUNTED_CONTACTS.items()
    )
    bands = (
        "1 = 1"
        if age_min is None
        else "i.age_band IN (" + ", ".join(f"'{b}'" for b in f.bands_from(age_min)) + ")"
        if f.bands_from(age_min)
        else "1 = 0"
    )
    sub = "i.subregion_id = :subregion_id" if subregion_id is not None else "1 = 1"
    if region_id is not None:
        sub += f" AND i.subregion_id {_IN_REGION}"
    sql = f"""
WITH {_days_sql(dialect, parts)}
SELECT i.source, {label} AS label, SUM(i.count) AS n,
       SUM(CASE WHEN i.contact_type = 'ehgv' THEN i.count ELSE 0 END) AS ehgv
FROM inflow_count i JOIN bk ON i.period_start = bk.d
WHERE i.period_start >= :p0 AND i.period_start < :p1 AND ({counted}) AND {bands} AND {sub}
GROUP BY i.source, {label}
"""
    clause, params = _bind(
        sql,
        {
            "subregion_id": _uuid(subregion_id),
            "region_id": _uuid(region_id),
            "p0": period.start,
            "p1": period.end,
        },
    )
    out = [
        f.InflowRow(str(r[0]), _label(group_by, r[1]), int(r[2]), int(r[3]))
        for r in (await _run(conn, clause, params, tuned=False)).all()
    ]
    return sorted(out, key=lambda r: (r.source, r.group or ""))


# --- 6.4 capacity ------------------------------------------------------------------------------


def _first_midnight_day(dialect: str, col: str) -> str:
    """Day number of the first local midnight at or after the instant ``col`` (on SQLite NULL
    when the calendar holds none)."""
    if dialect == "postgresql":
        return (
            f"(CAST(timezone('Europe/Amsterdam', {col} - INTERVAL '1 microsecond') AS DATE)"
            " - DATE '2000-01-01' + 1)"
        )
    return (
        f"(SELECT kc.day_no FROM kpi_calendar kc WHERE kc.midnight_utc >= {col} "
        "ORDER BY kc.midnight_utc LIMIT 1)"
    )


def _day_after(dialect: str, col: str, us: str) -> str:
    """Day number of the first local midnight strictly after ``col`` + ``us`` microseconds
    (on SQLite NULL when the calendar holds none at or before that instant)."""
    if dialect == "postgresql":
        shifted = f"({col} + {us} * INTERVAL '1 microsecond')"
        return f"({_day(dialect, shifted)} + 1)"
    total = f"({_us(dialect, col)} + {us})"
    stamp = (
        f"(strftime('%Y-%m-%d %H:%M:%S', {total} / 1000000, 'unixepoch') || '.' "
        f"|| printf('%06d', {total} % 1000000))"
    )
    return f"({_day(dialect, stamp)} + 1)"


async def capacity(
    conn: AsyncConnection,
    period: f.Period,
    *,
    ttl_bed: timedelta,
    ttl_district_nursing: timedelta,
    group_by: str | None = "care_type",
    subregion_id: str | None = None,
    care_type: str | None = None,
    region_id: str | None = None,
) -> list[f.CapacityRow]:
    """Census at the local midnights of the period, from ``kpi_capacity_day``.

    A unit's census-day row (``app.kpi.episodes``: its latest report since the previous local
    midnight, kept with each report) is its latest report at the midnights from that day up to
    the day of its next row (``LEAD``, in primary-key order, over the unit's rows since its last
    one at or before the period start). So each row is a run of census days ``[a, b)``, stale
    from day ``s`` on (the first midnight later than its report time + TTL), and the days a unit
    existed before its first report one more, unreported and stale, run. The runs are clipped to
    the buckets by day-number arithmetic, as in ``wrong_bed_sql``: no row per unit and day."""
    dialect = conn.dialect.name
    parts = f.buckets(period, group_by)
    d0, d1 = f.day_no(period.start), f.day_no(period.end)
    label = {
        None: "bk.label",
        "month": "bk.label",
        "week": "bk.label",
        "subregion": "g.subregion_id",
        "care_type": "g.care_type",
    }[group_by]
    where = ["u.active"]
    if subregion_id is not None:
        where.append("l.subregion_id = :subregion_id")
    if care_type is not None:
        where.append("u.care_type = :care_type")
    if region_id is not None:
        where.append(f"l.subregion_id {_IN_REGION}")
    n = _max(dialect, "0", f"{_min(dialect, 'g.b', 'bk.hi')} - {_max(dialect, 'g.a', 'bk.lo')}")
    ns = _max(
        dialect, "0", f"{_min(dialect, 'g.b', 'bk.hi')} - {_max(dialect, 'g.a', 'bk.lo', 'g.s')}"
    )
    sql = f"""
WITH {_buckets_sql(dialect, parts, "day")}, u AS (
  SELECT u.id, u.care_type, l.subregion_id, u.staffed_capacity AS cap, u.created_at,
         CASE WHEN substr(u.care_type, 1, 16) = 'district_nursing'
              THEN :ttl_dn_us ELSE :ttl_bed_us END AS ttl,
         (SELECT MAX(k0.day_no) FROM kpi_capacity_day k0
          WHERE k0.unit_id = u.id AND k0.day_no <= :d0) AS since,
         (SELECT MIN(k1.day_no) FROM kpi_capacity_day k1 WHERE k1.unit_id = u.id) AS first_day
  FROM unit u JOIN location l ON l.id = u.location_id
  WHERE {" AND ".join(where)}
), r AS (
  SELECT k.unit_id, k.free, k.reported_at, k.day_no,
         LEAD(k.day_no) OVER (PARTITION BY k.unit_id ORDER BY k.day_no) AS next_day
  FROM u JOIN kpi_capacity_day k ON k.unit_id = u.id
  WHERE k.day_no >= COALESCE(u.since, :d0) AND k.day_no < :d1
), g AS (
  SELECT u.care_type, u.subregion_id, u.cap, 1 AS reported, r.free, r.day_no AS a,
         COALESCE(r.next_day, :d1) AS b,
         COALESCE({_day_after(dialect, "r.reported_at", "u.ttl")}, :d0) AS s
  FROM r JOIN u ON u.id = r.unit_id
  UNION ALL
  SELECT u.care_type, u.subregion_id, u.cap, 0, 0,
         COALESCE({_first_midnight_day(dialect, "u.created_at")}, :d1),
         COALESCE(u.first_day, :d1), :d0
  FROM u
), y AS (
  SELECT {label} AS label, g.reported, g.cap, g.free, {n} AS n, {ns} AS ns
  FROM g CROSS JOIN bk
)
SELECT label, SUM(n) AS unit_moments, SUM(CASE WHEN reported = 1 THEN ns ELSE n END) AS stale,
       SUM(reported * n) AS reported, SUM(reported * n * cap) AS staffed,
       SUM(reported * n * (cap - {_min(dialect, "free", "cap")})) AS occupied
FROM y WHERE n > 0 GROUP BY label
"""
    params = {
        "subregion_id": _uuid(subregion_id),
        "region_id": _uuid(region_id),
        "care_type": care_type,
        "d0": d0,
        "d1": d1,
        "ttl_bed_us": int(ttl_bed.total_seconds() * 1_000_000),
        "ttl_dn_us": int(ttl_district_nursing.total_seconds() * 1_000_000),
    }
    clause, used = _bind(sql, params)
    await ensure_calendar(conn, period.start, period.end)
    out = [
        f.CapacityRow(
            group=_label(group_by, r[0]),
            unit_moments=int(r[1]),
            stale=int(r[2]),
            reported=int(r[3]),
            staffed=int(r[4]),
            occupied=int(r[5]),
        )
        for r in (await _run(conn, clause, used)).all()
    ]
    by_group = {r.group: r for r in out}
    closed_sql = f"""
WITH {_buckets_sql(dialect, parts, "day")}, u AS (
  SELECT u.id, u.care_type, l.subregion_id
  FROM unit u JOIN location l ON l.id = u.location_id
  WHERE {" AND ".join(where)}
), st AS (
  SELECT s.unit_id, s.accepting, s.reason, s.changed_at, s.until,
         LEAD(s.changed_at) OVER (PARTITION BY s.unit_id ORDER BY s.changed_at, s.id) AS next_at
  FROM u JOIN unit_status s ON s.unit_id = u.id
), g AS (
  SELECT u.care_type, u.subregion_id, st.reason,
         COALESCE({_first_midnight_day(dialect, "st.changed_at")}, :d1) AS a,
         COALESCE({_first_midnight_day(dialect, "st.ends_at")}, :d1) AS b
  FROM (SELECT st.*, CASE WHEN st.next_at IS NULL THEN st.until
                          WHEN st.until IS NULL OR st.next_at < st.until THEN st.next_at
                          ELSE st.until END AS ends_at
        FROM st WHERE NOT st.accepting AND st.reason IS NOT NULL) st
  JOIN u ON u.id = st.unit_id
), y AS (
  SELECT {label} AS label, g.reason, {n} AS n FROM g CROSS JOIN bk
)
SELECT label, reason, SUM(n) FROM y WHERE n > 0 GROUP BY label, reason
"""
    clause, used = _bind(closed_sql, params)
    for r in (await _run(conn, clause, used, tuned=False)).all():
        group = _label(group_by, r[0])
        row = by_group.get(group)
        if row is None:
            row = by_group[group] = f.CapacityRow(group)
            out.append(row)
        row.closed[str(r[1])] = int(r[2])
    return sorted(out, key=lambda r: r.group or "")


# --- report-now response times ---------------------------------------------------------------


async def report_responses(
    conn: AsyncConnection, period: f.Period, *, region_id: str | None = None
) -> list[f.ReportResponseSummary]:
    """``formulas.report_responses`` in SQL: per organisation, the units targeted by requests
    made in the period, answered (a report recorded at or after the request), answered by the
    deadline, and the median answer time; with ``region_id``, the requests of that region."""
    dialect = conn.dialect.name
    sql = (
        """WITH t AS (
  SELECT u.organisation_id AS label, rr.created_at AS t0, rr.deadline_at AS deadline,
         (SELECT MIN(cr.recorded_at) FROM capacity_report cr
          WHERE cr.unit_id = u.unit_id AND cr.recorded_at >= rr.created_at) AS t1
  FROM report_request rr JOIN report_request_unit u ON u.request_id = rr.id
  WHERE rr.created_at >= :m0 AND rr.created_at < :m1 REGION
), d AS (
  SELECT label, 0 AS kind, t0, t1 FROM t WHERE t1 IS NOT NULL
)"""
        + _ranks_sql(dialect)
        + """
UNION ALL
SELECT label, 1, COUNT(*), SUM(CASE WHEN t1 IS NOT NULL AND t1 <= deadline THEN 1 ELSE 0 END),
       0, 0
FROM t GROUP BY label
"""
    )
    sql = sql.replace(" REGION", " AND rr.region_id = :region_id" if region_id else "")
    clause, params = _bind(
        sql,
        {
            "m0": f.local_midnight(period.start),
            "m1": f.local_midnight(period.end),
            "region_id": _uuid(region_id),
        },
    )
    stats: dict[str, dict[int, tuple[int, int, int]]] = {}
    for r in (await _run(conn, clause, params, tuned=False)).all():
        label = str(uuid.UUID(str(r[0])))
        stats.setdefault(label, {})[int(r[1])] = (int(r[2]), int(r[3] or 0), int(r[4] or 0))
    out = []
    for label, kinds in sorted(stats.items()):
        answered = kinds.get(0)
        targeted = kinds[1]
        out.append(
            f.ReportResponseSummary(
                organisation_id=label,
                targeted=targeted[0],
                answered=answered[0] if answered else 0,
                within_deadline=targeted[1],
                median_us=(answered[1] + answered[2]) / 2 if answered else None,
            )
        )
    return out


# --- 6.5 admission guarantee ---------------------------------------------------------------------


async def admission_guarantee(
    conn: AsyncConnection,
    period: f.Period,
    *,
    now: datetime,
    flt: f.StayFilter | None = None,
    group_by: str | None = None,
) -> list[f.GuaranteeRow]:
    """``formulas.admission_guarantee`` in SQL: the lead-time cohort restricted to the guaranteed
    care types, each request classified once."""
    flt = flt or f.StayFilter()
    dialect = conn.dialect.name
    types = ", ".join(f"'{t}'" for t in f.GUARANTEED_CARE_TYPES)
    window = f.GUARANTEE_WINDOW_US
    cohort = _cohort_sql(dialect, period, flt, group_by).replace(
        "WHERE p.kpi_requested_at IS NOT NULL",
        f"WHERE p.care_type IN ({types}) AND p.kpi_requested_at IS NOT NULL",
    )
    return await _clock_rows(
        conn,
        cohort,
        "c.created_at",
        str(window),
        _cohort_params(period, flt),
        now,
        group_by,
        f.GuaranteeRow,
    )


# --- 6.6 demand forecast: the daily request counts and the capacity now --------------------------


async def daily_requests(
    conn: AsyncConnection,
    first: date,
    last_excl: date,
    *,
    care_type: str | None = None,
    subregion_id: str | None = None,
    region_id: str | None = None,
) -> list[tuple[str, str | None, int, int]]:
    """(care type, subregion id, local day number, requests) of the placements whose first
    ``request_created`` falls on a local date in ``[first, last_excl)``; days without requests
    are absent."""
    dialect = conn.dialect.name
    day = _day(dialect, "p.kpi_requested_at")
    where = ["p.kpi_requested_at >= :m0", "p.kpi_requested_at < :m1"]
    if care_type is not None:
        where.append("p.care_type = :care_type")
    if subregion_id is not None:
        where.append("p.subregion_id = :subregion_id")
    if region_id is not None:
        where.append("p.region_id = :region_id")
    sql = f"""
SELECT p.care_type, p.subregion_id, {day} AS d, COUNT(*)
FROM placement p
WHERE {" AND ".join(where)}
GROUP BY p.care_type, p.subregion_id, {day}
"""
    clause, params = _bind(
        sql,
        {
            "m0": f.local_midnight(first),
            "m1": f.local_midnight(last_excl),
            "care_type": care_type,
            "subregion_id": _uuid(subregion_id),
            "region_id": _uuid(region_id),
        },
    )
    return [
        (str(r[0]), None if r[1] is None else _uuid_str(r[1]), int(r[2]), int(r[3]))
        for r in (await _run(conn, clause, params)).all()
    ]


async def unit_capacity_now(
    conn: AsyncConnection,
    *,
    care_type: str | None = None,
    subregion_id: str | None = None,
    region_id: str | None = None,
) -> list[tuple[str, str, int, int, datetime | None, str | None, datetime | None]]:
    """Per active unit: (care type, subregion id, free, held, reported_at, closed_reason,
    closed_until); free is 0 for a unit that never reported."""
    where = ["u.active = :active"]
    if care_type is not None:
        where.append("u.care_type = :care_type")
    if subregion_id is not None:
        where.append("l.subregion_id = :subregion_id")
    if region_id is not None:
        where.append(f"l.subregion_id {_IN_REGION}")
    sql = f"""
SELECT u.care_type, l.subregion_id, COALESCE(c.free, 0), COALESCE(c.held, 0), c.reported_at,
       c.closed_reason, c.closed_until
FROM unit u JOIN location l ON l.id = u.location_id
LEFT JOIN unit_capacity c ON c.unit_id = u.id
WHERE {" AND ".join(where)}
"""
    clause = text(sql).bindparams(
        bindparam("active", type_=Boolean()),
        *[
            bindparam(k, type_=t)
            for k, t in (("care_type", String()), ("subregion_id", Uuid()), ("region_id", Uuid()))
            if f":{k}" in sql
        ],
    )
    params: dict[str, Any] = {"active": True}
    if care_type is not None:
        params["care_type"] = care_type
    if subregion_id is not None:
        params["subregion_id"] = _uuid(subregion_id)
    if region_id is not None:
        params["region_id"] = _uuid(region_id)
    typed = clause.columns(reported_at=UTCDateTime(), closed_until=UTCDateTime())
    return [
        (str(r[0]), _uuid_str(r[1]), int(r[2]), int(r[3]), r[4], r[5], r[6])
        for r in (await conn.execute(typed, params)).all()
    ]


# --- 6.7 Wlz-crisis waiting ----------------------------------------------------------------------


async def wlz_crisis_waiting(
    conn: AsyncConnection,
    period: f.Period,
    *,
    now: datetime,
    flt: f.StayFilter | None = None,
) -> list[f.WaitingDay]:
    """``formulas.wlz_crisis_waiting`` in SQL: the local midnights of the period up to ``now``
    (a VALUES list of UTC instants) joined to the Wlz-crisis placements whose waiting span
    (``kpi_requested_at`` until the first of ``kpi_accepted_at`` / ``kpi_cancelled_at``, kept by
    ``app.kpi.episodes``) covers them; only placements overlapping the period are read."""
    flt = flt or f.StayFilter()
    dialect = conn.dialect.name
    days = []
    for n in range(f.day_no(period.start), f.day_no(period.end)):
        m = f.local_midnight(f.date_of(n))
        if m > now:
            break
        days.append((n, m))
    if not days:
        return []
    values = ", ".join(f"({n}, {_ts_literal(dialect, m)})" for n, m in days)
    where = [f"p.care_type = '{f.WLZ_CRISIS_CARE_TYPE}'"]
    if flt.hospital_id is not None:
        where.append("p.referrer_organisation_id = :hospital_id")
    if flt.subregion_id is not None:
        where.append("p.subregion_id = :subregion_id")
    if flt.region_id is not None:
        where.append("p.region_id = :region_id")
    sql = f"""
WITH bk(d, m) AS (VALUES {values}), w AS (
  SELECT p.patient_key, p.kpi_requested_at AS t0, p.kpi_accepted_at AS ta,
         p.kpi_cancelled_at AS tc
  FROM placement p
  WHERE {" AND ".join(where)} AND p.kpi_requested_at IS NOT NULL
    AND p.kpi_requested_at < :m1
    AND (p.kpi_accepted_at IS NULL OR p.kpi_accepted_at >= :m0)
    AND (p.kpi_cancelled_at IS NULL OR p.kpi_cancelled_at >= :m0)
)
SELECT bk.d, COUNT(DISTINCT w.patient_key)
FROM bk LEFT JOIN w ON w.t0 < bk.m AND (w.ta IS NULL OR w.ta >= bk.m)
                      AND (w.tc IS NULL OR w.tc >= bk.m)
GROUP BY bk.d
"""
    params = {**_stay_params(flt), "m0": days[0][1], "m1": days[-1][1]}
    clause, used = _bind(sql, params)
    counts = {int(r[0]): int(r[1]) for r in (await _run(conn, clause, used)).all()}
    return [f.WaitingDay(f.date_of(n), counts.get(n, 0)) for n, _ in days]


# --- 6.8 advance care planning of referrals aged 65+ ----------------------------------------------


async def advance_care_planning(
    conn: AsyncConnection,
    period: f.Period,
    *,
    flt: f.StayFilter | None = None,
    group_by: str | None = None,
) -> list[f.AcpRow]:
    """``formulas.advance_care_planning`` in SQL: the lead-time cohort (age at the request at
    least 65, or the filter's higher floor), counted by the referral's advance-care-planning
    answer."""
    flt = flt or f.StayFilter()
    flt = replace(flt, age_min=max(f.ACP_AGE_MIN, flt.age_min or 0))
    dialect = conn.dialect.name
    cohort = _cohort_sql(dialect, period, flt, group_by).replace(
        "p.kpi_expired_holds AS expired,",
        "p.kpi_expired_holds AS expired, p.advance_care_planning AS acp,",
    )
    sql = (
        "WITH "
        + cohort
        + """
SELECT label, acp, COUNT(*) FROM c GROUP BY label, acp
"""
    )
    clause, params = _bind(sql, _cohort_params(period, flt))
    rows: dict[str | None, f.AcpRow] = {}
    for r in (await _run(conn, clause, params)).all():
        label = _label(group_by, r[0])
        row = rows.setdefault(label, f.AcpRow(label))
        count = int(r[2])
        row.referrals += count
        if r[1] == f.ACP_RECORDED:
            row.recorded += count
        elif r[1] == f.ACP_NOT_RECORDED:
            row.not_recorded += count
        else:
            row.unknown += count
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- 6.9 between the cracks ----------------------------------------------------------------------


async def between_the_cracks(
    conn: AsyncConnection,
    period: f.Period,
    *,
    now: datetime,
    flt: f.StayFilter | None = None,
    group_by: str | None = None,
) -> list[f.CracksRow]:
    """``formulas.between_the_cracks`` in SQL: the lead-time cohort, each request's wait against
    its care type's norm (the region's own, else ``formulas.CARE_TYPE_NORM_HOURS`` as a CASE),
    and an earlier request of the same patient key within 30 days (an index lookup on
    ``patient_key``, in the caller's region)."""
    flt = flt or f.StayFilter()
    dialect = conn.dialect.name
    cases = " ".join(f"WHEN '{k}' THEN {f.norm_us(k)}" for k in sorted(f.CARE_TYPE_NORM_HOURS))
    norm = f"CASE c.ct {cases} ELSE {f.DEFAULT_NORM_HOURS * 3_600_000_000} END"
    own = await _region_norms_sql(conn, flt.region_id)
    if own:  # the placement's region's own norm first (docs/domain.md §6.9)
        norm = f"CASE {own} ELSE {norm} END"
    cohort = _cohort_sql(dialect, period, flt, group_by).replace(
        "p.kpi_expired_holds AS expired,",
        "p.kpi_expired_holds AS expired, p.patient_key AS pk, p.care_type AS ct,"
        " p.region_id AS rid,",
    )
    created = _us(dialect, "c.created_at")
    region = "AND p2.region_id = :region_id" if flt.region_id is not None else ""
    sql = (
        "WITH "
        + cohort
        + f""", k AS (
  SELECT c.label, {_clock_sql(dialect, "c.created_at", norm)} AS outcome,
    CASE WHEN EXISTS (
      SELECT 1 FROM placement p2
      WHERE p2.patient_key = c.pk AND p2.kpi_requested_at IS NOT NULL
        AND p2.kpi_requested_at < c.created_at
        AND {_us(dialect, "p2.kpi_requested_at")} >= {created} - {f.REREFERRAL_WINDOW_US} {region}
    ) THEN 1 ELSE 0 END AS rr
  FROM c
)
SELECT label, COUNT(*),
  SUM(CASE WHEN outcome IN ('late', 'overdue') THEN 1 ELSE 0 END),
  SUM(CASE WHEN outcome = 'left' THEN 1 ELSE 0 END), SUM(rr)
FROM k GROUP BY label
"""
    )
    params = {**_cohort_params(period, flt), "now_us": f.duration_us(now, _EPOCH_1970)}
    clause, used = _bind(sql, params)
    out = [
        f.CracksRow(
            _label(group_by, r[0]),
            requests=int(r[1]),
            over_norm=int(r[2]),
            cancelled_without_place=int(r[3]),
            re_referrals=int(r[4]),
        )
        for r in (await _run(conn, clause, used)).all()
    ]
    return sorted(out, key=lambda r: r.group or "")


async def region_norms(conn: AsyncConnection, region_id: str | None) -> dict[str, int]:
    """One region's own between-the-cracks norms in hours by care type (none without a region)."""
    from app.registry.models import RegionNorm

    if region_id is None:
        return {}
    rows = await conn.execute(
        select(RegionNorm.care_type, RegionNorm.hours).where(
            RegionNorm.region_id == uuid.UUID(region_id)
        )
    )
    return {care: int(hours) for care, hours in rows.all()}


async def _region_norms_sql(conn: AsyncConnection, region_id: str | None) -> str:
    """The regions' own between-the-cracks norms (``region_norm``, a few rows) as ``WHEN``
    clauses on the cohort's region and care type; empty when no region set its own."""
    from app.registry.models import RegionNorm

    stmt = select(RegionNorm.region_id, RegionNorm.care_type, RegionNorm.hours)
    if region_id is not None:
        stmt = stmt.where(RegionNorm.region_id == uuid.UUID(region_id))
    rows = (await conn.execute(stmt.order_by(RegionNorm.region_id, RegionNorm.care_type))).all()
    out = []
    for rid, care, hours in rows:
        if not care.replace("_", "").isalpha():  # a care type code, never SQL
            continue
        region = f"'{rid}'::uuid" if conn.dialect.name == "postgresql" else f"'{rid.hex}'"
        out.append(f"WHEN c.rid = {region} AND c.ct = '{care}' THEN {int(hours) * 3_600_000_000}")
    return " ".join(out)


# --- 6.10 shortage -------------------------------------------------------------------------------


async def shortage(
    conn: AsyncConnection,
    period: f.Period,
    *,
    region_id: str | None = None,
    subregion_id: str | None = None,
    care_type: str | None = None,
) -> list[f.ShortageRow]:
    """``formulas.shortage`` in SQL: ``shortage_event`` by its local day number (kept with each
    row, indexed), care type and subregion."""
    where = ["s.day_no >= :d0", "s.day_no < :d1"]
    if region_id is not None:
        where.append("s.region_id = :region_id")
    if subregion_id is not None:
        where.append("s.subregion_id = :subregion_id")
    if care_type is not None:
        where.append("s.care_type = :care_type")
    sql = f"""
SELECT s.day_no, s.care_type, s.subregion_id,
       SUM(CASE WHEN s.kind = '{f.HOLD_REFUSED}' THEN 1 ELSE 0 END),
       SUM(CASE WHEN s.kind = '{f.SEARCH_EMPTY}' THEN 1 ELSE 0 END)
FROM shortage_event s
WHERE {" AND ".join(where)}
GROUP BY s.day_no, s.care_type, s.subregion_id
"""
    params = {
        "d0": f.day_no(period.start),
        "d1": f.day_no(period.end),
        "region_id": _uuid(region_id),
        "subregion_id": _uuid(subregion_id),
        "care_type": care_type,
    }
    clause, used = _bind(sql, params)
    out = [
        f.ShortageRow(
            f.date_of(int(r[0])),
            str(r[1]),
            _label("subregion", r[2]) or f.UNKNOWN,
            holds_refused=int(r[3]),
            searches_empty=int(r[4]),
        )
        for r in (await _run(conn, clause, used)).all()
    ]
    return sorted(out, key=lambda r: (r.day, r.care_type, r.subregion))


async def record_shortage(
    conn: AsyncConnection, rows: Sequence[tuple[str, str | None, str | None, str, datetime]]
) -> None:
    """Append shortage moments ``(kind, region_id, subregion_id, care_type, at)``: one insert."""
    from app.kpi.models import ShortageEvent

    await conn.execute(
        insert(ShortageEvent),
        [
            {
                "id": uuid.uuid4(),
                "kind": kind,
                "region_id": _uuid(region),
                "subregion_id": _uuid(sub),
                "care_type": care,
                "occurred_at": at,
                "day_no": f.local_day(at),
            }
            for kind, region, sub, care, at in rows
        ],
    )


_HOLD_REFUSED_SQL = """
INSERT INTO shortage_event (id, kind, region_id, subregion_id, care_type, occurred_at, day_no)
SELECT :id, :kind, p.region_id, p.subregion_id, p.care_type, :at, :day
FROM placement p WHERE p.id = :placement_id
"""


async def record_hold_refused(
    conn: AsyncConnection, placement_id: uuid.UUID, at: datetime, *, kind: str = f.HOLD_REFUSED
) -> None:
    """Append the shortage moment of a hold refused for no capacity (or, ``kind`` search_empty, a
    search for the placement without result), with the placement's care type and subregion: one
    ``INSERT ... SELECT``."""
    clause = text(_HOLD_REFUSED_SQL).bindparams(
        bindparam("kind", type_=String()),
        bindparam("id", type_=Uuid()),
        bindparam("at", type_=UTCDateTime()),
        bindparam("day", type_=Integer()),
        bindparam("placement_id", type_=Uuid()),
    )
    await conn.execute(
        clause,
        {
            "kind": kind,
            "id": uuid.uuid4(),
            "at": at,
            "day": f.local_day(at),
            "placement_id": placement_id,
        },
    )
