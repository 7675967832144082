"""The KPI family as data (docs/domain.md §6): one ``KpiSpec`` per KPI says everything that differs
between KPIs — its name, the roles that may ask, the ``group_by`` values and filters it takes, the
SQL aggregate that answers it, how a row becomes a read model, which count a small cell hides,
its targets, its answer model and notes, and what the dashboard shows of it.

``app.kpi.service.answer`` answers any spec (role check, region scope, validation, calendar,
query, suppression, answer), ``app.routers.kpis`` registers one route per spec and
``app.web.dashboard`` lists the specs as tabs. A new KPI is a new spec in ``SPECS``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import Settings
from app.db import Database
from app.enums import GUARANTEED_CARE_TYPES, CareType, NotAcceptingReason, Role
from app.errors import InvalidInput
from app.kpi import formulas as f
from app.kpi import queries
from app.kpi.models import KpiBaseline
from app.kpi.schemas import (
    AcpAnswer,
    AcpRead,
    CapacityAnswer,
    CapacityRead,
    CracksAnswer,
    CracksRead,
    EscalationAnswer,
    EscalationRead,
    GgzAnswer,
    GgzRead,
    GuaranteeAnswer,
    GuaranteeRead,
    InflowAnswer,
    InflowRead,
    LeadTimeAnswer,
    LeadTimeRead,
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

MAX_PERIOD_DAYS = 1_100  # three years and a bit: a yearly comparison with its predecessor
MAX_CAPACITY_DAYS = 400  # the capacity census is units x days
SMALL_CELL = 5  # fewer patients than this are suppressed for analysts (1-4; 0 is shown)
BASELINE_YEAR = 2022
MINUTE_US = 60_000_000
KPI_ROLES = (Role.ANALYST, Role.TRIAGIST)
FILTERS = ("age_min", "definition", "hospital", "subregion", "care_type")  # in route order
COHORT_GROUPS = frozenset(
    {"month", "week", "hospital", "subregion", "age_band", "care_type", "source"}
)
PATIENT_GROUPS = COHORT_GROUPS | {"patient_group"}  # docs/domain.md §6.8: by patient group


def N_(text: str) -> str:
    """Marks a name for the web app's message catalogs (translated where it is shown)."""
    return text


def invalid(param: str, detail: str) -> InvalidInput:
    """A 422 that points at the query parameter ``param``."""
    return InvalidInput(
        f"Invalid value for query:{param}: {detail}",
        errors=[{"pointer": f"query:{param}", "detail": detail}],
    )


@dataclass(frozen=True)
class KpiQuery:
    """A KPI question: the KPI, the period [from, to) and the filters."""

    kpi: str
    period: f.Period
    group_by: str | None = None
    age_min: int | None = None
    definition: str = "broad"
    hospital: uuid.UUID | None = None
    subregion: str | None = None  # id or code, as given
    care_type: CareType | None = None


@dataclass(frozen=True)
class Ctx:
    """What a spec's query and targets see: the read connection, the question, the caller's
    filter (region scope, subregion id), subregion codes by id, and whether cells are hidden."""

    conn: AsyncConnection
    q: KpiQuery
    flt: f.StayFilter
    codes: Mapping[str, str]
    now: datetime
    settings: Settings | None
    suppress: bool


