"""KPI service (docs/domain.md §6, §12.2): validates a KPI question, runs the SQL aggregates of
``app.kpi.queries``, applies small-cell suppression for analysts, attaches targets, renders CSV.

Reads run on the read engine and never write, except ``ensure_calendar`` when the calendar
table misses days (an emptied table); baselines and inflow reports are writes in the caller's
session, committed by the route.
"""

from __future__ import annotations

import csv
import inspect
import io
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import Settings
from app.db import Database
from app.enums import (
    CareType,
    OrganisationKind,
    Role,
    is_closed,
)
from app.errors import Forbidden, InvalidInput
from app.kpi import forecast as fc
from app.kpi import formulas as f
from app.kpi import queries
from app.kpi.models import INFLOW_KEY, InflowCount, KpiBaseline
from app.kpi.schemas import (
    SUPPRESSION_NOTE,
    BackTestRead,
    BaselineIn,
    BaselineRead,
    CurrentCapacityRead,
    DemandForecastAnswer,
    DemandSeriesRead,
    ForecastDayRead,
    InflowReportIn,
    InflowReportResult,
    PeriodRead,
)
from app.kpi.specs import (
    ADMISSION_GUARANTEE,
    ADVANCE_CARE_PLANNING,
    BETWEEN_THE_CRACKS,
    CAPACITY,
    ESCALATIONS,
    GGZ_CRISIS_WITHIN_NORM,
    INFLOW,
    LEAD_TIMES,
    MAX_PERIOD_DAYS,
    SHORTAGE,
    SMALL_CELL,
    SPECS,
    WLZ_CRISIS_WAITING,
    WRONG_BED_DAYS,
    A,
    Ctx,
    KpiQuery,
    KpiSpec,
    hide,
    invalid,
)
from app.principal import Principal
from app.registry.models import Organisation, Subregion
from app.registry.service import subregion_is

__all__ = ["MAX_PERIOD_DAYS", "SMALL_CELL", "KpiQuery"]

CALENDAR_FIRST = date(2015, 1, 1)
CALENDAR_END = date(2041, 1, 1)
# Which organisation kind may report which inflow source (docs/domain.md §6.2)
SOURCE_KINDS = {
    "seh": OrganisationKind.HOSPITAL.value,
    "hap": OrganisationKind.HAP.value,
    "rav": OrganisationKind.RAV.value,
    "vvt_acute": OrganisationKind.VVT.value,
}
GROUPS: dict[str, frozenset[str]] = {name: spec.groups for name, spec in SPECS.items()}


def validate(q: KpiQuery, spec: KpiSpec[Any]) -> None:
    """Period [from, to) of local dates within the calendar, not longer than the KPI allows; a
    group_by the KPI knows; the KPI's own rule on the question."""
    p = q.period
    if p.start < CALENDAR_FIRST or p.start >= CALENDAR_END:
        raise invalid("from", f"must lie in {CALENDAR_FIRST} .. {CALENDAR_END}")
    if p.end > CALENDAR_END:
        raise invalid("to", f"must not be after {CALENDAR_END}")
    if p.days > spec.max_days:
        raise invalid("to", f"the period is {p.days} days; at most {spec.max_days} for this KPI")
    if q.group_by is not None and q.group_by not in spec.groups:
        raise invalid("group_by", f"must be one of {', '.join(sorted(spec.groups))} for this KPI")
    if spec.check is not None:
        spec.check(q)


def make_period(start: date, end: date) -> f.Period:
    if end <= start:
        raise invalid("to", "must be after from (the period is [from, to))")
    return f.Period(start, end)


def suppressed_for(principal: Principal) -> bool:
    """Analyst output is suppressed; triagists and admins see every cell (docs/domain.md §14)."""
    return (
        Role.ANALYST in principal.roles
        and not principal.is_admin
        and Role.TRIAGIST not in principal.roles
    )


async def _subregion_id(conn: AsyncConnection, ref: str | None) -> str | None:
    if ref is None:
        return None
    found = (await conn.execute(select(Subregion.id).where(subregion_is(ref)))).scalar_one_or_none()
    if found is None:
        raise invalid("subregion", "no subregion with this id or code")
    return str(found)


