"""KPI service (docs/domain.md §6, §12.2): validates a KPI question, runs the SQL aggregates of
``app.kpi.queries``, applies small-cell suppression for analysts, attaches targets, renders CSV.

Reads run on the read engine and never write, except ``ensure_calendar`` when the calendar
table misses days (an emptied table); baselines and inflow reports are writes in the caller's
session, committed by the route.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import Settings
from app.db import Database
from app.enums import (
    GUARANTEED_CARE_TYPES,
    CareType,
    NotAcceptingReason,
    OrganisationKind,
    Role,
    is_closed,
)
from app.errors import Forbidden, InvalidInput
from app.kpi import forecast as fc
from app.kpi import formulas as f
from app.kpi import queries
from app.kpi.models import InflowCount, KpiBaseline
from app.kpi.schemas import (
    SUPPRESSION_NOTE,
    AcpAnswer,
    AcpRead,
    BackTestRead,
    BaselineIn,
    BaselineRead,
    CapacityAnswer,
    CapacityRead,
    CracksAnswer,
    CracksRead,
    CurrentCapacityRead,
    DemandForecastAnswer,
    DemandSeriesRead,
    EscalationAnswer,
    EscalationRead,
    ForecastDayRead,
    GgzAnswer,
    GgzRead,
    GuaranteeAnswer,
    GuaranteeRead,
    InflowAnswer,
    InflowRead,
    InflowReportIn,
    InflowReportResult,
    LeadTimeAnswer,
    LeadTimeRead,
    PeriodRead,
    ShortageAnswer,
    ShortageRead,
    ShortageTotalRead,
    TargetRead,
    WaitingAnswer,
    WaitingDayRead,
    WaitingTotalRead,
    WrongBedAnswer,
    WrongBedRead,
)
from app.principal import Principal
from app.registry.models import Organisation, Subregion

CALENDAR_FIRST = date(2015, 1, 1)
CALENDAR_END = date(2041, 1, 1)
MAX_PERIOD_DAYS = 1_100  # three years and a bit: a yearly comparison with its predecessor
MAX_CAPACITY_DAYS = 400  # the capacity census is units x days
SMALL_CELL = 5  # fewer patients than this are suppressed for analysts (1-4; 0 is shown)
BASELINE_YEAR = 2022
MINUTE_US = 60_000_000

GROUPS: dict[str, frozenset[str]] = {
    "wrong_bed_days": frozenset(
        {"month", "week", "hospital", "subregion", "age_band", "care_type", "source"}
    ),
    "inflow": frozenset({"month", "week", "subregion", "age_band", "source"}),
    "lead_times": frozenset(
        {"month", "week", "hospital", "subregion", "age_band", "care_type", "source"}
        | {"patient_group"}  # docs/domain.md §6.8: bottlenecks by patient group
    ),
    "escalations": frozenset(
        {"month", "week", "hospital", "subregion", "age_band", "care_type", "source"}
    ),
    "capacity": frozenset({"month", "week", "subregion", "care_type"}),
    "ggz_crisis_within_norm": frozenset(
        {"month", "week", "hospital", "subregion", "age_band", "source"}
    ),
}
# Which organisation kind may report which inflow source (docs/domain.md §6.2)
SOURCE_KINDS = {
    "seh": OrganisationKind.HOSPITAL.value,
    "hap": OrganisationKind.HAP.value,
    "rav": OrganisationKind.RAV.value,
    "vvt_acute": OrganisationKind.VVT.value,
}


@dataclass(frozen=True)
class KpiQuery:
    """A validated KPI question."""

    kpi: str
    period: f.Period
    group_by: str | None = None
    age_min: int | None = None
    definition: str = "broad"
    hospital: uuid.UUID | None = None
    subregion: str | None = None  # id or code, as given
    care_type: CareType | None = None


def _invalid(param: str, detail: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid value for query:{param}: {detail}",
        errors=[{"pointer": f"query:{param}", "detail": detail}],
    )


def validate(q: KpiQuery) -> None:
    """Period [from, to) of local dates within the calendar, not too long; known group_by."""
    p = q.period
    if p.start < CALENDAR_FIRST or p.start >= CALENDAR_END:
        raise _invalid("from", f"must lie in {CALENDAR_FIRST} .. {CALENDAR_END}")
    if p.end > CALENDAR_END:
        raise _invalid("to", f"must not be after {CALENDAR_END}")
    longest = MAX_CAPACITY_DAYS if q.kpi == "capacity" else MAX_PERIOD_DAYS
    if p.days > longest:
        raise _invalid("to", f"the period is {p.days} days; at most {longest} for this KPI")
    if q.group_by is not None and q.group_by not in GROUPS[q.kpi]:
        raise _invalid(
            "group_by", f"must be one of {', '.join(sorted(GROUPS[q.kpi]))} for this KPI"
        )


def make_period(start: date, end: date) -> f.Period:
    if end <= start:
        raise _invalid("to", "must be after from (the period is [from, to))")
    return f.Period(start, end)


def _suppress(principal: Principal) -> bool:
    """Analyst output is suppressed; triagists and admins see every cell (docs/domain.md §14)."""
    return (
        Role.ANALYST in principal.roles
        and not principal.is_admin
        and Role.TRIAGIST not in principal.roles
    )


def _small(n: int) -> bool:
    return 0 < n < SMALL_CELL


def _blank(model: BaseModel, keep: Sequence[str]) -> dict[str, Any]:
    data = model.model_dump()
    return {k: (v if k in keep else None) for k, v in data.items()} | {"suppressed": True}


async def _subregion_id(conn: AsyncConnection, ref: str | None) -> str | None:
    if ref is None:
        return None
    try:
        as_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        as_id = None
    cond = Subregion.code == ref if as_id is None else Subregion.id == as_id
    found = (await conn.execute(select(Subregion.id).where(cond))).scalar_one_or_none()
    if found is None:
        raise _invalid("subregion", "no subregion with this id or code")
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


async def _baselines(conn: AsyncConnection, kpi: str, year: int) -> dict[str, KpiBaseline]:
    rows = (
        await conn.execute(
            select(KpiBaseline.scope, KpiBaseline.value, KpiBaseline.source).where(
                KpiBaseline.kpi == kpi, KpiBaseline.year == year
            )
        )
    ).all()
    return {
        str(r[0]): KpiBaseline(kpi=kpi, year=year, scope=r[0], value=r[1], source=r[2])
        for r in rows
    }


def _target_read(t: f.Target, source: str | None) -> TargetRead:
    return TargetRead(
        kpi=t.kpi,
        scope=t.scope,
        rule=t.rule,
        baseline_year=t.baseline_year,
        baseline_value=t.baseline_value,
        baseline_source=source,
        target_year=t.target_year,
        value=t.value,
        fraction=t.fraction,
        measured=t.measured,
        on_track=t.on_track,
    )


def _period_read(p: f.Period) -> PeriodRead:
    return PeriodRead.model_validate({"from": p.start, "to": p.end, "days": p.days})


def _filters(q: KpiQuery, **extra: str | int | None) -> dict[str, str | int | None]:
    return {
        "age_min": q.age_min,
        "hospital": None if q.hospital is None else str(q.hospital),
        "subregion": q.subregion,
        "care_type": None if q.care_type is None else q.care_type.value,
        **extra,
    }


def _relabel(group_by: str | None, label: str | None, codes: dict[str, str]) -> str | None:
    if group_by == "subregion" and label is not None:
        return codes.get(label, label)
    return label


@dataclass
class _Ctx:
    conn: AsyncConnection
    flt: f.StayFilter
    codes: dict[str, str]


def scope_region(principal: Principal) -> str | None:
    """KPIs cover the caller's own region; only an admin sees every region (None)."""
    if principal.is_admin:
        return None
    if principal.region_id is None:
        raise Forbidden("KPIs are per region, and this key's organisation belongs to none.")
    return str(principal.region_id)