A = TypeVar("A", bound=BaseModel)
Read = Callable[[Any, str | None, Mapping[str, str]], BaseModel]
Fetch = Callable[[Ctx, str | None], Awaitable[Sequence[Any]]]
Summary = Callable[[Sequence[Any], Mapping[str, str]], tuple[BaseModel, int | None]]
AnsweredBy = Callable[[Database, Principal, KpiQuery, datetime], Awaitable[BaseModel]]
Targets = Callable[[Ctx, Sequence[Any], Sequence[BaseModel]], Awaitable[list[TargetRead]]]
# More answer fields, from the question or the database (awaited when a coroutine).
More = Callable[[Ctx], dict[str, Any] | Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Column:
    """A column of the dashboard's table; ``chart``: drawn as a bar series."""

    field: str
    chart: bool = False
    share: bool = False  # a fraction, shown as a percentage


@dataclass(frozen=True)
class KpiSpec(Generic[A]):
    """One KPI: everything the shared machinery needs to answer, route and show it."""

    name: str
    title: str  # the dashboard's tab (translated by the web app)
    answer: type[A]
    doc: str  # the route's description
    fetch: Fetch  # rows for a group_by (None: ungrouped)
    read: Read  # a row as its read model, with its group's label
    notes: tuple[str, ...]  # ``{now}`` is replaced with the answer's time
    roles: tuple[Role, ...] = KPI_ROLES
    groups: frozenset[str] = frozenset()
    group_default: str | None = None  # the route's default group_by
    filters: tuple[str, ...] = FILTERS  # query filters besides from, to and group_by
    param_docs: Mapping[str, str] = field(default_factory=dict)  # descriptions that differ
    age_floor: int = 0
    # Privacy (docs/domain.md §14): the count of patients a row stands for; a row with 1-4 is
    # blanked for analysts but for the fields in ``keep``. None: not about patients.
    cell: Callable[[Any], int] | None = None
    keep: tuple[str, ...] = ("group",)
    # The total: "one" row of the ungrouped query (``empty`` when it has none), "each" row of it
    # (inflow: per source); or a ``summary`` of the rows: (read, its patient count or None).
    total: Literal["one", "each"] = "one"
    empty: Any = None
    summary: Callable[[Sequence[Any], Mapping[str, str]], tuple[BaseModel, int | None]] | None = (
        None
    )
    total_keep: tuple[str, ...] = ("group",)
    targets: Targets | None = None
    check: Callable[[KpiQuery], None] | None = None  # a KPI's own rule on the question
    calendar: bool = True  # the query joins the calendar table
    max_days: int = MAX_PERIOD_DAYS
    filters_definition: bool = False  # the answer's filters name the definition
    # A KPI answered by its own service, whose route lives with it (the service checks roles,
    # scope and suppression itself); ``routed``: /v1/kpis/<slug> is registered from the spec.
    answered_by: AnsweredBy | None = None
    routed: bool = True
    more: More = lambda ctx: {}  # more answer fields
    # The dashboard: table columns (chart series among them), default age filter, whether the
    # targets scale with the days (counts) rather than hold at every point (shares).
    columns: tuple[Column, ...] = ()
    key: str = "group"  # the field that names a table row (the group, or e.g. the day)
    default_age: int | None = None
    additive_targets: bool = False
    target_measure: str = "count"

    @property
    def slug(self) -> str:
        """The path below /v1/kpis/."""
        return self.name.replace("_", "-")

    @property
    def has_group_by(self) -> bool:
        return bool(self.groups)


async def no_rows(ctx: Ctx, group_by: str | None) -> Sequence[Any]:
    """The fetch of a spec that is ``answered_by`` its own service."""
    return []


# --- shared pieces of specs -----------------------------------------------------------------------


def small(n: int) -> bool:
    return 0 < n < SMALL_CELL


def blank(model: BaseModel, keep: Sequence[str]) -> BaseModel:
    """The read with every field but ``keep`` emptied and ``suppressed`` set."""
    data = model.model_dump()
    return type(model).model_validate(
        {k: (v if k in keep else None) for k, v in data.items()} | {"suppressed": True}
    )


def hide(read: BaseModel, count: int | None, keep: Sequence[str], suppress: bool) -> BaseModel:
    """The one small-cell rule: for a suppressed caller, a read of 1-4 patients is blanked."""
    if suppress and count is not None and small(count):
        return blank(read, keep)
    return read


def from_attrs(model: type[BaseModel]) -> Read:
    """A read built from the row's attributes of the same names, the group relabelled."""
    names = [n for n in model.model_fields if n not in ("group", "suppressed")]
    grouped = "group" in model.model_fields

    def read(row: Any, label: str | None, codes: Mapping[str, str]) -> BaseModel:
        data = {n: getattr(row, n) for n in names}
        return model.model_validate({"group": label, **data} if grouped else data)

    return read


def stay_query(query: Callable[..., Awaitable[Sequence[Any]]], *, now: bool = False) -> Fetch:
    """A query over placements that takes the caller's StayFilter (and ``now``)."""

    async def fetch(ctx: Ctx, group_by: str | None) -> Sequence[Any]:
        kw: dict[str, Any] = {"now": ctx.now} if now else {}
        return await query(ctx.conn, ctx.q.period, flt=ctx.flt, group_by=group_by, **kw)

    return fetch


async def baselines(conn: AsyncConnection, kpi: str, year: int) -> dict[str, KpiBaseline]:
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


def target_read(t: f.Target, source: str | None, *, hidden: bool = False) -> TargetRead:
    """A target as read; ``hidden`` (its measured cell is suppressed) drops the measurement."""
    if hidden:
        t = replace(t, measured=None, on_track=None)
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


def share_target(
    target: Callable[[float | None], f.Target],
) -> Targets:
    """A threshold on the total's share (hidden when the total is suppressed)."""

    async def targets(
        ctx: Ctx, totals: Sequence[Any], reads: Sequence[BaseModel]
    ) -> list[TargetRead]:
        total: Any = reads[0]
        return [target_read(target(None if total.suppressed else total.share), None)]

    return targets


# --- wrong-bed days (docs/domain.md §6.1) ---------------------------------------------------------


async def _wrong_bed_targets(
    ctx: Ctx, totals: Sequence[Any], reads: Sequence[BaseModel]
) -> list[TargetRead]:
    """Region-wide 75+ (broad) within one calendar year, against the loaded baseline."""
    q = ctx.q
    year = f.year_fraction(q.period)
    region_wide = q.hospital is None and q.subregion is None and q.care_type is None
    if year is None or q.age_min != 75 or q.definition != "broad" or not region_wide:
        return []
    base = (await baselines(ctx.conn, "wrong_bed_days", BASELINE_YEAR)).get("age75+/broad")
    if base is None:
        return []
    t = f.wrong_bed_target(
        base.value,
        baseline_year=BASELINE_YEAR,
        year=year[0],
        fraction=year[1],
        measured=float(totals[0].days),
    )
    return [target_read(t, base.source, hidden=bool(getattr(reads[0], "suppressed", False)))]


WRONG_BED_DAYS = KpiSpec(
    name="wrong_bed_days",
    title=N_("Wrong-bed days"),
    answer=WrongBedAnswer,
    doc="Verkeerde-bed days (docs/domain.md §6.1): midnight census of medically-ready intervals;\n"
    "like every KPI, for the caller's region (admin: every region).",
    fetch=stay_query(queries.wrong_bed_days, now=True),
    read=from_attrs(WrongBedRead),
    groups=COHORT_GROUPS,
    cell=lambda r: r.patients,
    keep=("group", "calendar_days"),
    total_keep=("group", "calendar_days"),
    targets=_wrong_bed_targets,
    more=lambda ctx: {"definition": "narrow" if ctx.q.definition == "narrow" else "broad"},
    notes=(
        "Days are a midnight census of ready intervals in Europe/Amsterdam; open intervals "
        "end at {now} (now).",
    ),
    columns=(
        Column("days", chart=True),
        Column("patients"),
        Column("avg_daily"),
        Column("intervals"),
        Column("open_intervals"),
        Column("backdated"),
        Column("hospital_transfers"),
        Column("deaths"),
    ),
    default_age=75,
    additive_targets=True,
)


# --- inflow (docs/domain.md §6.2) -----------------------------------------------------------------


async def _inflow_fetch(ctx: Ctx, group_by: str | None) -> Sequence[Any]:
    return await queries.inflow(
        ctx.conn,
        ctx.q.period,
        age_min=ctx.q.age_min,
        subregion_id=ctx.flt.subregion_id,
        group_by=group_by,
        region_id=ctx.flt.region_id,
    )


def _rav(totals: Sequence[Any], source: str) -> int:
    return sum(r.count for r in totals if r.source == source)


async def _inflow_targets(
    ctx: Ctx, totals: Sequence[Any], reads: Sequence[BaseModel]
) -> list[TargetRead]:
    """SEH/HAP/RAV 75+ per source, and RAV rides of all ages (scope ``rav/all-ages``), asked
    region-wide within one calendar year, against the loaded baselines."""
    q = ctx.q
    year = f.year_fraction(q.period)
    if year is None or ctx.flt.subregion_id is not None or q.age_min not in (None, 75):
        return []
    bases = await baselines(ctx.conn, "inflow", BASELINE_YEAR)
    out = []
    for source in f.CAPPED_SOURCES if q.age_min == 75 else ():
        base = bases.get(source)
        if base is not None:
            measured = _rav(totals, source)
            t = f.inflow_target(
                source,
                base.value,
                baseline_year=BASELINE_YEAR,
                fraction=year[1],
                measured=float(measured),
            )
            out.append(target_read(t, base.source, hidden=ctx.suppress and small(measured)))
    rides = bases.get(f.AMBULANCE_ALL_AGES_SCOPE)
    if q.age_min is None and rides is not None:
        measured = _rav(totals, "rav")
        t = f.ambulance_rides_target(
            rides.value,
            baseline_year=BASELINE_YEAR,
            year=year[0],
            fraction=year[1],
            measured=float(measured),
        )
        out.append(target_read(t, rides.source, hidden=ctx.suppress and small(measured)))
    return out


INFLOW = KpiSpec(
    name="inflow",
    title=N_("Inflow"),
    answer=InflowAnswer,
    doc="SEH75 / HAP75 / RAV75 from inflow reports (docs/domain.md §6.2), per source.",
    fetch=_inflow_fetch,
    read=from_attrs(InflowRead),
    groups=frozenset({"month", "week", "subregion", "age_band", "source"}),
    filters=("age_min", "subregion"),
    cell=lambda r: r.count,
    keep=("source", "group"),
    total="each",
    total_keep=("source", "group"),
    targets=_inflow_targets,
    notes=("Counts are attributed to the local date their report period starts.",),
    columns=(Column("source"), Column("count", chart=True), Column("ehgv")),
    default_age=75,
    additive_targets=True,
)


# --- lead times (docs/domain.md §6.4) -------------------------------------------------------------


def _minutes(us: float | None) -> float | None:
    return None if us is None else us / MINUTE_US


def _lead_read(r: f.LeadTimeSummary, label: str | None, codes: Mapping[str, str]) -> BaseModel:
    return LeadTimeRead(
        group=label,
        requests=r.requests,
        triaged=r.triaged,
        triage_median_minutes=_minutes(r.triage_median_us),
        triage_p90_minutes=_minutes(r.triage_p90_us),
        placed=r.placed,
        placement_median_minutes=_minutes(r.placement_median_us),
        placement_p90_minutes=_minutes(r.placement_p90_us),
    )


LEAD_TIMES = KpiSpec(
    name="lead_times",
    title=N_("Lead times"),
    answer=LeadTimeAnswer,
    doc="time_to_triage and time_to_placement, median and P90 (docs/domain.md §6.4).",
    fetch=stay_query(queries.lead_times),
    read=_lead_read,
    groups=PATIENT_GROUPS,
    group_default="care_type",
    cell=lambda r: r.requests,
    empty=f.LeadTimeSummary(None, 0, 0, None, None, 0, None, None),
    filters_definition=True,
    notes=(
        "Placements requested in the period; durations from request_created; the median "
        "of an even count is the mean of the two middle values; P90 is nearest-rank.",
    ),
    columns=(
        Column("requests"),
        Column("triaged"),
        Column("triage_median_minutes", chart=True),
        Column("triage_p90_minutes"),
        Column("placed"),
        Column("placement_median_minutes", chart=True),
        Column("placement_p90_minutes"),
    ),
)


# --- escalations (docs/domain.md §6.4, §8, §13) ---------------------------------------------------


def _esc_read(r: f.EscalationRow, label: str | None, codes: Mapping[str, str]) -> BaseModel:
    return EscalationRead(
        group=label,
        requests=r.requests,
        escalated=r.escalated,
        escalation_rate=r.escalation_rate,
        to_region=r.to_region,
        to_national=r.to_national,
        expired_holds=r.expired_holds,
        declines=dict(sorted(r.declines.items())),
    )


ESCALATIONS = KpiSpec(
    name="escalations",
    title=N_("Escalations"),
    answer=EscalationAnswer,
    doc="Escalation rate, escalations by level, decline reasons (docs/domain.md §6.4, §8).",
    fetch=stay_query(queries.escalations),
    read=_esc_read,
    groups=COHORT_GROUPS,
    cell=lambda r: r.requests,
    empty=f.EscalationRow(None),
    filters_definition=True,
    notes=("Placements requested in the period and all their events.",),
    columns=(
        Column("requests"),
        Column("escalated"),
        Column("escalation_rate", chart=True, share=True),
        Column("to_region"),
        Column("to_national"),
        Column("expired_holds"),
    ),
)


# --- capacity (docs/domain.md §6.4) ---------------------------------------------------------------


async def _capacity_fetch(ctx: Ctx, group_by: str | None) -> Sequence[Any]:
    assert ctx.settings is not None, "the capacity KPI needs the settings' report TTLs"
    return await queries.capacity(
        ctx.conn,
        ctx.q.period,
        ttl_bed=ctx.settings.stale_after("elv_low"),
        ttl_district_nursing=ctx.settings.stale_after("district_nursing"),
        group_by=group_by,
        subregion_id=ctx.flt.subregion_id,
        care_type=ctx.flt.care_type,
        region_id=ctx.flt.region_id,
    )


def _cap_read(r: f.CapacityRow, label: str | None, codes: Mapping[str, str]) -> BaseModel:
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


CAPACITY = KpiSpec(
    name="capacity",
    title=N_("Capacity"),
    answer=CapacityAnswer,
    doc="Stale-report share and occupancy at each local midnight (docs/domain.md §6.4).",
    fetch=_capacity_fetch,
    read=_cap_read,
    groups=frozenset({"month", "week", "subregion", "care_type"}),
    group_default="care_type",
    filters=("subregion", "care_type"),
    empty=f.CapacityRow(None),
    max_days=MAX_CAPACITY_DAYS,
    notes=(
        "Census at each local midnight of the period; a unit is stale without a report "
        "younger than its care type's TTL at that moment.",
        "closed_*: census days on which a unit was closed to admissions, per reason.",
    ),
    columns=(
        Column("unit_moments"),
        Column("stale"),
        Column("stale_share", chart=True, share=True),
        Column("staffed"),
        Column("occupied"),
        Column("occupancy", chart=True, share=True),
        Column("closed_unit_days"),
    ),
)


# --- GGZ crisis (docs/domain.md §6.3, §12.4) ------------------------------------------------------


async def _ggz_fetch(ctx: Ctx, group_by: str | None) -> Sequence[Any]:
    return await queries.ggz_crisis_within_norm(
        ctx.conn,
        ctx.q.period,
        now=ctx.now,
        subregion_id=ctx.flt.subregion_id,
        group_by=group_by,
        region_id=ctx.flt.region_id,
    )


GGZ_CRISIS_WITHIN_NORM = KpiSpec(
    name="ggz_crisis_within_norm",
    title=N_("GGZ crisis within norm"),
    answer=GgzAnswer,
    doc="GGZ crisis assessment within the urgency norm (docs/domain.md §6.3, §12.4).",
    fetch=_ggz_fetch,
    read=from_attrs(GgzRead),
    groups=frozenset({"month", "week", "hospital", "subregion", "age_band", "source"}),
    filters=("subregion",),
    cell=lambda r: r.cases,
    empty=f.GgzRow(None),
    targets=share_target(f.ggz_target),
    notes=(
        "t0 = medically_ready (somatic clearance) or request_created; t1 = offer_accepted; "
        "norms UUL<=2 1 h, 3 4 h, >=4 24 h.",
    ),
    columns=(
        Column("cases"),
        Column("within"),
        Column("late"),
        Column("open_overdue"),
        Column("open_within"),
        Column("left_before_assessment"),
        Column("share", chart=True, share=True),
    ),
    target_measure="share",
)


# --- admission guarantee (docs/domain.md §6.5) ----------------------------------------------------


def _guaranteed(q: KpiQuery) -> None:
    if q.care_type is not None and q.care_type not in GUARANTEED_CARE_TYPES:
        raise invalid(
            "care_type", "the admission guarantee covers care types respite and observation"
        )


ADMISSION_GUARANTEE = KpiSpec(
    name="admission_guarantee",
    title=N_("Admission guarantee"),
    answer=GuaranteeAnswer,
    doc="Share of respite and observation requests placed within 24 h (docs/domain.md §6.5).",
    fetch=stay_query(queries.admission_guarantee, now=True),
    read=from_attrs(GuaranteeRead),
    groups=COHORT_GROUPS,
    filters=("age_min", "hospital", "subregion", "care_type"),
    param_docs={"care_type": "respite or observation (default: both)"},
    cell=lambda r: r.requests,
    empty=f.GuaranteeRow(None),
    targets=share_target(f.guarantee_target),
    check=_guaranteed,
    filters_definition=True,
    notes=(
        "Requests for respite and observation made in the period; placed = first "
        "offer_accepted within 24 h of request_created; open requests still within 24 h and "
        "requests cancelled without a place are left out of the share.",
    ),
    columns=(
        Column("requests"),
        Column("within"),
        Column("late"),
        Column("open_overdue"),
        Column("open_within"),
        Column("cancelled"),
        Column("share", chart=True, share=True),
    ),
    target_measure="share",
)


# --- Wlz-crisis waiting (docs/domain.md §6.7) -----------------------------------------------------


async def _waiting_fetch(ctx: Ctx, group_by: str | None) -> Sequence[Any]:
    return await queries.wlz_crisis_waiting(ctx.conn, ctx.q.period, now=ctx.now, flt=ctx.flt)


def _waiting_total(
    days: Sequence[f.WaitingDay], codes: Mapping[str, str]
) -> tuple[BaseModel, int | None]:
    """Days counted, patient-days, mean and peak; hidden when the peak is a small cell."""
    counts = [d.waiting for d in days]
    peak = max(counts, default=0)
    read = WaitingTotalRead(
        days=len(counts),
        patient_days=sum(counts),
        mean=sum(counts) / len(counts) if counts else None,
        peak=peak,
    )
    return read, peak


WLZ_CRISIS_WAITING = KpiSpec(
    name="wlz_crisis_waiting",
    title=N_("Wlz-crisis waiting"),
    answer=WaitingAnswer,
    doc="Patients waiting for a Wlz-crisis place at each local midnight of the period, up to now\n"
    "(docs/domain.md §6.7).",
    fetch=_waiting_fetch,
    read=from_attrs(WaitingDayRead),
    filters=("hospital", "subregion"),
    cell=lambda d: d.waiting,
    keep=("day",),
    summary=_waiting_total,
    total_keep=("days",),
    calendar=False,
    notes=(
        "Distinct patients with a wlz_crisis placement requested before the local midnight "
        "that starts the day and neither placed (offer accepted) nor cancelled before it; "
        "days after now have no row.",
    ),
    columns=(
        Column("waiting", chart=True),
        Column("patient_days"),
        Column("mean"),
        Column("peak"),
    ),
    key="day",
)


# --- advance care planning of referrals aged 65+ (docs/domain.md §6.8) ----------------------------

ADVANCE_CARE_PLANNING = KpiSpec(
    name="advance_care_planning",
    title=N_("Advance care planning"),
    answer=AcpAnswer,
    doc="Share of referrals of patients aged 65+ with advance care planning recorded, by\n"
    "``group_by`` (also ``patient_group``) (docs/domain.md §6.8).",
    fetch=stay_query(queries.advance_care_planning),
    read=from_attrs(AcpRead),
    groups=PATIENT_GROUPS,
    age_floor=65,
    param_docs={"age_min": "A higher age floor than 65"},
    cell=lambda r: r.referrals,
    empty=f.AcpRow(None),
    filters_definition=True,
    notes=(
        "Referrals (first request_created in the period) of patients aged 65 or over at the "
        "request (age_min raises the floor); share = recorded / referrals, a referral "
        "without the answer counting as not recorded; share_known leaves those out.",
    ),
    columns=(
        Column("referrals"),
        Column("recorded"),
        Column("not_recorded"),
        Column("unknown"),
        Column("share", chart=True, share=True),
        Column("share_known", share=True),
    ),
)


# --- between the cracks (docs/domain.md §6.9) -----------------------------------------------------


async def _norms(ctx: Ctx) -> dict[str, Any]:
    """The norms the answer was counted against: the caller's region's own over the defaults
    (an admin across regions sees the defaults; each region's own apply to its stays)."""
    own = await queries.region_norms(ctx.conn, ctx.flt.region_id)
    return {"norms_hours": {**f.CARE_TYPE_NORM_HOURS, **own}}


BETWEEN_THE_CRACKS = KpiSpec(
    name="between_the_cracks",
    title=N_("Between the cracks"),
    answer=CracksAnswer,
    doc="Requests over their care type's norm, cancelled without a place, or re-referred within\n"
    "30 days, by ``group_by`` (also ``patient_group``) (docs/domain.md §6.9).",
    fetch=stay_query(queries.between_the_cracks, now=True),
    read=from_attrs(CracksRead),
    groups=PATIENT_GROUPS,
    cell=lambda r: r.requests,
    empty=f.CracksRow(None),
    filters_definition=True,
    more=_norms,
    notes=(
        "Requests made in the period (first request_created). over_norm: placed (first "
        "offer_accepted) later than the care type's norm (norms_hours), or neither placed "
        "nor cancelled and older than the norm now; re_referrals: the same patient key had "
        "another request in the region in the 30 days before.",
    ),
    columns=(
        Column("requests"),
        Column("over_norm", chart=True),
        Column("cancelled_without_place", chart=True),
        Column("re_referrals", chart=True),
    ),
)


# --- shortage (docs/domain.md §6.10) --------------------------------------------------------------


async def _shortage_fetch(ctx: Ctx, group_by: str | None) -> Sequence[Any]:
    return await queries.shortage(
        ctx.conn,
        ctx.q.period,
        region_id=ctx.flt.region_id,
        subregion_id=ctx.flt.subregion_id,
        care_type=ctx.flt.care_type,
    )


def _shortage_read(r: f.ShortageRow, label: str | None, codes: Mapping[str, str]) -> BaseModel:
    return ShortageRead(
        day=r.day,
        care_type=r.care_type,
        subregion=codes.get(r.subregion, r.subregion),
        holds_refused=r.holds_refused,
        searches_empty=r.searches_empty,
    )


def _shortage_total(
    rows: Sequence[f.ShortageRow], codes: Mapping[str, str]
) -> tuple[BaseModel, int | None]:
    total = ShortageTotalRead(
        holds_refused=sum(r.holds_refused for r in rows),
        searches_empty=sum(r.searches_empty for r in rows),
    )
    return total, None


SHORTAGE = KpiSpec(
    name="shortage",
    title=N_("Shortage"),
    answer=ShortageAnswer,
    doc="Holds refused for no capacity and searches with no result, per local date, care type and\n"
    "subregion (docs/domain.md §6.10).",
    fetch=_shortage_fetch,
    read=_shortage_read,
    filters=("subregion", "care_type"),
    summary=_shortage_total,
    calendar=False,
    notes=(
        "Moments of shortage, recorded as they happen: a hold refused because the unit had "
        "no place left, and a search that found no unit (one per care type searched, in "
        "the searched subregion). Only days, care types and subregions with one are listed.",
    ),
    key="day",
    columns=(
        Column("care_type"),
        Column("subregion"),
        Column("holds_refused", chart=True),
        Column("searches_empty", chart=True),
    ),
)


SPECS: dict[str, KpiSpec[Any]] = {
    s.name: s
    for s in (
        WRONG_BED_DAYS,
        INFLOW,
        LEAD_TIMES,
        ESCALATIONS,
        CAPACITY,
        GGZ_CRISIS_WITHIN_NORM,
        ADMISSION_GUARANTEE,
        WLZ_CRISIS_WAITING,
        ADVANCE_CARE_PLANNING,
        BETWEEN_THE_CRACKS,
        SHORTAGE,
    )
}