async def _subregion_codes(conn: AsyncConnection) -> dict[str, str]:
    rows = (await conn.execute(select(Subregion.id, Subregion.code))).all()
    return {str(r[0]): str(r[1]) for r in rows}


async def _calendar(db: Database, period: f.Period) -> None:
    """The calendar covers the period (and the day before it) or is extended first, before the
    KPI's own read opens its snapshot."""
    first, last = period.start - timedelta(days=1), period.end
    want = f.day_no(last) - f.day_no(first) + 1
    async with db.read() as conn:
        have = (
            await conn.execute(
                select(func.count()).where(
                    queries.calendar_table().c.day_no.between(f.day_no(first), f.day_no(last))
                )
            )
        ).scalar_one()
    if have != want:
        async with db.engine.begin() as write:
            await queries.ensure_calendar(write, first, last)


def _period_read(p: f.Period) -> PeriodRead:
    return PeriodRead.model_validate({"from": p.start, "to": p.end, "days": p.days})


def _filters(spec: KpiSpec[Any], q: KpiQuery) -> dict[str, str | int | None]:
    out: dict[str, str | int | None] = {
        "age_min": q.age_min,
        "hospital": None if q.hospital is None else str(q.hospital),
        "subregion": q.subregion,
        "care_type": None if q.care_type is None else q.care_type.value,
    }
    if spec.filters_definition:
        out["definition"] = q.definition
    return out


def _relabel(group_by: str | None, label: str | None, codes: Mapping[str, str]) -> str | None:
    if group_by == "subregion" and label is not None:
        return codes.get(label, label)
    return label


def scope_region(principal: Principal) -> str | None:
    """KPIs cover the caller's own region; only an admin sees every region (None)."""
    if principal.is_admin:
        return None
    if principal.region_id is None:
        raise Forbidden("KPIs are per region, and this key's organisation belongs to none.")
    return str(principal.region_id)


async def _context(
    conn: AsyncConnection,
    q: KpiQuery,
    principal: Principal,
    *,
    now: datetime,
    settings: Settings | None,
    suppress: bool,
) -> Ctx:
    sub = await _subregion_id(conn, q.subregion)
    flt = f.StayFilter(
        region_id=scope_region(principal),
        age_min=q.age_min,
        definition="narrow" if q.definition == "narrow" else "broad",
        hospital_id=None if q.hospital is None else str(q.hospital),
        subregion_id=sub,
        care_type=None if q.care_type is None else q.care_type.value,
    )
    codes = await _subregion_codes(conn)
    return Ctx(conn, q, flt, codes, now, settings, suppress)


def _cell(spec: KpiSpec[Any], row: Any, label: str | None, ctx: Ctx, *, total: bool) -> BaseModel:
    """A row or total as its read, blanked if it is a small cell for the caller."""
    count = None if spec.cell is None else spec.cell(row)
    keep = spec.total_keep if total else spec.keep
    return hide(spec.read(row, label, ctx.codes), count, keep, ctx.suppress)


