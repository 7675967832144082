"""The monthly ROAZ report: the region's KPIs for one month against the same month last year and
the baseline, per subregion, the top decline reasons, escalations and the stale-capacity share.

``roaz_report`` is the one function behind both ``GET /v1/reports/roaz`` and the printable page
``/ui/reports/roaz``, so the two cannot disagree. It asks the KPI service (``app.kpi.service``)
with the caller's principal, so an analyst's small cells stay suppressed; ``parse_month`` and
``build_report`` are pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from app.config import Settings
from app.db import Database
from app.enums import Role
from app.errors import InvalidInput
from app.kpi import formulas as f
from app.kpi import service as kpi_service
from app.kpi.schemas import (
    SUPPRESSION_NOTE,
    CapacityAnswer,
    EscalationAnswer,
    EscalationRead,
    GgzAnswer,
    InflowAnswer,
    KpiName,
    LeadTimeAnswer,
    PeriodRead,
    TargetRead,
    WrongBedAnswer,
)
from app.principal import Principal
from app.schemas import Schema

FIRST_MONTH = date(kpi_service.CALENDAR_FIRST.year + 1, 1, 1)  # last year must be in the calendar
TOP_REASONS = 5
REGION_AGE_MIN = 75  # wrong-bed days and inflow are steered on patients of 75 and over


# --- the month ------------------------------------------------------------------------------------


def _month_error(detail: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid value for query:month: {detail}",
        errors=[{"pointer": "query:month", "detail": detail}],
    )


def parse_month(text: str, *, today: date) -> f.Period:
    """``YYYY-MM`` as the local dates [first of the month, first of the next); a month after the
    current one, or before the KPI calendar allows a year-on-year comparison, is refused."""
    parts = text.split("-")
    if len(parts) != 2 or len(parts[0]) != 4 or len(parts[1]) != 2 or not text.isascii():
        raise _month_error("must be a month as YYYY-MM, e.g. 2026-11")
    try:
        start = date(int(parts[0]), int(parts[1]), 1)
    except ValueError:
        raise _month_error("must be a month as YYYY-MM, e.g. 2026-11") from None
    if start < FIRST_MONTH:
        raise _month_error(f"must not be before {FIRST_MONTH:%Y-%m}")
    if start > today.replace(day=1):
        raise _month_error("must not be after the current month")
    return f.Period(start, next_month(start))


def next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def last_year(period: f.Period) -> f.Period:
    """The same month one year earlier."""
    start = period.start.replace(year=period.start.year - 1)
    return f.Period(start, next_month(start))


# --- the report's shape ---------------------------------------------------------------------------


class RoazFigure(Schema):
    """One regional figure of the month, as the KPI endpoint gives it for the same query."""

    key: str = Field(description="Stable name of the figure, e.g. wrong_bed_days")
    kpi: KpiName
    measure: str = Field(description="Field of the KPI answer the figure is taken from")
    scope: str | None = Field(description="Part of the answer: an inflow source, else null")
    unit: str = Field(description="days, patients, contacts, minutes or share (0..1)")
    query: str = Field(description="The KPI endpoint and query giving the same figure")
    value: float | None
    suppressed: bool = Field(description="A small cell: the value is withheld (analysts)")
    last_year: float | None = Field(description="The same month one year earlier")
    last_year_suppressed: bool
    change: float | None = Field(description="value - last_year")
    baseline: float | None = Field(description="The baseline year's figure for a month this long")
    baseline_year: int | None
    target: float | None = Field(description="The target for this month")
    on_track: bool | None


class RoazCell(Schema):
    value: float | None
    suppressed: bool


class RoazSubregion(Schema):
    subregion: str = Field(description="Subregion code ('unknown' when not known)")
    figures: dict[str, RoazCell]


class RoazReason(Schema):
    reason: str
    count: int
    share: float | None = Field(description="Of all declines in the month")


class RoazReport(Schema):
    month: str
    definition_version: str = f.DEFINITION_VERSION
    period: PeriodRead
    last_year_period: PeriodRead
    complete: bool = Field(description="False while the month is still running")
    figures: list[RoazFigure]
    subregion_keys: list[str] = Field(description="The figures given per subregion, in order")
    subregions: list[RoazSubregion]
    top_decline_reasons: list[RoazReason]
    declines_suppressed: bool
    escalations: EscalationRead
    escalations_last_year: EscalationRead
    stale_capacity_share: float | None
    targets: list[TargetRead]
    suppressed_cells: int
    notes: list[str]
    computed_at: datetime


# --- the figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiSet:
    """The six KPI answers for one period (and one grouping)."""

    wrong_bed_days: WrongBedAnswer
    inflow: InflowAnswer
    lead_times: LeadTimeAnswer
    escalations: EscalationAnswer
    capacity: CapacityAnswer
    ggz: GgzAnswer


_KPI_FIELDS = ("wrong_bed_days", "inflow", "lead_times", "escalations", "capacity", "ggz")
Cell = tuple[float | None, bool]
Pick = Callable[[KpiSet, str | None], Cell]


def _row_cell(rows: list[Any], group: str | None, measure: str) -> Cell:
    for row in rows:
        if row.group == group:
            value = getattr(row, measure)
            return (None if value is None else float(value)), bool(row.suppressed)
    return None, False


def _inflow_cell(answer: InflowAnswer, source: str, group: str | None) -> Cell:
    rows = answer.totals if group is None else [r for r in answer.rows if r.source == source]
    for row in rows:
        if row.source == source and (group is None or row.group == group):
            return (None if row.count is None else float(row.count)), row.suppressed
    return 0.0, False  # no contacts reported


def _total_or_row(answer: Any, measure: str) -> Pick:
    def pick(kpis: KpiSet, group: str | None) -> Cell:
        a = getattr(kpis, answer)
        if group is None:
            value = getattr(a.total, measure)
            return (None if value is None else float(value)), bool(a.total.suppressed)
        return _row_cell(a.rows, group, measure)

    return pick


def _inflow(source: str) -> Pick:
    return lambda kpis, group: _inflow_cell(kpis.inflow, source, group)


@dataclass(frozen=True)
class FigureSpec:
    key: str
    kpi: KpiName
    path: str
    measure: str
    scope: str | None
    unit: str
    age_min: int | None
    pick: Pick
    per_subregion: bool = True


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "wrong_bed_days",
        "wrong_bed_days",
        "wrong-bed-days",
        "days",
        None,
        "days",
        REGION_AGE_MIN,
        _total_or_row("wrong_bed_days", "days"),
    ),
    FigureSpec(
        "wrong_bed_patients",
        "wrong_bed_days",
        "wrong-bed-days",
        "patients",
        None,
        "patients",
        REGION_AGE_MIN,
        _total_or_row("wrong_bed_days", "patients"),
    ),
    *(
        FigureSpec(
            f"inflow_{source}",
            "inflow",
            "inflow",
            "count",
            source,
            "contacts",
            REGION_AGE_MIN,
            _inflow(source),
        )
        for source in f.INFLOW_SOURCES
    ),
    FigureSpec(
        "triage_median_minutes",
        "lead_times",
        "lead-times",
        "triage_median_minutes",
        None,
        "minutes",
        None,
        _total_or_row("lead_times", "triage_median_minutes"),
        per_subregion=False,
    ),
    FigureSpec(
        "placement_median_minutes",
        "lead_times",
        "lead-times",
        "placement_median_minutes",
        None,
        "minutes",
        None,
        _total_or_row("lead_times", "placement_median_minutes"),
    ),
    FigureSpec(
        "escalation_rate",
        "escalations",
        "escalations",
        "escalation_rate",
        None,
        "share",
        None,
        _total_or_row("escalations", "escalation_rate"),
    ),
    FigureSpec(
        "stale_share",
        "capacity",
        "capacity",
        "stale_share",
        None,
        "share",
        None,
        _total_or_row("capacity", "stale_share"),
    ),
    FigureSpec(
        "occupancy",
        "capacity",
        "capacity",
        "occupancy",
        None,
        "share",
        None,
        _total_or_row("capacity", "occupancy"),
        per_subregion=False,
    ),
    FigureSpec(
        "ggz_within_norm",
        "ggz_crisis_within_norm",
        "ggz-crisis-within-norm",
        "share",
        None,
        "share",
        None,
        _total_or_row("ggz", "share"),
    ),
)


def figure_query(spec: FigureSpec, period: f.Period) -> str:
    """The KPI endpoint and query string that gives the same figure for the period."""
    query = f"from={period.start.isoformat()}&to={period.end.isoformat()}"
    if spec.age_min is not None:
        query += f"&age_min={spec.age_min}"
    return f"/v1/kpis/{spec.path}?{query}"


def _all_targets(kpis: KpiSet) -> list[TargetRead]:
    return [*kpis.wrong_bed_days.targets, *kpis.inflow.targets, *kpis.ggz.targets]


def _target_for(spec: FigureSpec, targets: list[TargetRead]) -> TargetRead | None:
    if spec.key == "wrong_bed_days":
        return next((t for t in targets if t.kpi == "wrong_bed_days"), None)
    if spec.kpi == "inflow":
        return next((t for t in targets if t.kpi == "inflow" and t.scope == spec.scope), None)
    if spec.kpi == "ggz_crisis_within_norm":
        return next((t for t in targets if t.kpi == "ggz_crisis_within_norm"), None)
    return None


def _figure(spec: FigureSpec, cur: KpiSet, prev: KpiSet, period: f.Period) -> RoazFigure:
    value, hidden = spec.pick(cur, None)
    before, before_hidden = spec.pick(prev, None)
    target = _target_for(spec, _all_targets(cur))
    baseline = None
    if target is not None and target.baseline_value is not None:
        baseline = target.baseline_value * target.fraction
    return RoazFigure(
        key=spec.key,
        kpi=spec.kpi,
        measure=spec.measure,
        scope=spec.scope,
        unit=spec.unit,
        query=figure_query(spec, period),
        value=value,
        suppressed=hidden,
        last_year=before,
        last_year_suppressed=before_hidden,
        change=None if value is None or before is None else value - before,
        baseline=baseline,
        baseline_year=None if target is None else target.baseline_year,
        target=None if target is None else target.value,
        on_track=None if target is None else target.on_track,
    )


def _subregion_groups(kpis: KpiSet) -> list[str]:
    groups: set[str] = set()
    for answer in (kpis.wrong_bed_days, kpis.lead_times, kpis.escalations, kpis.capacity):
        groups |= {r.group for r in answer.rows if r.group is not None}
    groups |= {r.group for r in kpis.ggz.rows if r.group is not None}
    groups |= {r.group for r in kpis.inflow.rows if r.group is not None}
    return sorted(groups, key=lambda g: (g == f.UNKNOWN, g))


def top_reasons(declines: dict[str, int] | None, n: int = TOP_REASONS) -> list[RoazReason]:
    """The ``n`` most frequent decline reasons, most frequent first (ties by name)."""
    if not declines:
        return []
    total = sum(declines.values())
    ranked = sorted(declines.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [
        RoazReason(reason=k, count=v, share=None if total == 0 else v / total)
        for k, v in ranked
        if v > 0
    ]


def _period_read(p: f.Period) -> PeriodRead:
    return PeriodRead.model_validate({"from": p.start, "to": p.end, "days": p.days})


def build_report(
    month: str,
    period: f.Period,
    cur: KpiSet,
    prev: KpiSet,
    by_subregion: KpiSet,
    *,
    now: datetime,
) -> RoazReport:
    """Assemble the report from the KPI answers of the month, the same month last year and the
    month per subregion (pure)."""
    figures = [_figure(spec, cur, prev, period) for spec in FIGURES]
    sub_specs = [s for s in FIGURES if s.per_subregion]
    subregions = []
    for group in _subregion_groups(by_subregion):
        cells = {}
        for spec in sub_specs:
            value, hidden = spec.pick(by_subregion, group)
            cells[spec.key] = RoazCell(value=value, suppressed=hidden)
        subregions.append(RoazSubregion(subregion=group, figures=cells))
    answers: list[BaseModel] = [
        *(getattr(k, name) for k in (cur, prev, by_subregion) for name in _KPI_FIELDS)
    ]
    complete = f.local_date(now) >= period.end
    notes = [
        "Each figure equals the KPI endpoint named in its query for the same month; "
        "wrong-bed days and inflow count patients of 75 and over (broad definition).",
        "The baseline is the baseline year's figure scaled to the month's share of the year.",
    ]
    if not complete:
        notes.append(f"The month is not over: figures up to {now.isoformat()}.")
    if any(SUPPRESSION_NOTE in getattr(a, "notes", []) for a in answers):
        notes.append(SUPPRESSION_NOTE)
    stale = next(x for x in figures if x.key == "stale_share")
    esc = cur.escalations.total
    return RoazReport(
        month=month,
        period=_period_read(period),
        last_year_period=_period_read(last_year(period)),
        complete=complete,
        figures=figures,
        subregion_keys=[s.key for s in sub_specs],
        subregions=subregions,
        top_decline_reasons=top_reasons(esc.declines),
        declines_suppressed=esc.suppressed,
        escalations=esc,
        escalations_last_year=prev.escalations.total,
        stale_capacity_share=stale.value,
        targets=_all_targets(cur),
        suppressed_cells=sum(getattr(a, "suppressed_cells", 0) for a in answers),
        notes=notes,
        computed_at=now,
    )


# --- the service ------------------------------------------------------------------------------


async def _kpis(
    db: Database,
    principal: Principal,
    period: f.Period,
    group_by: str | None,
    *,
    now: datetime,
    settings: Settings,
) -> KpiSet:
    def q(kpi: str, age_min: int | None = None) -> kpi_service.KpiQuery:
        return kpi_service.KpiQuery(kpi=kpi, period=period, group_by=group_by, age_min=age_min)

    return KpiSet(
        wrong_bed_days=await kpi_service.wrong_bed_days(
            db, principal, q("wrong_bed_days", REGION_AGE_MIN), now=now
        ),
        inflow=await kpi_service.inflow(db, principal, q("inflow", REGION_AGE_MIN), now=now),
        lead_times=await kpi_service.lead_times(db, principal, q("lead_times"), now=now),
        escalations=await kpi_service.escalations(db, principal, q("escalations"), now=now),
        capacity=await kpi_service.capacity(
            db, principal, q("capacity"), now=now, settings=settings
        ),
        ggz=await kpi_service.ggz_crisis_within_norm(
            db, principal, q("ggz_crisis_within_norm"), now=now
        ),
    )


async def roaz_report(
    db: Database, principal: Principal, month: str, *, now: datetime, settings: Settings
) -> RoazReport:
    """The ROAZ report of ``month`` (YYYY-MM) for analysts and admins: aggregates only, small
    cells suppressed for analysts exactly as the KPI endpoints do."""
    principal.require(Role.ANALYST)
    period = parse_month(month, today=f.local_date(now))
    cur = await _kpis(db, principal, period, None, now=now, settings=settings)
    prev = await _kpis(db, principal, last_year(period), None, now=now, settings=settings)
    by_sub = await _kpis(db, principal, period, "subregion", now=now, settings=settings)
    return build_report(month, period, cur, prev, by_sub, now=now)