async def _prepare(db: Database, conn: AsyncConnection, q: KpiQuery, principal: Principal) -> _Ctx:
    sub = await _subregion_id(conn, q.subregion)
    flt = f.StayFilter(
        region_id=scope_region(principal),
        age_min=q.age_min,
        definition="narrow" if q.definition == "narrow" else "broad",
        hospital_id=None if q.hospital is None else str(q.hospital),
        subregion_id=sub,
        care_type=None if q.care_type is None else q.care_type.value,
    )
    return _Ctx(conn, flt, await _subregion_codes(conn))


R = TypeVar("R")


async def _rows_and_totals(
    fetch: Callable[[str | None], Awaitable[Sequence[R]]], group_by: str | None
) -> tuple[Sequence[R], Sequence[R]]:
    """A KPI's rows for ``group_by`` and its ungrouped total: one query when not grouped."""
    rows = await fetch(group_by)
    return rows, rows if group_by is None else await fetch(None)


# --- wrong-bed days -----------------------------------------------------------------------------


def _vbd_read(r: f.WrongBedRow, label: str | None, suppress: bool) -> WrongBedRead:
    read = WrongBedRead(
        group=label,
        days=r.days,
        patients=r.patients,
        avg_daily=r.avg_daily,
        intervals=r.intervals,
        open_intervals=r.open_intervals,
        backdated=r.backdated,
        hospital_transfers=r.hospital_transfers,
        deaths=r.deaths,
        calendar_days=r.calendar_days,
    )
    if suppress and _small(r.patients):
        return WrongBedRead.model_validate(_blank(read, ("group", "calendar_days")))
    return read