async def answer(
    db: Database,
    principal: Principal,
    spec: KpiSpec[A],
    q: KpiQuery,
    *,
    now: datetime,
    settings: Settings | None = None,
) -> A:
    """The answer to a question about any KPI (docs/domain.md §6): the spec's roles, the
    caller's region, the question validated once, the calendar extended, the spec's query for
    the rows and their total, small cells suppressed for analysts, targets, notes."""
    principal.require(*spec.roles)
    if spec.answered_by is not None:
        validate(replace(q, kpi=spec.name), spec)
        return spec.answer.model_validate(await spec.answered_by(db, principal, q, now))
    suppress = suppressed_for(principal) and spec.cell is not None
    q = replace(q, kpi=spec.name)
    validate(q, spec)
    if spec.calendar:
        await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _context(conn, q, principal, now=now, settings=settings, suppress=suppress)
        raw = await spec.fetch(ctx, q.group_by)
        labels = [_relabel(q.group_by, getattr(r, "group", None), ctx.codes) for r in raw]
        rows = [_cell(spec, r, lb, ctx, total=False) for r, lb in zip(raw, labels, strict=True)]
        if spec.summary is not None:
            read, count = spec.summary(raw, ctx.codes)
            totals_raw: Sequence[Any] = raw
            totals = [hide(read, count, spec.total_keep, suppress)]
        else:
            totals_raw = raw if q.group_by is None else await spec.fetch(ctx, None)
            if spec.total == "one":
                totals_raw = [totals_raw[0] if totals_raw else spec.empty]
            totals = [_cell(spec, r, None, ctx, total=True) for r in totals_raw]
        targets = [] if spec.targets is None else await spec.targets(ctx, totals_raw, totals)
        more = spec.more(ctx)
        if inspect.isawaitable(more):
            more = await more
    notes = [SUPPRESSION_NOTE] if suppress else []
    return spec.answer.model_validate(
        {
            "kpi": spec.name,
            "period": _period_read(q.period),
            "group_by": q.group_by,
            "filters": _filters(spec, q),
            "suppressed_cells": sum(getattr(r, "suppressed", False) for r in rows + totals),
            "rows": rows,
            **({"totals": totals} if spec.total == "each" else {"total": totals[0]}),
            **({"targets": targets} if spec.targets is not None else {}),
            "notes": notes + [n.replace("{now}", now.isoformat()) for n in spec.notes],
            "computed_at": now,
            **more,
        }
    )


def answers(spec: KpiSpec[A]) -> Callable[..., Awaitable[A]]:
    """``answer`` for one spec: ``await wrong_bed_days(db, principal, q, now=now)``."""

    async def bound(
        db: Database, principal: Principal, q: KpiQuery, *, now: datetime, **kw: Any
    ) -> A:
        return await answer(db, principal, spec, q, now=now, **kw)

    bound.__name__ = spec.name
    return bound


wrong_bed_days = answers(WRONG_BED_DAYS)
inflow = answers(INFLOW)
lead_times = answers(LEAD_TIMES)
escalations = answers(ESCALATIONS)
capacity = answers(CAPACITY)
ggz_crisis_within_norm = answers(GGZ_CRISIS_WITHIN_NORM)
admission_guarantee = answers(ADMISSION_GUARANTEE)
wlz_crisis_waiting = answers(WLZ_CRISIS_WAITING)
advance_care_planning = answers(ADVANCE_CARE_PLANNING)
between_the_cracks = answers(BETWEEN_THE_CRACKS)
shortage = answers(SHORTAGE)


# --- CSV ---------------------------------------------------------------------------------------


def csv_table(answer: BaseModel) -> tuple[list[str], list[list[Any]]]:
    """The answer's rows and totals as a header and lines (None for an empty cell), the same for
    the CSV and the dashboard's spreadsheet; every line carries the KPI, its definition version
    and the period."""
    data = answer.model_dump(mode="json", by_alias=True)
    period = data.get("period") or {"from": data["period_from"], "to": data["period_to"]}
    lines: list[tuple[str, dict[str, Any]]] = [("row", r) for r in data["rows"]]
    if "total" in data:
        lines.append(("total", data["total"]))
    lines += [("total", r) for r in data.get("totals", [])]
    flat = []
    decline_keys: set[str] = set()
    for kind, row in lines:
        item = {k: v for k, v in row.items() if k != "declines"}
        declines = row.get("declines") or {}
        decline_keys |= set(declines)
        item |= {f"decline_{k}": v for k, v in declines.items()}
        flat.append((kind, item, "declines" in row and row["declines"] is None))
    columns = ["kpi", "definition_version", "period_from", "period_to", "line"]
    seen: list[str] = []
    for _, item, _ in flat:
        seen += [k for k in item if k not in seen]
    seen += [f"decline_{k}" for k in sorted(decline_keys) if f"decline_{k}" not in seen]
    out: list[list[Any]] = []
    for kind, item, declines_hidden in flat:
        values = []
        for col in seen:
            value = item.get(col)
            if value is None and col.startswith("decline_") and not declines_hidden:
                value = 0
            values.append(value)
        out.append(
            [
                data["kpi"],
                data.get("definition_version", f.DEFINITION_VERSION),
                period["from"],
                period["to"],
                kind,
                *values,
            ]
        )
    return columns + seen, out


