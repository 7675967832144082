"""The KPI dashboard's question and figures: which KPI, period, grouping and filters (all in the
query string, so a URL shares the view), the answer from the KPI service, and what the page
shows of it: the table, the chart series with baseline and target lines, the spreadsheet.

``parse_view``, ``table``, ``chart`` and ``xlsx`` are pure; ``answer`` and ``filter_options``
read the database through the KPI service and the registry.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import Workbook
from pydantic import BaseModel
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.enums import CareType, OrganisationKind, Role
from app.kpi import formulas as f
from app.kpi import service as kpi_service
from app.kpi import specs as kpi_specs
from app.kpi.schemas import TargetRead
from app.kpi.specs import KpiSpec, invalid
from app.principal import Principal
from app.registry.models import Organisation, Subregion
from app.reportnow.kpi import REPORT_REQUESTS

# Every KPI the API answers, in the specs' order; report-now response times are asked about
# report requests, so their spec lives there.
SPECS: dict[str, KpiSpec[Any]] = {**kpi_specs.SPECS, REPORT_REQUESTS.name: REPORT_REQUESTS}
KPIS = tuple(SPECS)
SPANS = ("month", "week", "year")
AGES = (65, 75, 85)
DEFAULT_GROUP = {"year": "month", "month": "week", "week": None}
GROUP_ORDER = (
    "month",
    "week",
    "hospital",
    "subregion",
    "age_band",
    "care_type",
    "source",
    "patient_group",
)
# Fields shown as percentages: the specs' share columns, and the share targets.
SHARES = frozenset({"share"} | {c.field for s in SPECS.values() for c in s.columns if c.share})


def columns(kpi: str) -> tuple[str, ...]:
    """The table's columns of a KPI (fields of its rows and total)."""
    return tuple(c.field for c in SPECS[kpi].columns)


def charted(kpi: str) -> tuple[str, ...]:
    """The fields the chart draws as bars."""
    return tuple(c.field for c in SPECS[kpi].columns if c.chart)


# --- the view: the whole state of the page, from and to the query string --------------------------


def span_of(span: str, day: date) -> tuple[f.Period, str]:
    """The month, ISO week or year containing ``day``, and its label."""
    if span == "year":
        return f.Period(date(day.year, 1, 1), date(day.year + 1, 1, 1)), f"{day.year:04d}"
    if span == "week":
        start = day - timedelta(days=day.weekday())
        return f.Period(start, start + timedelta(days=7)), f.week_label(start)
    start = day.replace(day=1)
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return f.Period(start, end), f.month_label(start)


def first_day(text: str) -> date:
    """The first day of a period written as YYYY, YYYY-MM or YYYY-Www."""
    try:
        if len(text) == 4 and text.isdigit():
            return date(int(text), 1, 1)
        if len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit():
            return date(int(text[:4]), int(text[5:]), 1)
        if len(text) == 8 and text[4:6] in ("-W", "-w") and text[:4].isdigit():
            return date.fromisocalendar(int(text[:4]), int(text[6:]), 1)
    except ValueError:
        pass
    raise invalid("period", "must be a year (2026), a month (2026-11) or a week (2026-W48)")