async def wrong_bed_days(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> WrongBedAnswer:
    """Verkeerde-bed days (docs/domain.md §6.1), broad by default, narrow as a filter (§12.2)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        rows, totals = await _rows_and_totals(
            lambda g: queries.wrong_bed_days(conn, q.period, now=now, flt=ctx.flt, group_by=g),
            q.group_by,
        )
        targets = []
        year = f.year_fraction(q.period)
        total = totals[0]
        total_read = _vbd_read(total, None, suppress)
        region_wide = q.hospital is None and q.subregion is None and q.care_type is None
        if year is not None and q.age_min == 75 and q.definition == "broad" and region_wide:
            base = (await _baselines(conn, "wrong_bed_days", BASELINE_YEAR)).get("age75+/broad")
            if base is not None:
                t = f.wrong_bed_target(
                    base.value,
                    baseline_year=BASELINE_YEAR,
                    year=year[0],
                    fraction=year[1],
                    measured=float(total.days),
                )
                if total_read.suppressed:
                    t = replace(t, measured=None, on_track=None)
                targets.append(_target_read(t, base.source))
    reads = [_vbd_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    return WrongBedAnswer(
        kpi="wrong_bed_days",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q),
        definition="narrow" if q.definition == "narrow" else "broad",
        suppressed_cells=sum(r.suppressed for r in reads) + total_read.suppressed,
        rows=reads,
        total=total_read,
        targets=targets,
        notes=[
            *_notes(suppress),
            "Days are a midnight census of ready intervals in Europe/Amsterdam; open intervals "
            f"end at {now.isoformat()} (now).",
        ],
        computed_at=now,
    )


def _notes(suppress: bool) -> list[str]:
    return [SUPPRESSION_NOTE] if suppress else []


# --- inflow ------------------------------------------------------------------------------------


def _inflow_read(r: f.InflowRow, label: str | None, suppress: bool) -> InflowRead:
    read = InflowRead(source=r.source, group=label, count=r.count, ehgv=r.ehgv)
    if suppress and _small(r.count):
        return InflowRead.model_validate(_blank(read, ("source", "group")))
    return read


async def inflow(db: Database, principal: Principal, q: KpiQuery, *, now: datetime) -> InflowAnswer:
    """SEH75, HAP75 and RAV75 from inflow reports (docs/domain.md §6.2), always per source."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        sub = ctx.flt.subregion_id
        rows, totals = await _rows_and_totals(
            lambda g: queries.inflow(
                conn,
                q.period,
                age_min=q.age_min,
                subregion_id=sub,
                group_by=g,
                region_id=ctx.flt.region_id,
            ),
            q.group_by,
        )
        targets = []
        year = f.year_fraction(q.period)
        if year is not None and q.age_min == 75 and sub is None:
            bases = await _baselines(conn, "inflow", BASELINE_YEAR)
            for source in f.CAPPED_SOURCES:
                base = bases.get(source)
                if base is None:
                    continue
                measured = sum(r.count for r in totals if r.source == source)
                hidden = suppress and _small(measured)
                t = f.inflow_target(
                    source,
                    base.value,
                    baseline_year=BASELINE_YEAR,
                    fraction=year[1],
                    measured=float(measured),
                )
                if hidden:
                    t = replace(t, measured=None, on_track=None)
                targets.append(_target_read(t, base.source))
        targets += await _ambulance_targets(conn, q, sub, totals, suppress)
    reads = [_inflow_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    total_reads = [_inflow_read(r, None, suppress) for r in totals]
    return InflowAnswer(
        kpi="inflow",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q),
        suppressed_cells=sum(r.suppressed for r in reads + total_reads),
        rows=reads,
        totals=total_reads,
        targets=targets,
        notes=[
            *_notes(suppress),
            "Counts are attributed to the local date their report period starts.",
        ],
        computed_at=now,
    )


# --- lead times ----------------------------------------------------------------------------------


def _minutes(us: float | None) -> float | None:
    return None if us is None else us / MINUTE_US


def _lead_read(r: f.LeadTimeSummary, label: str | None, suppress: bool) -> LeadTimeRead:
    read = LeadTimeRead(
        group=label,
        requests=r.requests,
        triaged=r.triaged,
        triage_median_minutes=_minutes(r.triage_median_us),
        triage_p90_minutes=_minutes(r.triage_p90_us),
        placed=r.placed,
        placement_median_minutes=_minutes(r.placement_median_us),
        placement_p90_minutes=_minutes(r.placement_p90_us),
    )
    if suppress and _small(r.requests):
        return LeadTimeRead.model_validate(_blank(read, ("group",)))
    return read


_EMPTY_LEAD = f.LeadTimeSummary(None, 0, 0, None, None, 0, None, None)


async def lead_times(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> LeadTimeAnswer:
    """time_to_triage and time_to_placement, median and P90 (docs/domain.md §6.4)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        rows, totals = await _rows_and_totals(
            lambda g: queries.lead_times(conn, q.period, flt=ctx.flt, group_by=g), q.group_by
        )
    reads = [_lead_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    total = _lead_read(totals[0] if totals else _EMPTY_LEAD, None, suppress)
    return LeadTimeAnswer(
        kpi="lead_times",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q, definition=q.definition),
        suppressed_cells=sum(r.suppressed for r in reads) + total.suppressed,
        rows=reads,
        total=total,
        notes=[
            *_notes(suppress),
            "Placements requested in the period; durations from request_created; the median "
            "of an even count is the mean of the two middle values; P90 is nearest-rank.",
        ],
        computed_at=now,
    )


# --- escalations ---------------------------------------------------------------------------------


def _esc_read(r: f.EscalationRow, label: str | None, suppress: bool) -> EscalationRead:
    read = EscalationRead(
        group=label,
        requests=r.requests,
        escalated=r.escalated,
        escalation_rate=r.escalation_rate,
        to_region=r.to_region,
        to_national=r.to_national,
        expired_holds=r.expired_holds,
        declines=dict(sorted(r.declines.items())),
    )
    if suppress and _small(r.requests):
        return EscalationRead.model_validate(_blank(read, ("group",)))
    return read


async def escalations(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> EscalationAnswer:
    """Escalation rate, escalations by level and decline reasons (docs/domain.md §6.4, §8, §13)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        rows, totals = await _rows_and_totals(
            lambda g: queries.escalations(conn, q.period, flt=ctx.flt, group_by=g), q.group_by
        )
    reads = [_esc_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    total = _esc_read(totals[0] if totals else f.EscalationRow(None), None, suppress)
    return EscalationAnswer(
        kpi="escalations",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q, definition=q.definition),
        suppressed_cells=sum(r.suppressed for r in reads) + total.suppressed,
        rows=reads,
        total=total,
        notes=[*_notes(suppress), "Placements requested in the period and all their events."],
        computed_at=now,
    )


# --- capacity -------------------------------------------------------------------------------------


def _cap_read(r: f.CapacityRow, label: str | None) -> CapacityRead:
    return CapacityRead(
        group=label,
        unit_moments=r.unit_moments,
        stale=r.stale,
        stale_share=r.stale_share,
        reported=r.reported,
        staffed=r.staffed,
        occupied=r.occupied,
        occupancy=r.occupancy,
        closed_unit_days=sum(r.closed.values()),
        closed_staff_shortage=r.closed.get(NotAcceptingReason.STAFF_SHORTAGE, 0),
        closed_outbreak=r.closed.get(NotAcceptingReason.OUTBREAK, 0),
        closed_renovation=r.closed.get(NotAcceptingReason.RENOVATION, 0),
        closed_full=r.closed.get(NotAcceptingReason.FULL, 0),
        closed_other=r.closed.get(NotAcceptingReason.OTHER, 0),
    )


async def capacity(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime, settings: Settings
) -> CapacityAnswer:
    """Stale-report share and occupancy at every local midnight of the period (§6.4).
    Capacity has no patients, so nothing is suppressed."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        kw: dict[str, Any] = {
            "ttl_bed": settings.stale_after("elv_low"),
            "ttl_district_nursing": settings.stale_after("district_nursing"),
            "subregion_id": ctx.flt.subregion_id,
            "care_type": ctx.flt.care_type,
            "region_id": ctx.flt.region_id,
        }
        rows, totals = await _rows_and_totals(
            lambda g: queries.capacity(conn, q.period, group_by=g, **kw), q.group_by
        )
    return CapacityAnswer(
        kpi="capacity",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q),
        suppressed_cells=0,
        rows=[_cap_read(r, _relabel(q.group_by, r.group, ctx.codes)) for r in rows],
        total=_cap_read(totals[0] if totals else f.CapacityRow(None), None),
        notes=[
            "Census at each local midnight of the period; a unit is stale without a report "
            "younger than its care type's TTL at that moment.",
            "closed_*: census days on which a unit was closed to admissions, per reason.",
        ],
        computed_at=now,
    )


# --- GGZ crisis ---------------------------------------------------------------------------------


def _ggz_read(r: f.GgzRow, label: str | None, suppress: bool) -> GgzRead:
    read = GgzRead(
        group=label,
        cases=r.cases,
        within=r.within,
        late=r.late,
        open_overdue=r.open_overdue,
        open_within=r.open_within,
        left_before_assessment=r.left_before_assessment,
        share=r.share,
    )
    if suppress and _small(r.cases):
        return GgzRead.model_validate(_blank(read, ("group",)))
    return read


async def ggz_crisis_within_norm(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> GgzAnswer:
    """Crisis assessment within the urgency norm (docs/domain.md §6.3, §12.4); target ≥ 90 %."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        sub = ctx.flt.subregion_id
        rows, totals = await _rows_and_totals(
            lambda g: queries.ggz_crisis_within_norm(
                conn, q.period, now=now, subregion_id=sub, group_by=g, region_id=ctx.flt.region_id
            ),
            q.group_by,
        )
    reads = [_ggz_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    total = _ggz_read(totals[0] if totals else f.GgzRow(None), None, suppress)
    return GgzAnswer(
        kpi="ggz_crisis_within_norm",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q),
        suppressed_cells=sum(r.suppressed for r in reads) + total.suppressed,
        rows=reads,
        total=total,
        targets=[_target_read(f.ggz_target(None if total.suppressed else total.share), None)],
        notes=[
            *_notes(suppress),
            "t0 = medically_ready (somatic clearance) or request_created; t1 = offer_accepted; "
            "norms UUL<=2 1 h, 3 4 h, >=4 24 h.",
        ],
        computed_at=now,
    )


# --- CSV ---------------------------------------------------------------------------------------


def csv_table(answer: BaseModel) -> tuple[list[str], list[list[Any]]]:
    """The answer's rows and totals as a header and lines (None for an empty cell), the same for
    the CSV and the dashboard's spreadsheet; every line carries the KPI, its definition version
    and the period."""
    data = answer.model_dump(mode="json", by_alias=True)
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
                data["definition_version"],
                data["period"]["from"],
                data["period"]["to"],
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
            try:
                ref: uuid.UUID | None = uuid.UUID(line.subregion)
            except ValueError:
                ref = None
            found = await session.scalar(
                select(Subregion.id).where(
                    Subregion.code == line.subregion if ref is None else Subregion.id == ref
                )
            )
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
        index_elements=[
            "source",
            "organisation_id",
            "period_start",
            "period_end",
            "age_band",
            "urgency_native",
            "contact_type",
        ],
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


# --- admission guarantee (docs/domain.md §6.5) ----------------------------------------------------

GROUPS["admission_guarantee"] = frozenset(
    {"month", "week", "hospital", "subregion", "age_band", "care_type", "source"}
)


def _guarantee_read(r: f.GuaranteeRow, label: str | None, suppress: bool) -> GuaranteeRead:
    read = GuaranteeRead(
        group=label,
        requests=r.requests,
        within=r.within,
        late=r.late,
        open_overdue=r.open_overdue,
        open_within=r.open_within,
        cancelled=r.cancelled,
        share=r.share,
    )
    if suppress and _small(r.requests):
        return GuaranteeRead.model_validate(_blank(read, ("group",)))
    return read


async def admission_guarantee(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> GuaranteeAnswer:
    """Share of respite and observation requests placed within 24 h (docs/domain.md §6.5)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    if q.care_type is not None and q.care_type not in GUARANTEED_CARE_TYPES:
        raise _invalid(
            "care_type", "the admission guarantee covers care types respite and observation"
        )
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        rows, totals = await _rows_and_totals(
            lambda g: queries.admission_guarantee(conn, q.period, now=now, flt=ctx.flt, group_by=g),
            q.group_by,
        )
    reads = [_guarantee_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    total = _guarantee_read(totals[0] if totals else f.GuaranteeRow(None), None, suppress)
    return GuaranteeAnswer(
        kpi="admission_guarantee",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q, definition=q.definition),
        suppressed_cells=sum(r.suppressed for r in reads) + total.suppressed,
        rows=reads,
        total=total,
        targets=[_target_read(f.guarantee_target(None if total.suppressed else total.share), None)],
        notes=[
            *_notes(suppress),
            "Requests for respite and observation made in the period; placed = first "
            "offer_accepted within 24 h of request_created; open requests still within 24 h and "
            "requests cancelled without a place are left out of the share.",
        ],
        computed_at=now,
    )


# --- ambulance rides, all ages (docs/domain.md §6.2) ----------------------------------------------


async def _ambulance_targets(
    conn: AsyncConnection,
    q: KpiQuery,
    subregion_id: str | None,
    totals: Sequence[f.InflowRow],
    suppress: bool,
) -> list[TargetRead]:
    """RAV rides of all ages against the loaded baseline (kpi ``inflow``, scope
    ``rav/all-ages``): asked region-wide, without an age filter, within one calendar year."""
    year = f.year_fraction(q.period)
    if year is None or q.age_min is not None or subregion_id is not None:
        return []
    base = (await _baselines(conn, "inflow", BASELINE_YEAR)).get(f.AMBULANCE_ALL_AGES_SCOPE)
    if base is None:
        return []
    measured = sum(r.count for r in totals if r.source == "rav")
    t = f.ambulance_rides_target(
        base.value,
        baseline_year=BASELINE_YEAR,
        year=year[0],
        fraction=year[1],
        measured=float(measured),
    )
    if suppress and _small(measured):
        t = replace(t, measured=None, on_track=None)
    return [_target_read(t, base.source)]


# --- Wlz-crisis waiting (docs/domain.md §6.7) ----------------------------------------------------

GROUPS["wlz_crisis_waiting"] = frozenset()  # always one row per day


async def wlz_crisis_waiting(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> WaitingAnswer:
    """Patients waiting for a Wlz-crisis place at each local midnight (docs/domain.md §6.7)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        days = await queries.wlz_crisis_waiting(conn, q.period, now=now, flt=ctx.flt)
    reads = [
        WaitingDayRead(day=d.day, waiting=None, suppressed=True)
        if suppress and _small(d.waiting)
        else WaitingDayRead(day=d.day, waiting=d.waiting)
        for d in days
    ]
    counts = [d.waiting for d in days]
    peak = max(counts, default=0)
    total = WaitingTotalRead(
        days=len(counts),
        patient_days=sum(counts),
        mean=sum(counts) / len(counts) if counts else None,
        peak=peak,
    )
    if suppress and _small(peak):
        total = WaitingTotalRead(
            days=len(counts), patient_days=None, mean=None, peak=None, suppressed=True
        )
    return WaitingAnswer(
        kpi="wlz_crisis_waiting",
        period=_period_read(q.period),
        group_by=None,
        filters=_filters(q),
        suppressed_cells=sum(r.suppressed for r in reads) + total.suppressed,
        rows=reads,
        total=total,
        notes=[
            *_notes(suppress),
            "Distinct patients with a wlz_crisis placement requested before the local midnight "
            "that starts the day and neither placed (offer accepted) nor cancelled before it; "
            "days after now have no row.",
        ],
        computed_at=now,
    )


# --- advance care planning of referrals aged 65+ (docs/domain.md §6.8) ---------------------------

GROUPS["advance_care_planning"] = frozenset(
    {"month", "week", "hospital", "subregion", "age_band", "care_type", "source", "patient_group"}
)


def _acp_read(r: f.AcpRow, label: str | None, suppress: bool) -> AcpRead:
    read = AcpRead(
        group=label,
        referrals=r.referrals,
        recorded=r.recorded,
        not_recorded=r.not_recorded,
        unknown=r.unknown,
        share=r.share,
        share_known=r.share_known,
    )
    if suppress and _small(r.referrals):
        return AcpRead.model_validate(_blank(read, ("group",)))
    return read


async def advance_care_planning(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> AcpAnswer:
    """Share of referrals of patients aged 65+ with advance care planning recorded
    (docs/domain.md §6.8)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        rows, totals = await _rows_and_totals(
            lambda g: queries.advance_care_planning(conn, q.period, flt=ctx.flt, group_by=g),
            q.group_by,
        )
    reads = [_acp_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    total = _acp_read(totals[0] if totals else f.AcpRow(None), None, suppress)
    return AcpAnswer(
        kpi="advance_care_planning",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q, definition=q.definition),
        suppressed_cells=sum(r.suppressed for r in reads) + total.suppressed,
        rows=reads,
        total=total,
        notes=[
            *_notes(suppress),
            "Referrals (first request_created in the period) of patients aged 65 or over at the "
            "request (age_min raises the floor); share = recorded / referrals, a referral "
            "without the answer counting as not recorded; share_known leaves those out.",
        ],
        computed_at=now,
    )


# --- between the cracks (docs/domain.md §6.9) -----------------------------------------------------

GROUPS["between_the_cracks"] = GROUPS["advance_care_planning"]


def _cracks_read(r: f.CracksRow, label: str | None, suppress: bool) -> CracksRead:
    read = CracksRead(
        group=label,
        requests=r.requests,
        over_norm=r.over_norm,
        cancelled_without_place=r.cancelled_without_place,
        re_referrals=r.re_referrals,
    )
    if suppress and _small(r.requests):
        return CracksRead.model_validate(_blank(read, ("group",)))
    return read


async def between_the_cracks(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> CracksAnswer:
    """Requests that fell between the cracks: over their care type's norm, cancelled without a
    place, re-referred within 30 days (docs/domain.md §6.9)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    suppress = _suppress(principal)
    validate(q)
    await _calendar(db, q.period)
    async with db.read() as conn:
        ctx = await _prepare(db, conn, q, principal)
        rows, totals = await _rows_and_totals(
            lambda g: queries.between_the_cracks(conn, q.period, now=now, flt=ctx.flt, group_by=g),
            q.group_by,
        )
    reads = [_cracks_read(r, _relabel(q.group_by, r.group, ctx.codes), suppress) for r in rows]
    total = _cracks_read(totals[0] if totals else f.CracksRow(None), None, suppress)
    return CracksAnswer(
        kpi="between_the_cracks",
        period=_period_read(q.period),
        group_by=q.group_by,
        filters=_filters(q, definition=q.definition),
        suppressed_cells=sum(r.suppressed for r in reads) + total.suppressed,
        rows=reads,
        total=total,
        norms_hours=dict(f.CARE_TYPE_NORM_HOURS),
        notes=[
            *_notes(suppress),
            "Requests made in the period (first request_created). over_norm: placed (first "
            "offer_accepted) later than the care type's norm (norms_hours), or neither placed "
            "nor cancelled and older than the norm now; re_referrals: the same patient key had "
            "another request in the region in the 30 days before.",
        ],
        computed_at=now,
    )


# --- shortage (docs/domain.md §6.10) --------------------------------------------------------------

GROUPS["shortage"] = frozenset()  # always per day, care type and subregion


async def shortage(
    db: Database, principal: Principal, q: KpiQuery, *, now: datetime
) -> ShortageAnswer:
    """Holds refused for no capacity and searches without result per local date, care type and
    subregion (docs/domain.md §6.10). Counts of moments, not of patients: not suppressed."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    validate(q)
    async with db.read() as conn:
        sub = await _subregion_id(conn, q.subregion)
        codes = await _subregion_codes(conn)
        rows = await queries.shortage(
            conn,
            q.period,
            region_id=scope_region(principal),
            subregion_id=sub,
            care_type=None if q.care_type is None else q.care_type.value,
        )
    reads = [
        ShortageRead(
            day=r.day,
            care_type=r.care_type,
            subregion=codes.get(r.subregion, r.subregion),
            holds_refused=r.holds_refused,
            searches_empty=r.searches_empty,
        )
        for r in rows
    ]
    return ShortageAnswer(
        kpi="shortage",
        period=_period_read(q.period),
        group_by=None,
        filters=_filters(q),
        suppressed_cells=0,
        rows=reads,
        total=ShortageTotalRead(
            holds_refused=sum(r.holds_refused for r in rows),
            searches_empty=sum(r.searches_empty for r in rows),
        ),
        notes=[
            "Moments of shortage, recorded as they happen: a hold refused because the unit had "
            "no place left, and a search that found no unit (one per care type searched, in "
            "the searched subregion). Only days, care types and subregions with one are listed.",
        ],
        computed_at=now,
    )


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
        raise _invalid("history_days", f"must be {MIN_FORECAST_HISTORY} .. {MAX_FORECAST_HISTORY}")
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