def render_csv(answer: BaseModel) -> str:
    """The answer's rows and totals as CSV with the same numbers as the JSON."""
    header, lines = csv_table(answer)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for line in lines:
        writer.writerow(["" if v is None else v for v in line])
    return out.getvalue()


# --- baselines ----------------------------------------------------------------------------------


def _baseline_read(b: KpiBaseline) -> BaselineRead:
    return BaselineRead(
        id=b.id,
        kpi=b.kpi,
        year=b.year,
        scope=b.scope,
        value=b.value,
        source=b.source,
        loaded_at=b.loaded_at,
    )


async def put_baselines(
    session: AsyncSession, principal: Principal, items: Sequence[BaselineIn], *, now: datetime
) -> list[BaselineRead]:
    """Load fixed reference figures (docs/domain.md §12.2): one per (kpi, year, scope); a re-load
    replaces value and source. Admins only."""
    if not principal.is_admin:
        raise Forbidden("Only admin keys load KPI baselines.")
    keys = [(b.kpi, b.year, b.scope) for b in items]
    if len(set(keys)) != len(keys):
        raise InvalidInput(
            "The same (kpi, year, scope) appears twice in the request.",
            errors=[{"pointer": "#", "detail": "duplicate (kpi, year, scope)"}],
        )
    out = []
    for item in items:
        row = await session.scalar(
            select(KpiBaseline).where(
                KpiBaseline.kpi == item.kpi,
                KpiBaseline.year == item.year,
                KpiBaseline.scope == item.scope,
            )
        )
        if row is None:
            row = KpiBaseline(kpi=item.kpi, year=item.year, scope=item.scope, id=uuid.uuid4())
            session.add(row)
        row.value = item.value
        row.source = item.source
        row.loaded_at = now
        row.loaded_by_key_id = principal.key_id
        out.append(row)
    await session.flush()
    return [_baseline_read(b) for b in out]


async def list_baselines(db: Database, principal: Principal) -> list[BaselineRead]:
    principal.require(Role.ANALYST, Role.TRIAGIST)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(KpiBaseline.__table__).order_by(
                    KpiBaseline.kpi, KpiBaseline.year, KpiBaseline.scope
                )
            )
        ).mappings()
        return [_baseline_read(KpiBaseline(**dict(r))) for r in rows]


# --- inflow reports -------------------------------------------------------------------------------

MAX_REPORT_PERIOD_DAYS = 31