@dataclass(frozen=True)
class View:
    """One dashboard question."""

    kpi: str
    span: str
    period: f.Period
    label: str
    group_by: str | None
    age_min: int | None = None
    definition: str = "broad"
    hospital: uuid.UUID | None = None
    subregion: str | None = None
    care_type: CareType | None = None

    def query(self) -> kpi_service.KpiQuery:
        return kpi_service.KpiQuery(
            kpi=self.kpi,
            period=self.period,
            group_by=self.group_by,
            age_min=self.age_min,
            definition=self.definition,
            hospital=self.hospital,
            subregion=self.subregion,
            care_type=self.care_type,
        )

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The view as a query string's pairs (with ``changes``); every key is written, so a
        shared URL means the same view whatever the defaults become."""
        v = replace(self, **changes) if changes else self
        out = [
            ("kpi", v.kpi),
            ("span", v.span),
            ("period", v.label),
            ("group_by", v.group_by or ""),
        ]
        allowed = SPECS[v.kpi].filters
        if "age_min" in allowed:
            out.append(("age_min", "" if v.age_min is None else str(v.age_min)))
        if "definition" in allowed:
            out.append(("definition", v.definition))
        if "hospital" in allowed:
            out.append(("hospital", "" if v.hospital is None else str(v.hospital)))
        if "subregion" in allowed:
            out.append(("subregion", v.subregion or ""))
        if "care_type" in allowed:
            out.append(("care_type", "" if v.care_type is None else v.care_type.value))
        return out

    def api_params(self) -> dict[str, str]:
        """The same question to ``/v1/kpis/<slug>``."""
        out = {
            "from": self.period.start.isoformat(),
            "to": self.period.end.isoformat(),
            "group_by": self.group_by or "",
        }
        for key, value in self.params()[4:]:
            if value:
                out[key] = value
        if not out["group_by"]:
            del out["group_by"]
        return out

    def moved(self, steps: int) -> View:
        """The previous (-1) or next (+1) period of the same span."""
        day = self.period.start if steps < 0 else self.period.end
        if steps < 0:
            day -= timedelta(days=1)
        period, label = span_of(self.span, day)
        return replace(self, period=period, label=label)

    @property
    def endpoint(self) -> str:
        return f"/v1/kpis/{SPECS[self.kpi].slug}"


def parse_view(params: Mapping[str, str], *, today: date) -> View:
    """The view a query string asks for; missing keys take their defaults (the KPI wrong-bed
    days, the current month by week, 75+ where the region steers on it)."""
    kpi = params.get("kpi") or KPIS[0]
    if kpi not in KPIS:
        raise invalid("kpi", f"must be one of {', '.join(KPIS)}")
    span = params.get("span") or "month"
    if span not in SPANS:
        raise invalid("span", "must be month, week or year")
    text = (params.get("period") or "").strip()
    day = first_day(text) if text else today
    if not kpi_service.CALENDAR_FIRST <= day < kpi_service.CALENDAR_END - timedelta(days=366):
        raise invalid(
            "period",
            f"must lie in {kpi_service.CALENDAR_FIRST.year} .. {kpi_service.CALENDAR_END.year - 2}",
        )
    period, label = span_of(span, day)
    if "group_by" in params:
        group_by: str | None = params["group_by"] or None
    else:
        group_by = DEFAULT_GROUP[span]
    spec = SPECS[kpi]
    if not spec.groups:
        group_by = None
    if group_by is not None and group_by not in spec.groups:
        raise invalid("group_by", "this KPI cannot be split that way")
    allowed = spec.filters
    age_min = spec.default_age if "age_min" not in params else None
    if "age_min" in allowed and params.get("age_min"):
        raw = params["age_min"]
        if not raw.isdigit() or not spec.age_floor <= int(raw) <= 120:
            raise invalid("age_min", f"must be an age from {spec.age_floor} to 120")
        age_min = int(raw)
    if "age_min" not in allowed:
        age_min = None
    definition = params.get("definition") or "broad"
    if definition not in ("broad", "narrow"):
        raise invalid("definition", "must be broad or narrow")
    hospital = None
    if "hospital" in allowed and params.get("hospital"):
        try:
            hospital = uuid.UUID(params["hospital"])
        except ValueError:
            raise invalid("hospital", "must be a hospital's id") from None
    subregion = params.get("subregion") or None if "subregion" in allowed else None
    if subregion is not None and (len(subregion) > 64 or not subregion.isascii()):
        raise invalid("subregion", "must be a subregion code")
    care_type = None
    if "care_type" in allowed and params.get("care_type"):
        try:
            care_type = CareType(params["care_type"])
        except ValueError:
            raise invalid("care_type", "unknown care type") from None
    view = View(
        kpi=kpi,
        span=span,
        period=period,
        label=label,
        group_by=group_by,
        age_min=age_min,
        definition=definition if "definition" in allowed else "broad",
        hospital=hospital,
        subregion=subregion,
        care_type=care_type,
    )
    return view


def switch(view: View, kpi: str) -> View:
    """The same period and as much of the grouping as the other KPI allows."""
    spec = SPECS[kpi]
    group_by = view.group_by
    if group_by is not None and group_by not in spec.groups:
        group_by = DEFAULT_GROUP[view.span]
    if group_by is not None and group_by not in spec.groups:
        group_by = None
    allowed = spec.filters
    return replace(
        view,
        kpi=kpi,
        group_by=group_by,
        age_min=spec.default_age,
        definition=view.definition if "definition" in allowed else "broad",
        hospital=view.hospital if "hospital" in allowed else None,
        subregion=view.subregion if "subregion" in allowed else None,
        care_type=view.care_type if "care_type" in allowed else None,
    )


# --- reading -------------------------------------------------------------------------------------


async def answer(
    db: Database, principal: Principal, view: View, *, now: datetime, settings: Settings
) -> BaseModel:
    """The KPI service's answer to the view's question, for this person (analysts: suppressed)."""
    spec = SPECS[view.kpi]
    return await kpi_service.answer(db, principal, spec, view.query(), now=now, settings=settings)


@dataclass(frozen=True)
class Options:
    hospitals: list[tuple[str, str]]  # id, name
    subregions: list[tuple[str, str]]  # code, name


async def filter_options(db: Database, principal: Principal) -> Options:
    """The hospitals and subregions a person may filter on (names only, no patients)."""
    principal.require(Role.ANALYST, Role.TRIAGIST)
    async with db.read() as conn:
        hospitals = (
            await conn.execute(
                select(Organisation.id, Organisation.name)
                .where(Organisation.kind == OrganisationKind.HOSPITAL.value)
                .order_by(Organisation.name)
            )
        ).all()
        subregions = (
            await conn.execute(select(Subregion.code, Subregion.name).order_by(Subregion.code))
        ).all()
    return Options(
        hospitals=[(str(r[0]), str(r[1])) for r in hospitals],
        subregions=[(str(r[0]), str(r[1])) for r in subregions],
    )


# --- what the page shows ----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    group: str | None  # the row's name: its group or the KPI's key (a day); None for a total
    values: dict[str, Any]  # column -> value (None: empty or suppressed); absent: not its field
    suppressed: bool
    total: bool


@dataclass(frozen=True)
class Table:
    columns: list[str]  # fields; decline columns are "decline_<reason>"
    rows: list[Row]
    totals: list[Row]


def _row(read: BaseModel, key: str, columns: list[str], total: bool) -> Row:
    data = read.model_dump()
    values = {c: data[c] for c in columns if c in data}
    if "declines" in data:
        declines = data["declines"]
        for c in columns:
            if c.startswith("decline_"):
                values[c] = None if declines is None else declines.get(c[len("decline_") :], 0)
    name = None if total else data.get(key)
    return Row(None if name is None else str(name), values, bool(data.get("suppressed")), total)


def _totals(data: Any) -> list[Any]:
    """The total line(s): one per source for inflow, none for a KPI without, else the total."""
    if hasattr(data, "totals"):
        return list(data.totals)
    return [data.total] if hasattr(data, "total") else []


def table(answer: BaseModel, kpi: str) -> Table:
    """The answer as the page's table: one row per group (or day) and the total(s)."""
    data: Any = answer
    key = SPECS[kpi].key
    cols = list(columns(kpi))
    reasons: set[str] = set()
    for read in [*data.rows, *_totals(data)]:
        reasons |= set(getattr(read, "declines", None) or {})
    cols += [f"decline_{r}" for r in sorted(reasons)]
    rows = [_row(r, key, cols, False) for r in data.rows]
    totals = [_row(r, key, cols, True) for r in _totals(data)]
    return Table(cols, rows, totals)


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    return round(float(value) * 100, 2) if field in SHARES else float(value)