async def report_inflow(
    session: AsyncSession,
    principal: Principal,
    body: InflowReportIn,
    *,
    now: datetime,
) -> InflowReportResult:
    """Store aggregated SEH/HAP/RAV contacts (docs/domain.md §6.2). Idempotent per (source,
    organisation, period, age band, native urgency, contact type): a re-sent line replaces the
    stored count (upsert, ``version`` + 1); the whole request is one transaction."""
    org_id = body.organisation_id or principal.organisation_id
    if org_id is None:
        raise InvalidInput(
            "An admin key must name the reporting organisation.",
            errors=[{"pointer": "#/organisation_id", "detail": "required"}],
        )
    if not principal.is_admin:
        principal.require(Role.PROVIDER, Role.REFERRER)
        principal.require_organisation(org_id, "inflow reports")
    org = await session.get(Organisation, org_id)
    if org is None:
        raise InvalidInput(
            "Unknown reporting organisation.",
            errors=[{"pointer": "#/organisation_id", "detail": "no such organisation"}],
        )
    if org.kind != SOURCE_KINDS[body.source]:
        raise InvalidInput(
            f"Source {body.source} is reported by organisations of kind "
            f"{SOURCE_KINDS[body.source]}, not {org.kind}.",
            errors=[{"pointer": "#/source", "detail": "does not match the organisation's kind"}],
        )
    today = f.local_date(now)
    errors = []
    subregions: dict[str, uuid.UUID] = {}
    keys: set[tuple[date, date, str, str, str]] = set()
    for i, line in enumerate(body.lines):
        days = (line.period_end - line.period_start).days
        if days <= 0:
            errors.append({"pointer": f"#/lines/{i}/period_end", "detail": "not after start"})
        elif days > MAX_REPORT_PERIOD_DAYS:
            errors.append(
                {"pointer": f"#/lines/{i}/period_end", "detail": "period longer than 31 days"}
            )
        if line.period_start < CALENDAR_FIRST:
            errors.append({"pointer": f"#/lines/{i}/period_start", "detail": "before 2015"})
        if line.period_end > today + timedelta(days=1):
            errors.append({"pointer": f"#/lines/{i}/period_end", "detail": "in the future"})
        if line.contact_type not in f.CONTACT_TYPES[body.source]:
            known = ", ".join(f.CONTACT_TYPES[body.source])
            errors.append({"pointer": f"#/lines/{i}/contact_type", "detail": f"one of {known}"})
        if line.urgency_native not in f.URGENCY_CODES[body.source]:
            known = ", ".join(f.URGENCY_CODES[body.source])
            errors.append({"pointer": f"#/lines/{i}/urgency_native", "detail": f"one of {known}"})
        if line.subregion is not None and line.subregion not in subregions:
            found = await session.scalar(select(Subregion.id).where(subregion_is(line.subregion)))
            if found is None:
                errors.append({"pointer": f"#/lines/{i}/subregion", "detail": "unknown"})
            else:
                subregions[line.subregion] = found
        key = (
            line.period_start,
            line.period_end,
            line.age_band,
            line.urgency_native,
            line.contact_type,
        )
        if key in keys:
            errors.append({"pointer": f"#/lines/{i}", "detail": "same key as an earlier line"})
        keys.add(key)
    if errors:
        raise InvalidInput(
            "Inflow report refused: " + "; ".join(f"{e['pointer']} {e['detail']}" for e in errors),
            errors=errors[:50],
        )
    rows = [
        {
            "source": body.source,
            "organisation_id": org_id,
            "subregion_id": None if line.subregion is None else subregions[line.subregion],
            "period_start": line.period_start,
            "period_end": line.period_end,
            "age_band": line.age_band,
            "urgency_native": line.urgency_native,
            "contact_type": line.contact_type,
            "count": line.count,
            "version": 1,
            "received_at": now,
            "updated_at": now,
            "reported_by_key_id": principal.key_id,
        }
        for line in body.lines
    ]
    conn = await session.connection()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(InflowCount).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(INFLOW_KEY),
        set_={
            "count": stmt.excluded.count,
            "subregion_id": stmt.excluded.subregion_id,
            "version": InflowCount.version + 1,
            "updated_at": stmt.excluded.updated_at,
            "reported_by_key_id": stmt.excluded.reported_by_key_id,
        },
    ).returning(InflowCount.version)
    versions: list[int] = list((await conn.execute(stmt)).scalars())
    inserted = sum(1 for v in versions if v == 1)
    return InflowReportResult(received=len(rows), inserted=inserted, replaced=len(rows) - inserted)


# --- demand forecast (docs/domain.md §6.6) --------------------------------------------------------

MIN_FORECAST_HISTORY = 28
MAX_FORECAST_HISTORY = 730


def _backtest_read(b: fc.BackTest) -> BackTestRead:
    beats = None
    if b.mae is not None and b.mae_seasonal_naive is not None:
        beats = b.mae < b.mae_seasonal_naive
    return BackTestRead(
        train_days=b.train_days,
        test_days=b.test_days,
        mae=b.mae,
        mae_seasonal_naive=b.mae_seasonal_naive,
        beats_seasonal_naive=beats,
    )


def _series_read(
    care_type: str,
    subregion: str | None,
    counts: Sequence[int],
    capacity: CurrentCapacityRead,
    first_day: date,
    horizon: int,
) -> DemandSeriesRead:
    result = fc.forecast(counts, horizon)
    return DemandSeriesRead(
        care_type=care_type,
        subregion=subregion,
        method="mean" if result.method == "mean" else "holt_winters_damped",
        history_requests=sum(counts),
        capacity=capacity,
        backtest=_backtest_read(result.backtest),
        days=[
            ForecastDayRead(
                date=first_day + timedelta(days=d.day_index),
                expected=round(d.expected, 3),
                lower=round(d.lower, 3),
                upper=round(d.upper, 3),
            )
            for d in result.days
        ],
    )


async def demand_forecast(
    db: Database,
    principal: Principal,
    *,
    now: datetime,
    settings: Settings,
    history_days: int = 365,
    care_type: CareType | None = None,
    subregion: str | None = None,
) -> DemandForecastAnswer:
    """Expected requests per local day for the 14 days from today, per care type and subregion,
    with an 80 % interval, next to the places available now (docs/domain.md §6.6). The history
    is the ``history_days`` complete local days before today (``request_created`` of each
    placement); the back-test is computed from the same history at request time."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    if not MIN_FORECAST_HISTORY <= history_days <= MAX_FORECAST_HISTORY:
        raise invalid("history_days", f"must be {MIN_FORECAST_HISTORY} .. {MAX_FORECAST_HISTORY}")
    today = f.local_date(now)
    first = today - timedelta(days=history_days)
    horizon = fc.HORIZON
    await _calendar(db, f.Period(first, today + timedelta(days=horizon)))
    ct = None if care_type is None else care_type.value
    async with db.read() as conn:
        sub = await _subregion_id(conn, subregion)
        codes = await _subregion_codes(conn)
        region = scope_region(principal)
        counts = await queries.daily_requests(
            conn, first, today, care_type=ct, subregion_id=sub, region_id=region
        )
        units = await queries.unit_capacity_now(
            conn, care_type=ct, subregion_id=sub, region_id=region
        )
    series: dict[tuple[str, str | None], list[int]] = {}
    base = f.day_no(first)
    for care, sub_id, day, n in counts:
        series.setdefault((care, sub_id), [0] * history_days)[day - base] += n
    capacity: dict[tuple[str, str | None], list[int]] = {}
    for care, sub_id, free, held, reported_at, reason, until in units:
        cap = capacity.setdefault((care, sub_id), [0, 0, 0, 0])
        series.setdefault((care, sub_id), [0] * history_days)
        cap[0] += 1
        if is_closed(reason, until, now):
            cap[2] += 1
        elif reported_at is not None:
            cap[1] += max(free - held, 0)
        if reported_at is None or now - reported_at > settings.stale_after(care):
            cap[3] += 1

    def cap_read(values: Sequence[int]) -> CurrentCapacityRead:
        return CurrentCapacityRead(
            units=values[0], available=values[1], closed_units=values[2], stale_units=values[3]
        )

    reads = [
        _series_read(
            care,
            None if sub_id is None else codes.get(sub_id, sub_id),
            values,
            cap_read(capacity.get((care, sub_id), [0, 0, 0, 0])),
            today,
            horizon,
        )
        for (care, sub_id), values in sorted(
            series.items(), key=lambda kv: (kv[0][0], codes.get(kv[0][1] or "", "~"))
        )
    ]
    summed = [sum(day) for day in zip(*series.values(), strict=True)] or [0] * history_days
    all_cap = [sum(c[i] for c in capacity.values()) for i in range(4)]
    total = _series_read("all", None, summed, cap_read(all_cap), today, horizon)
    return DemandForecastAnswer(
        method="additive Holt-Winters, damped trend, weekly season; 80 % interval from "
        "back-test residuals (docs/domain.md §6.6)",
        history=_period_read(f.Period(first, today)),
        horizon=_period_read(f.Period(today, today + timedelta(days=horizon))),
        filters={"care_type": ct, "subregion": subregion, "history_days": history_days},
        total=total,
        series=reads,
        notes=[
            "Requests are counted on the local date of their first request_created; today is "
            "not in the history (incomplete).",
            "Back-test: train on the first three quarters of the history, forecast the last "
            "quarter in one go; compared with repeating the last training week.",
            "Forecasts are model output, not counts of patients: nothing is suppressed.",
        ],
        computed_at=now,
    )