def _scaled(view: View, target: TargetRead, labels: list[str | None]) -> tuple[list[Any], ...]:
    """Target and baseline per chart point: the period's figure spread over the days of each
    time bucket (additive KPIs), the same threshold everywhere (shares)."""
    if not SPECS[view.kpi].additive_targets:
        value = _number(target.value, "share")
        return [value] * len(labels), [None] * len(labels)
    days = {b.label: b.days for b in f.buckets(view.period, view.group_by)}
    per_day = target.value / view.period.days
    baseline = None
    if target.baseline_value is not None:
        baseline = target.baseline_value * target.fraction / view.period.days
    targets = [round(per_day * days.get(label, 0), 2) for label in labels]
    bases = [
        None if baseline is None else round(baseline * days.get(label, 0), 2) for label in labels
    ]
    return targets, bases


def _points(reads: list[Any], names: list[str | None], field: str) -> dict[str | None, Any]:
    """A field's value per chart point; rows of the same point (a day's care types) add up."""
    out: dict[str | None, Any] = {}
    for read, name in zip(reads, names, strict=True):
        value = getattr(read, field)
        if value is None:
            out.setdefault(name, None)
        else:
            out[name] = (out.get(name) or 0) + value
    return out


def chart(answer: BaseModel, view: View) -> dict[str, Any]:
    """Chart series (field keys; the page translates the names): one bar series per charted
    field (per source for inflow), plus baseline and target lines where a target applies to
    every point (the period as a whole, or its months or weeks). Suppressed cells are gaps."""
    data: Any = answer
    spec = SPECS[view.kpi]
    keyed = view.group_by is not None or spec.key != "group"
    reads = list(data.rows) if keyed else _totals(data)
    names: list[str | None] = [
        None if not keyed or getattr(r, spec.key) is None else str(getattr(r, spec.key))
        for r in reads
    ]
    labels = list(dict.fromkeys(names))
    split = "source" in columns(view.kpi)  # one series per inflow source
    series: list[dict[str, Any]] = []
    for field in charted(view.kpi):
        for source in f.INFLOW_SOURCES if split else (None,):
            chosen = [i for i, r in enumerate(reads) if source is None or r.source == source]
            values = _points([reads[i] for i in chosen], [names[i] for i in chosen], field)
            series.append(
                {
                    "field": field,
                    "scope": source,
                    "kind": "bar",
                    "data": [_number(values.get(lb), field) for lb in labels],
                }
            )
    time_points = view.group_by is None or view.group_by in f.TIME_GROUPS
    for t in getattr(data, "targets", []) if time_points else []:
        targets, bases = _scaled(view, t, labels)
        scope = t.scope if split else None
        if any(b is not None for b in bases):
            series.append({"field": "baseline", "scope": scope, "kind": "line", "data": bases})
        series.append({"field": "target", "scope": scope, "kind": "line", "data": targets})
    return {
        "labels": labels,
        "series": series,
        "percent": any(s["field"] in SHARES for s in series),
    }


def xlsx(answer: BaseModel, *, title: str) -> bytes:
    """The answer's rows and totals as a spreadsheet: the CSV's header and lines, numbers as
    numbers, a suppressed cell empty (its line says suppressed = TRUE)."""
    header, lines = kpi_service.csv_table(answer)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(header)
    for line in lines:
        sheet.append(line)
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
