"""KPI reference definitions (docs/domain.md §6): pure Python over plain data; no I/O, no clock.

This module *is* the definition. ``app.kpi.queries`` computes the same numbers in SQL for the API,
and the property tests require both to agree exactly on random transfer logs. Every function
takes ``now`` (or census moments) as an argument; nothing here reads the clock or a database.

Time conventions used by every KPI:

* Timestamps are timezone-aware UTC instants; ``occurred_at`` (the clinical time) is used
  everywhere, ``recorded_at`` only to flag back-dated events (docs/domain.md §5, §13).
* A period ``P = [start, end)`` is a half-open range of *local* dates in Europe/Amsterdam. An
  instant belongs to the local date it falls on; a local midnight belongs to the day it starts.
* Durations are exact integer microseconds (``duration_us``) so SQL and Python compare exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Amsterdam")
DEFINITION_VERSION = "west-kpi-2026.1"
EPOCH = date(2000, 1, 1)  # day numbers count local dates from here (kpi_calendar.day_no)
# docs/domain.md §6.1: flag an event as back-dated if recorded_at - occurred_at > 48 h
BACKDATED_AFTER = timedelta(hours=48)
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-17", 0, 17),
    ("18-64", 18, 64),
    ("65-74", 65, 74),
    ("75-84", 75, 84),
    ("85+", 85, None),
)
WLZ_PREFIX = "wlz_"  # narrow definition: the awaited care type is a Wlz one (docs/domain.md §6.1)
UNKNOWN = "unknown"  # group value when the attribute is missing (e.g. no subregion)

# Transfer-log event types the KPIs read (app.placement.states.EventType values; repeated here
# because this module imports nothing from the application).
MEDICALLY_READY = "medically_ready"
READY_REVOKED = "ready_revoked"
HOSPITAL_ADMITTED = "hospital_admitted"
TRANSFERRED = "transferred"
CANCELLED = "cancelled"
REQUEST_CREATED = "request_created"
TRIAGED = "triaged"
OFFER_ACCEPTED = "offer_accepted"
OFFER_DECLINED = "offer_declined"
HOLD_EXPIRED = "hold_expired"
ESCALATED = "escalated"
FINAL_EVENTS = frozenset({TRANSFERRED, CANCELLED})

GroupBy = Literal[
    "month", "week", "hospital", "subregion", "age_band", "care_type", "source", "patient_group"
]
TIME_GROUPS = frozenset({"month", "week"})

# --- calendar ----------------------------------------------------------------------------------


def day_no(d: date) -> int:
    """Number of a local date (days since 2000-01-01); ``kpi_calendar.day_no`` uses the same."""
    return (d - EPOCH).days


def date_of(n: int) -> date:
    return EPOCH + timedelta(days=n)


def local_date(t: datetime) -> date:
    """The Europe/Amsterdam date an instant falls on."""
    return t.astimezone(TZ).date()


def local_day(t: datetime) -> int:
    """Day number of the local date of ``t``: the number of local midnights at or before ``t``
    counted from 2000-01-01 (a midnight exactly at ``t`` belongs to ``t``'s date)."""
    return day_no(local_date(t))


def local_midnight(d: date) -> datetime:
    """The UTC instant of the local midnight that starts ``d`` (23:00 or 22:00 UTC the day
    before, depending on daylight saving time; Amsterdam switches at 02:00/03:00, so every
    local midnight exists exactly once)."""
    return datetime(d.year, d.month, d.day, tzinfo=TZ).astimezone(UTC)


def duration_us(later: datetime, earlier: datetime) -> int:
    """Exact difference in microseconds."""
    delta = later - earlier
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class Period:
    """Half-open range of local dates ``[start, end)``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("period end must be after its start")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def contains(self, d: date) -> bool:
        return self.start <= d < self.end


@dataclass(frozen=True, slots=True)
class Bucket:
    """One group of a time split: a label and the local dates ``[start, end)`` it covers
    (already clipped to the period)."""

    label: str | None
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def month_label(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def week_label(d: date) -> str:
    year, week, _ = d.isocalendar()
    return f"{year:04d}-W{week:02d}"


def buckets(period: Period, group_by: str | None) -> list[Bucket]:
    """The period split by calendar month or ISO week (Monday start), or whole."""
    if group_by not in TIME_GROUPS:
        return [Bucket(None, period.start, period.end)]
    out: list[Bucket] = []
    cursor = period.start
    while cursor < period.end:
        if group_by == "month":
            nxt = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
            label = month_label(cursor)
        else:
            nxt = cursor + timedelta(days=7 - cursor.weekday())
            label = week_label(cursor)
        out.append(Bucket(label, cursor, min(nxt, period.end)))
        cursor = nxt
    return out


def time_label(d: date, group_by: str) -> str:
    return month_label(d) if group_by == "month" else week_label(d)


def age_band(age: int) -> str:
    for label, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return label
    return AGE_BANDS[0][0]  # a negative age (birth year after the event) is kept, not dropped


def bands_from(age_min: int) -> tuple[str, ...]:
    """Age bands wholly at or above ``age_min`` (inflow reports carry bands, not ages)."""
    return tuple(label for label, low, _ in AGE_BANDS if low >= age_min)


def midnight_count(start: datetime, end: datetime, first: date, last_excl: date) -> int:
    """Midnight census (docs/domain.md §6.1): the number of local midnights ``m`` with
    ``start < m <= end`` whose date lies in ``[first, last_excl)``.

    ``local_day(t)`` numbers the midnights at or before ``t``, so the midnights in
    ``(start, end]`` are the day numbers ``local_day(start) + 1 .. local_day(end)``; the count
    is their overlap with the dates of the period. Ready at 10:00 and gone at 15:00 the same day
    is 0; ready at 23:59 and gone at 00:01 is 1; a DST night is one midnight like any other.
    """
    low = max(local_day(start) + 1, day_no(first))
    high = min(local_day(end), day_no(last_excl) - 1)
    return max(0, high - low + 1)


# --- input records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """One transfer-log row (``transfer_event``); ``seq`` orders a placement's events."""

    seq: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    reason: str | None = None
    level: str | None = None

    @property
    def backdated(self) -> bool:
        return self.recorded_at - self.occurred_at > BACKDATED_AFTER


@dataclass(frozen=True, slots=True)
class Stay:
    """A placement with its transfer log: one patient's referral, and for hospital in-patients
    their hospital stay while waiting (docs/domain.md §5)."""

    id: str
    patient_key: str
    birth_year: int
    care_type: str  # the awaited care type (after triage)
    hospital_id: str | None  # the referring organisation (the hospital for in-patients)
    subregion_id: str | None
    origin_setting: str
    urgency_level: int
    events: tuple[Event, ...] = field(default_factory=tuple)
    patient_group: str | None = None  # docs/domain.md §6.8; None: not given
    advance_care_planning: str | None = None  # "recorded" / "not_recorded"; None: unknown

    def ordered(self) -> list[Event]:
        return sorted(self.events, key=lambda e: e.seq)

    def first(self, event_type: str) -> Event | None:
        return next((e for e in self.ordered() if e.type == event_type), None)

    def age_at(self, t: datetime) -> int:
        """Age fixed at an instant from the birth year only (docs/domain.md §6.1, [A])."""
        return local_date(t).year - self.birth_year


def _group_value(stay: Stay, group_by: str | None, age: int) -> str | None:
    if group_by == "hospital":
        return stay.hospital_id or UNKNOWN
    if group_by == "subregion":
        return stay.subregion_id or UNKNOWN
    if group_by == "age_band":
        return age_band(age)
    if group_by == "care_type":
        return stay.care_type
    if group_by == "source":
        return stay.origin_setting
    if group_by == "patient_group":
        return stay.patient_group or UNKNOWN
    return None


# --- 6.1 wrong-bed days ------------------------------------------------------------------------

EndKind = Literal["revoked", "hospital_transfer", "transferred", "died", "cancelled"]


@dataclass(frozen=True, slots=True)
class ReadyInterval:
    """A period in which a hospital in-patient was medically ready (docs/domain.md §6.1)."""

    stay: Stay
    start: datetime
    end: datetime | None  # None: still open (still waiting)
    end_kind: EndKind | None
    backdated: bool  # its start or end event was recorded more than 48 h after it occurred

    @property
    def age_at_ready(self) -> int:
        return self.stay.age_at(self.start)


def ready_intervals(stay: Stay) -> list[ReadyInterval]:
    """The ready intervals of one stay, walking its log in ``seq`` order.

    * ``medically_ready`` opens an interval; a second one while open changes nothing.
    * The first of ``transferred``, ``cancelled`` (reason ``died``: death, counted until the
      death; any other reason: discharged elsewhere), ``ready_revoked`` or
      ``hospital_admitted`` (the patient moved to another hospital: a hospital-to-hospital
      transfer) closes it. Ready -> revoked -> ready is therefore two intervals; after a
      hospital-to-hospital transfer a new interval starts only with the next
      ``medically_ready``. Closing events while nothing is open change nothing.
    * ``transferred`` and ``cancelled`` are final: later rows (which the service never
      writes) are ignored. Being placed twice (ELV bridge, then Wlz) is two placements, and
      only the hospital days of the first count, because the second has no ready event.
    """
    out: list[ReadyInterval] = []
    opened: Event | None = None
    for event in stay.ordered():
        if event.type == MEDICALLY_READY:
            opened = opened or event
            continue
        if event.type in (READY_REVOKED, HOSPITAL_ADMITTED) or event.type in FINAL_EVENTS:
            if opened is not None:
                out.append(
                    ReadyInterval(
                        stay=stay,
                        start=opened.occurred_at,
                        end=event.occurred_at,
                        end_kind=_end_kind(event),
                        backdated=opened.backdated or event.backdated,
                    )
                )
                opened = None
            if event.type in FINAL_EVENTS:
                break
    if opened is not None:
        out.append(ReadyInterval(stay, opened.occurred_at, None, None, opened.backdated))
    return out


def _end_kind(event: Event) -> EndKind:
    if event.type == READY_REVOKED:
        return "revoked"
    if event.type == HOSPITAL_ADMITTED:
        return "hospital_transfer"
    if event.type == TRANSFERRED:
        return "transferred"
    return "died" if event.reason == "died" else "cancelled"


@dataclass(frozen=True, slots=True)
class StayFilter:
    """Filters of docs/domain.md §6.1 (age at the ready moment; narrow = awaited care type Wlz)."""

    age_min: int | None = None
    definition: Literal["broad", "narrow"] = "broad"
    hospital_id: str | None = None
    subregion_id: str | None = None
    care_type: str | None = None
    # The caller's region (every role but admin): applied by the SQL, whose rows carry it.
    region_id: str | None = None

    def stay_passes(self, stay: Stay) -> bool:
        if self.definition == "narrow" and not stay.care_type.startswith(WLZ_PREFIX):
            return False
        if self.hospital_id is not None and stay.hospital_id != self.hospital_id:
            return False
        if self.subregion_id is not None and stay.subregion_id != self.subregion_id:
            return False
        return self.care_type is None or stay.care_type == self.care_type

    def age_passes(self, age: int) -> bool:
        return self.age_min is None or age >= self.age_min


@dataclass(slots=True)
class WrongBedRow:
    """Wrong-bed figures of one group.

    ``days``: VBD, the midnight census of docs/domain.md §6.1. ``patients``: distinct patients with
    at least one counted day. ``intervals``: ready intervals with at least one counted day, of
    which ``backdated`` have a back-dated start or end event. ``hospital_transfers`` and
    ``deaths``: intervals that *ended* in the group's dates by a hospital-to-hospital transfer
    or by death (counted separately, whatever their day count). ``open_intervals``: counted
    intervals still open at ``now``. ``calendar_days``: days of the period in the group.
    """

    group: str | None
    calendar_days: int
    days: int = 0
    patients: int = 0
    intervals: int = 0
    open_intervals: int = 0
    backdated: int = 0
    hospital_transfers: int = 0
    deaths: int = 0

    @property
    def avg_daily(self) -> float:
        """VB_avg_daily = VBD / days in the period (or in the group's part of it)."""
        return self.days / self.calendar_days if self.calendar_days else 0.0


def wrong_bed_days(
    stays: Iterable[Stay],
    period: Period,
    *,
    now: datetime,
    flt: StayFilter | None = None,
    group_by: str | None = None,
) -> list[WrongBedRow]:
    """VBD(P, filter) = Σ stays Σ intervals days(i, P), split by ``group_by``.

    Open intervals end at ``now`` (a live view); every interval is clipped to the period by the
    census itself, so whatever lies after the period end counts in the next one. Rows come
    sorted by group; with no ``group_by`` there is one row (group ``None``).
    """
    flt = flt or StayFilter()
    parts = buckets(period, group_by)
    rows: dict[str | None, WrongBedRow] = {}
    patients: dict[str | None, set[str]] = defaultdict(set)

    def row(label: str | None, calendar_days: int) -> WrongBedRow:
        if label not in rows:
            rows[label] = WrongBedRow(label, calendar_days)
        return rows[label]

    for b in parts:
        if group_by in TIME_GROUPS or group_by is None:
            row(b.label, b.days)
    for stay in stays:
        if not flt.stay_passes(stay):
            continue
        for interval in ready_intervals(stay):
            age = interval.age_at_ready
            if not flt.age_passes(age):
                continue
            end = interval.end if interval.end is not None else now
            attribute = _group_value(stay, group_by, age)
            for b in parts:
                label = b.label if group_by in TIME_GROUPS else attribute
                days = midnight_count(interval.start, end, b.start, b.end)
                if days > 0:
                    target = row(label, b.days)
                    target.days += days
                    target.intervals += 1
                    target.open_intervals += interval.end is None
                    target.backdated += interval.backdated
                    patients[label].add(stay.patient_key)
                if (
                    interval.end_kind in ("hospital_transfer", "died")
                    and interval.end is not None
                    and b.start <= local_date(interval.end) < b.end
                ):
                    target = row(label, b.days)
                    target.hospital_transfers += interval.end_kind == "hospital_transfer"
                    target.deaths += interval.end_kind == "died"
    for label, keys in patients.items():
        rows[label].patients = len(keys)
    return sorted(rows.values(), key=lambda r: (r.group is None, r.group or ""))


# --- 6.2 75+ inflow ----------------------------------------------------------------------------

INFLOW_SOURCES = ("seh", "hap", "rav", "vvt_acute")
# Sources whose 75+ inflow must not grow (docs/domain.md §6.2); acute VVT is where the region
# steers inflow to, so it has no such cap.
CAPPED_SOURCES = ("seh", "hap", "rav")
# contact types a source may report, and which of them count (docs/domain.md §6.2)
CONTACT_TYPES: Mapping[str, tuple[str, ...]] = {
    "seh": ("registration", "secondary_transfer"),
    "hap": ("telephone_consult", "consult", "home_visit", "information_call"),
    "rav": ("deployment", "ehgv", "cancelled_run"),
    "vvt_acute": ("acute_admission", "acute_home_visit", "information_call"),
}
COUNTED_CONTACTS: Mapping[str, frozenset[str]] = {
    "seh": frozenset({"registration"}),  # re-attendances count again; secondary transfers not
    "hap": frozenset({"telephone_consult", "consult", "home_visit"}),  # no information calls
    "rav": frozenset({"deployment", "ehgv"}),  # EHGV: treated, not transported (a sub-count)
    # acute VVT: unplanned admissions (ELV, crisis beds) and unplanned district-nursing visits
    "vvt_acute": frozenset({"acute_admission", "acute_home_visit"}),
}
URGENCY_CODES: Mapping[str, tuple[str, ...]] = {
    "seh": ("U0", "U1", "U2", "U3", "U4", "U5", "red", "orange", "yellow", "green", "blue", "-"),
    "hap": ("U0", "U1", "U2", "U3", "U4", "U5", "-"),
    # 2024 ambulance scale plus the old A1/A2/B of RAV Hollands Midden (docs/domain.md §7)
    "rav": ("A0", "A1", "A2", "B", "B1", "B2", "C1", "C2"),
    # acute VVT has no native scale: the unified level (docs/domain.md §7, VVT column)
    "vvt_acute": ("UUL3", "UUL4", "UUL5", "-"),
}
COUNTED_RAV_URGENCY = frozenset({"A0", "A1", "A2", "B", "B1", "B2"})  # C1/C2: no ambulance sent


@dataclass(frozen=True, slots=True)
class InflowLine:
    """One aggregate line of an inflow report (``inflow_count``); the whole count is
    attributed to the local date ``period_start``."""

    source: str
    organisation_id: str
    subregion_id: str | None
    period_start: date
    period_end: date
    age_band: str
    urgency_native: str
    contact_type: str
    count: int


def inflow_counts(line: InflowLine) -> bool:
    """Whether a line counts towards X75 (docs/domain.md §6.2)."""
    if line.contact_type not in COUNTED_CONTACTS.get(line.source, frozenset()):
        return False
    return line.source != "rav" or line.urgency_native in COUNTED_RAV_URGENCY


@dataclass(slots=True)
class InflowRow:
    """Counted contacts of one source in one group; ``ehgv`` is the RAV sub-count of
    deployments that treated without transporting."""

    source: str
    group: str | None
    count: int = 0
    ehgv: int = 0


def inflow(
    lines: Iterable[InflowLine],
    period: Period,
    *,
    age_min: int | None = None,
    subregion_id: str | None = None,
    group_by: str | None = None,
) -> list[InflowRow]:
    """SEH75 / HAP75 / RAV75 / VVT75 (with ``age_min=75``): Σ counted lines per source, reported
    per source (the regional plan states each stream), split by ``group_by``
    (month, week, subregion, age_band, source)."""
    wanted = None if age_min is None else set(bands_from(age_min))
    rows: dict[tuple[str, str | None], InflowRow] = {}
    for line in lines:
        if not period.contains(line.period_start) or not inflow_counts(line):
            continue
        if wanted is not None and line.age_band not in wanted:
            continue
        if subregion_id is not None and line.subregion_id != subregion_id:
            continue
        label: str | None = None
        if group_by in TIME_GROUPS:
            label = time_label(line.period_start, group_by)
        elif group_by == "subregion":
            label = line.subregion_id or UNKNOWN
        elif group_by == "age_band":
            label = line.age_band
        elif group_by == "source":
            label = line.source
        key = (line.source, label)
        target = rows.setdefault(key, InflowRow(line.source, label))
        target.count += line.count
        target.ehgv += line.count if line.contact_type == "ehgv" else 0
    return sorted(rows.values(), key=lambda r: (r.source, r.group or ""))


# --- 6.4 lead times ----------------------------------------------------------------------------


def median_us(values: Sequence[int]) -> float | None:
    """Median: the middle value, or the mean of the two middle values (exact to 0.5 µs)."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[(n + 1) // 2 - 1] + ordered[n // 2]) / 2


def p90_us(values: Sequence[int]) -> int | None:
    """90th percentile, nearest-rank: the value at rank ceil(0.9 n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[(9 * len(ordered) + 9) // 10 - 1]


@dataclass(frozen=True, slots=True)
class LeadTimeSummary:
    """The published lead-time figures of one group (what the SQL computes)."""

    group: str | None
    requests: int
    triaged: int
    triage_median_us: float | None
    triage_p90_us: int | None
    placed: int
    placement_median_us: float | None
    placement_p90_us: int | None


@dataclass(slots=True)
class LeadTimeRow:
    """Lead times of the placements *requested* in the group (request_created in the period).

    ``time_to_triage`` = first ``triaged`` − ``request_created``; ``time_to_placement`` =
    first ``offer_accepted`` − ``request_created`` (docs/domain.md §6.4), in microseconds;
    placements
    not (yet) triaged or accepted are counted in ``requests`` only.
    """

    group: str | None
    requests: int = 0
    triage_us: list[int] = field(default_factory=list)
    placement_us: list[int] = field(default_factory=list)

    @property
    def triaged(self) -> int:
        return len(self.triage_us)

    @property
    def placed(self) -> int:
        return len(self.placement_us)

    @property
    def triage_median_us(self) -> float | None:
        return median_us(self.triage_us)

    @property
    def triage_p90_us(self) -> int | None:
        return p90_us(self.triage_us)

    @property
    def placement_median_us(self) -> float | None:
        return median_us(self.placement_us)

    @property
    def placement_p90_us(self) -> int | None:
        return p90_us(self.placement_us)

    def summary(self) -> LeadTimeSummary:
        return LeadTimeSummary(
            group=self.group,
            requests=self.requests,
            triaged=self.triaged,
            triage_median_us=self.triage_median_us,
            triage_p90_us=self.triage_p90_us,
            placed=self.placed,
            placement_median_us=self.placement_median_us,
            placement_p90_us=self.placement_p90_us,
        )


def _cohort(
    stays: Iterable[Stay], period: Period, flt: StayFilter, group_by: str | None
) -> Iterator[tuple[str | None, Stay, Event]]:
    """Placements requested in the period passing the filter, with their group label; age is
    taken at the request (docs/domain.md §6.1 convention, applied to the request moment)."""
    for stay in stays:
        created = stay.first(REQUEST_CREATED)
        if created is None or not period.contains(local_date(created.occurred_at)):
            continue
        if not flt.stay_passes(stay):
            continue
        age = stay.age_at(created.occurred_at)
        if not flt.age_passes(age):
            continue
        label: str | None
        if group_by in TIME_GROUPS:
            label = time_label(local_date(created.occurred_at), group_by)
        else:
            label = _group_value(stay, group_by, age)
        yield label, stay, created


def lead_times(
    stays: Iterable[Stay],
    period: Period,
    *,
    flt: StayFilter | None = None,
    group_by: str | None = "care_type",
) -> list[LeadTimeRow]:
    """time_to_triage and time_to_placement, median and P90, per group (default care type)."""
    rows: dict[str | None, LeadTimeRow] = {}
    for label, stay, created in _cohort(stays, period, flt or StayFilter(), group_by):
        target = rows.setdefault(label, LeadTimeRow(label))
        target.requests += 1
        triaged = stay.first(TRIAGED)
        if triaged is not None:
            target.triage_us.append(duration_us(triaged.occurred_at, created.occurred_at))
        accepted = stay.first(OFFER_ACCEPTED)
        if accepted is not None:
            target.placement_us.append(duration_us(accepted.occurred_at, created.occurred_at))
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- 6.4 escalations ---------------------------------------------------------------------------


@dataclass(slots=True)
class EscalationRow:
    """Escalations of the placements requested in the group.

    ``escalated``: placements with at least one ``escalated`` event; ``to_region`` /
    ``to_national``: placements whose highest level reached is region / national;
    ``declines``: ``offer_declined`` events by reason code; ``expired_holds``: holds released
    unanswered. ``escalation_rate`` = escalated / requests.
    """

    group: str | None
    requests: int = 0
    escalated: int = 0
    to_region: int = 0
    to_national: int = 0
    expired_holds: int = 0
    declines: dict[str, int] = field(default_factory=dict)

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.requests if self.requests else None


def escalations(
    stays: Iterable[Stay],
    period: Period,
    *,
    flt: StayFilter | None = None,
    group_by: str | None = None,
) -> list[EscalationRow]:
    """escalation_rate, escalations by level and decline-reason counts (docs/domain.md §6.4, §8)."""
    rows: dict[str | None, EscalationRow] = {}
    for label, stay, _ in _cohort(stays, period, flt or StayFilter(), group_by):
        target = rows.setdefault(label, EscalationRow(label))
        target.requests += 1
        levels = {e.level for e in stay.events if e.type == ESCALATED}
        if levels:
            target.escalated += 1
            if "national" in levels:
                target.to_national += 1
            else:
                target.to_region += 1
        for e in stay.events:
            if e.type == OFFER_DECLINED:
                reason = e.reason or "other"
                target.declines[reason] = target.declines.get(reason, 0) + 1
            elif e.type == HOLD_EXPIRED:
                target.expired_holds += 1
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- 6.4 capacity ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitInfo:
    id: str
    care_type: str
    subregion_id: str | None
    staffed_capacity: int
    created_at: datetime
    active: bool = True


@dataclass(frozen=True, slots=True)
class Report:
    """A capacity report; ``id`` (insertion order) breaks ties between equal ``reported_at``."""

    id: int
    unit_id: str
    free: int
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A change of a unit's admission status; ``id`` (insertion order) breaks ties between
    equal ``changed_at``. ``until`` is when a closure ends by itself (None: when reopened)."""

    id: int
    unit_id: str
    accepting: bool
    reason: str | None
    changed_at: datetime
    until: datetime | None = None


@dataclass(slots=True)
class CapacityRow:
    """Capacity census of one group.

    At each census moment every active unit that existed then (created, or already reporting:
    a report proves the unit existed) is one *unit-moment*. It is
    ``stale`` when it has no report at or before the moment, or its latest one is older than
    its care type's TTL (4 h for beds, 24 h for district nursing). Occupancy uses the latest
    report of each reported unit-moment: occupied = staffed − min(free, staffed).

    ``closed`` counts the *closed unit-days* per reason: the census moments at which an active
    unit's latest status change at or before the moment closed it to admissions with that
    reason, and its ``until`` (if any) lies after the moment. A status change proves the unit
    existed, so these count whether or not the unit is a unit-moment.
    """

    group: str | None
    unit_moments: int = 0
    stale: int = 0
    reported: int = 0
    staffed: int = 0
    occupied: int = 0
    closed: dict[str, int] = field(default_factory=dict)

    @property
    def stale_share(self) -> float | None:
        return self.stale / self.unit_moments if self.unit_moments else None

    @property
    def occupancy(self) -> float | None:
        return self.occupied / self.staffed if self.staffed else None


def census_moments(period: Period) -> list[datetime]:
    """The local midnights of the period's dates: the capacity census moments."""
    return [local_midnight(date_of(n)) for n in range(day_no(period.start), day_no(period.end))]


def capacity(
    units: Iterable[UnitInfo],
    reports: Iterable[Report],
    moments: Sequence[datetime],
    *,
    ttl: Callable[[str], timedelta],
    group_by: str | None = "care_type",
    subregion_id: str | None = None,
    care_type: str | None = None,
    statuses: Iterable[StatusChange] = (),
) -> list[CapacityRow]:
    """Stale share, occupancy and closed unit-days per group (default care type) over the
    census moments."""
    history: dict[str, list[Report]] = defaultdict(list)
    for r in reports:
        history[r.unit_id].append(r)
    for items in history.values():
        items.sort(key=lambda r: (r.reported_at, r.id))
    changes: dict[str, list[StatusChange]] = defaultdict(list)
    for c in statuses:
        changes[c.unit_id].append(c)
    for changed in changes.values():
        changed.sort(key=lambda c: (c.changed_at, c.id))
    rows: dict[str | None, CapacityRow] = {}
    for unit in units:
        if not unit.active:
            continue
        if subregion_id is not None and unit.subregion_id != subregion_id:
            continue
        if care_type is not None and unit.care_type != care_type:
            continue
        for moment in moments:
            if group_by in TIME_GROUPS:
                label: str | None = time_label(local_date(moment), group_by)
            elif group_by == "subregion":
                label = unit.subregion_id or UNKNOWN
            elif group_by == "care_type":
                label = unit.care_type
            else:
                label = None
            status = None
            for c in changes.get(unit.id, ()):
                if c.changed_at > moment:
                    break
                status = c
            if (
                status is not None
                and not status.accepting
                and status.reason is not None
                and (status.until is None or status.until > moment)
            ):
                closed = rows.setdefault(label, CapacityRow(label)).closed
                closed[status.reason] = closed.get(status.reason, 0) + 1
            latest = None
            for r in history.get(unit.id, ()):
                if r.reported_at > moment:
                    break
                latest = r
            if unit.created_at > moment and latest is None:
                continue
            target = rows.setdefault(label, CapacityRow(label))
            target.unit_moments += 1
            if latest is None:
                target.stale += 1
                continue
            target.stale += moment - latest.reported_at > ttl(unit.care_type)
            target.reported += 1
            target.staffed += unit.staffed_capacity
            target.occupied += unit.staffed_capacity - min(latest.free, unit.staffed_capacity)
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- 6.3 GGZ crisis assessment within norm ------------------------------------------------------

GGZ_CARE_TYPE = "ggz_crisis"


def ggz_norm(urgency_level: int) -> timedelta:
    """docs/domain.md §12.4: UUL 2 -> 1 h, 3 -> 4 h, 4 -> 24 h. Levels 0-1 (more urgent than 2) take
    the 1 h norm, level 5 the 24 h norm [A]."""
    if urgency_level <= 2:
        return timedelta(hours=1)
    if urgency_level == 3:
        return timedelta(hours=4)
    return timedelta(hours=24)


Outcome = Literal["within", "late", "left", "overdue", "pending"]


def clock_outcome(
    start: datetime, stopped: datetime | None, left: bool, now: datetime, norm_us: int
) -> Outcome:
    """A clock started at ``start`` against a norm (GGZ crisis, admission guarantee): stopped
    within or after the norm, left (cancelled before it stopped), running past the norm at
    ``now`` (overdue), or still running within it (pending)."""
    if stopped is not None:
        return "within" if duration_us(stopped, start) <= norm_us else "late"
    if left:
        return "left"
    return "overdue" if duration_us(now, start) > norm_us else "pending"


class ClockCounts:
    """Counts of clock outcomes in a group; ``COUNT`` names the field counting every case and
    ``LEFT`` the one counting cases left before the clock stopped.
    share = within / (within + late + open_overdue)."""

    __slots__ = ()
    COUNT: ClassVar[str]
    LEFT: ClassVar[str]
    group: str | None
    within: int
    late: int
    open_overdue: int
    open_within: int

    @property
    def denominator(self) -> int:
        return self.within + self.late + self.open_overdue

    @property
    def share(self) -> float | None:
        return self.within / self.denominator if self.denominator else None

    def add(self, outcome: str, n: int = 1) -> None:
        """Counts ``n`` cases of ``outcome`` (an ``Outcome``)."""
        name = {"within": "within", "late": "late", "left": self.LEFT, "overdue": "open_overdue"}
        for attr in (self.COUNT, name.get(outcome, "open_within")):
            setattr(self, attr, getattr(self, attr) + n)


@dataclass(slots=True)
class GgzRow(ClockCounts):
    """GGZ crisis cases whose clock started (t0) in the group.

    t0 = the ED's somatic clearance: the first ``medically_ready``, else ``request_created``;
    t1 = the crisis service starts the assessment: the first ``offer_accepted`` [A].
    ``within``: assessed with t1 − t0 ≤ norm; ``late``: assessed after the norm;
    ``open_overdue``: no t1 yet and already past the norm at ``now`` (a failure);
    ``open_within``: no t1 yet, still within the norm (excluded until closed);
    ``left_before_assessment``: cancelled without t1 (reported separately, excluded).
    share = within / (within + late + open_overdue); target ≥ 0.90.
    """

    COUNT: ClassVar[str] = "cases"
    LEFT: ClassVar[str] = "left_before_assessment"
    group: str | None
    cases: int = 0
    within: int = 0
    late: int = 0
    open_overdue: int = 0
    open_within: int = 0
    left_before_assessment: int = 0


def ggz_clock(stay: Stay) -> tuple[Event, Event | None, bool]:
    """(t0 event, t1 event or None, cancelled before t1) of a GGZ crisis case."""
    ordered = stay.ordered()
    start = next((e for e in ordered if e.type == MEDICALLY_READY), None)
    start = start or next(e for e in ordered if e.type == REQUEST_CREATED)
    assessed = next((e for e in ordered if e.type == OFFER_ACCEPTED), None)
    left = assessed is None and any(e.type == CANCELLED for e in ordered)
    return start, assessed, left


def ggz_crisis_within_norm(
    stays: Iterable[Stay],
    period: Period,
    *,
    now: datetime,
    subregion_id: str | None = None,
    group_by: str | None = None,
) -> list[GgzRow]:
    """docs/domain.md §6.3 over placements of care type ``ggz_crisis`` with t0 in the period."""
    rows: dict[str | None, GgzRow] = {}
    for stay in stays:
        if stay.care_type != GGZ_CARE_TYPE or stay.first(REQUEST_CREATED) is None:
            continue
        if subregion_id is not None and stay.subregion_id != subregion_id:
            continue
        start, assessed, left = ggz_clock(stay)
        if not period.contains(local_date(start.occurred_at)):
            continue
        label: str | None
        if group_by in TIME_GROUPS:
            label = time_label(local_date(start.occurred_at), group_by)
        else:
            label = _group_value(stay, group_by, stay.age_at(start.occurred_at))
        norm = duration_us(start.occurred_at + ggz_norm(stay.urgency_level), start.occurred_at)
        stopped = None if assessed is None else assessed.occurred_at
        outcome = clock_outcome(start.occurred_at, stopped, left, now, norm)
        rows.setdefault(label, GgzRow(label)).add(outcome)
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- targets (docs/domain.md §6, §12.2) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A regional target evaluated for one period.

    ``value`` is the target for the period: for a count KPI the yearly target scaled to the
    period's share of its year (``fraction``); ``on_track`` compares the measured value.
    """

    kpi: str
    scope: str
    rule: str
    baseline_year: int | None
    baseline_value: float | None
    target_year: int
    value: float
    fraction: float
    measured: float | None
    on_track: bool | None


def wrong_bed_target(
    baseline_value: float,
    *,
    baseline_year: int,
    year: int,
    fraction: float,
    measured: float,
    reduction: float = 0.25,
    target_year: int = 2030,
) -> Target:
    """VBD(2030, 75+, broad) ≤ 0.75 × VBD(2022, 75+, broad), on a straight path from the baseline
    year to the target year (the years in between must lie on or under the path) [A]."""
    steps = target_year - baseline_year
    progress = min(max(year - baseline_year, 0), steps) / steps if steps > 0 else 1.0
    yearly = baseline_value * (1 - reduction * progress)
    value = yearly * fraction
    return Target(
        kpi="wrong_bed_days",
        scope="age75+/broad",
        rule=f"VBD({target_year}) <= {1 - reduction:.2f} x VBD({baseline_year}), linear path",
        baseline_year=baseline_year,
        baseline_value=baseline_value,
        target_year=target_year,
        value=value,
        fraction=fraction,
        measured=measured,
        on_track=measured <= value,
    )


def inflow_target(
    source: str,
    baseline_value: float,
    *,
    baseline_year: int,
    fraction: float,
    measured: float,
    target_year: int = 2030,
) -> Target:
    """X75(Y) ≤ X75(2022) for each source (docs/domain.md §6.2)."""
    value = baseline_value * fraction
    return Target(
        kpi="inflow",
        scope=source,
        rule=f"{source.upper()}75(Y) <= {source.upper()}75({baseline_year})",
        baseline_year=baseline_year,
        baseline_value=baseline_value,
        target_year=target_year,
        value=value,
        fraction=fraction,
        measured=measured,
        on_track=measured <= value,
    )


def ggz_target(measured: float | None, *, threshold: float = 0.90) -> Target:
    """Crisis-service wait within norm in ≥ 90 % of cases (docs/domain.md §6)."""
    return Target(
        kpi="ggz_crisis_within_norm",
        scope="region",
        rule=f"share within norm >= {threshold:.2f}",
        baseline_year=None,
        baseline_value=None,
        target_year=2024,
        value=threshold,
        fraction=1.0,
        measured=measured,
        on_track=None if measured is None else measured >= threshold,
    )


def year_fraction(period: Period) -> tuple[int, float] | None:
    """(year, share of that year) when the period lies within one calendar year, else None."""
    if period.start.year != (period.end - timedelta(days=1)).year:
        return None
    year = period.start.year
    return year, period.days / (date(year + 1, 1, 1) - date(year, 1, 1)).days


# --- report-now response times (docs/report-requests.md) ----------------------------------------


@dataclass(frozen=True, slots=True)
class ReportTarget:
    """One unit a report-now request targeted: the request's time and deadline, the unit and its
    organisation."""

    request_id: str
    organisation_id: str
    unit_id: str
    created_at: datetime
    deadline_at: datetime


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    """A capacity report as it arrived (``recorded_at``, the server's clock)."""

    unit_id: str
    recorded_at: datetime


def answered_at(target: ReportTarget, reports: Iterable[ReceivedReport]) -> datetime | None:
    """The answer to a request for one unit: the unit's first report recorded at or after the
    request was made (None while there is none)."""
    times = [
        r.recorded_at
        for r in reports
        if r.unit_id == target.unit_id and r.recorded_at >= target.created_at
    ]
    return min(times) if times else None


@dataclass(frozen=True, slots=True)
class ReportResponseSummary:
    """The published response figures of one organisation (what the SQL computes)."""

    organisation_id: str
    targeted: int
    answered: int
    within_deadline: int
    median_us: float | None

    @property
    def share_within_deadline(self) -> float | None:
        return self.within_deadline / self.targeted if self.targeted else None


def report_responses(
    targets: Iterable[ReportTarget], reports: Sequence[ReceivedReport], period: Period
) -> list[ReportResponseSummary]:
    """Per organisation, over the units targeted by requests made in the period (local date of
    ``created_at``): how many were targeted, answered, answered by the deadline (answer at or
    before ``deadline_at``), and the median answer time (answer - request, µs) of the answered."""
    rows: dict[str, tuple[list[int], list[int]]] = {}
    for t in targets:
        if not period.contains(local_date(t.created_at)):
            continue
        durations, within = rows.setdefault(t.organisation_id, ([], []))
        answer = answered_at(t, reports)
        within.append(int(answer is not None and answer <= t.deadline_at))
        if answer is not None:
            durations.append(duration_us(answer, t.created_at))
    return [
        ReportResponseSummary(
            organisation_id=org,
            targeted=len(within),
            answered=len(durations),
            within_deadline=sum(within),
            median_us=median_us(durations),
        )
        for org, (durations, within) in sorted(rows.items())
    ]


# --- 6.5 admission guarantee (respite and observation beds) ------------------------------------

GUARANTEED_CARE_TYPES = ("observation", "respite")  # app.enums.GUARANTEED_CARE_TYPES
GUARANTEE_WINDOW_US = 24 * 3_600_000_000  # 24 h in microseconds


@dataclass(slots=True)
class GuaranteeRow(ClockCounts):
    """Requests for a guaranteed care type (respite, observation) made in the group
    (docs/domain.md §6.5).

    The clock runs from the first ``request_created`` to the first ``offer_accepted`` (the place
    is promised). ``within``: accepted with t1 − t0 ≤ 24 h; ``late``: accepted later;
    ``open_overdue``: not accepted, not cancelled, and older than 24 h at ``now`` (a failure);
    ``open_within``: still inside its 24 hours (left out until decided);
    ``cancelled``: cancelled without an acceptance (reported apart, left out).
    share = within / (within + late + open_overdue); the region's target is 1.0.
    """

    COUNT: ClassVar[str] = "requests"
    LEFT: ClassVar[str] = "cancelled"
    group: str | None
    requests: int = 0
    within: int = 0
    late: int = 0
    open_overdue: int = 0
    open_within: int = 0
    cancelled: int = 0


def admission_guarantee(
    stays: Iterable[Stay],
    period: Period,
    *,
    now: datetime,
    flt: StayFilter | None = None,
    group_by: str | None = None,
) -> list[GuaranteeRow]:
    """Share of respite/observation requests placed within 24 h, over the placements requested
    in the period (``_cohort``: age at the request). ``flt.care_type`` narrows to one of the
    guaranteed types (any other care type gives no rows)."""
    window = GUARANTEE_WINDOW_US
    rows: dict[str | None, GuaranteeRow] = {}
    for label, stay, created in _cohort(stays, period, flt or StayFilter(), group_by):
        if stay.care_type not in GUARANTEED_CARE_TYPES:
            continue
        accepted = stay.first(OFFER_ACCEPTED)
        stopped = None if accepted is None else accepted.occurred_at
        left = stay.first(CANCELLED) is not None
        outcome = clock_outcome(created.occurred_at, stopped, left, now, window)
        rows.setdefault(label, GuaranteeRow(label)).add(outcome)
    return sorted(rows.values(), key=lambda r: r.group or "")


def guarantee_target(measured: float | None, *, threshold: float = 1.0) -> Target:
    """Zoetermeer's "100 % opnamegarantie" for its multifunctional beds (docs/domain.md §6.5)."""
    return Target(
        kpi="admission_guarantee",
        scope="respite+observation",
        rule=f"share placed within 24 h >= {threshold:.2f}",
        baseline_year=None,
        baseline_value=None,
        target_year=2025,
        value=threshold,
        fraction=1.0,
        measured=measured,
        on_track=None if measured is None else measured >= threshold,
    )


# --- 6.2 ambulance rides, all ages ---------------------------------------------------------------


def ambulance_rides_target(
    baseline_value: float,
    *,
    baseline_year: int,
    year: int,
    fraction: float,
    measured: float,
    reduction: float = 0.10,
    target_year: int = 2025,
) -> Target:
    """RAV(2025, all ages) ≤ 0.90 × RAV(2022, all ages) (Haaglanden: "10 % fewer ambulance rides
    by end 2025"), on a straight path from the baseline year; after the target year the
    target stays at its end value [A]."""
    steps = target_year - baseline_year
    progress = min(max(year - baseline_year, 0), steps) / steps if steps > 0 else 1.0
    value = baseline_value * (1 - reduction * progress) * fraction
    return Target(
        kpi="inflow",
        scope=AMBULANCE_ALL_AGES_SCOPE,
        rule=f"RAV({target_year}, all ages) <= {1 - reduction:.2f} x RAV({baseline_year}), "
        "linear path",
        baseline_year=baseline_year,
        baseline_value=baseline_value,
        target_year=target_year,
        value=value,
        fraction=fraction,
        measured=measured,
        on_track=measured <= value,
    )


AMBULANCE_ALL_AGES_SCOPE = "rav/all-ages"


# --- 6.7 Wlz-crisis waiting --------------------------------------------------------------------

WLZ_CRISIS_CARE_TYPE = "wlz_crisis"


@dataclass(frozen=True, slots=True)
class WaitingDay:
    """Patients waiting for a Wlz-crisis place at the local midnight that starts ``day``
    (docs/domain.md §6.7)."""

    day: date
    waiting: int


def wlz_crisis_waiting(
    stays: Iterable[Stay],
    period: Period,
    *,
    now: datetime,
    flt: StayFilter | None = None,
) -> list[WaitingDay]:
    """For each date of the period whose starting local midnight ``m`` is not after ``now``: the
    number of distinct patients (patient keys) with a ``wlz_crisis`` placement waiting at ``m``.

    Waiting at ``m``: the first ``request_created`` (by ``seq``) is before ``m``, and neither the
    first ``offer_accepted`` (the place is promised) nor the first ``cancelled`` is before ``m``.
    Days after ``now`` give no row; a day with nobody waiting is a row with 0. ``flt``: hospital
    and subregion (age, definition and care type do not apply)."""
    flt = flt or StayFilter()
    spans: list[tuple[str, datetime, datetime | None]] = []
    for stay in stays:
        if stay.care_type != WLZ_CRISIS_CARE_TYPE:
            continue
        if flt.hospital_id is not None and stay.hospital_id != flt.hospital_id:
            continue
        if flt.subregion_id is not None and stay.subregion_id != flt.subregion_id:
            continue
        created = stay.first(REQUEST_CREATED)
        if created is None:
            continue
        ends = [
            e.occurred_at
            for e in (stay.first(OFFER_ACCEPTED), stay.first(CANCELLED))
            if e is not None
        ]
        spans.append((stay.patient_key, created.occurred_at, min(ends) if ends else None))
    out = []
    for n in range(day_no(period.start), day_no(period.end)):
        d = date_of(n)
        m = local_midnight(d)
        if m > now:
            break
        keys = {k for k, start, end in spans if start < m and (end is None or end >= m)}
        out.append(WaitingDay(d, len(keys)))
    return out


# --- 6.8 advance care planning of referrals aged 65+ ----------------------------------------------

ACP_AGE_MIN = 65
ACP_RECORDED = "recorded"
ACP_NOT_RECORDED = "not_recorded"


@dataclass(slots=True)
class AcpRow:
    """Referrals of patients aged 65+ (age at the request) made in the group, by whether advance
    care planning is recorded (docs/domain.md §6.8). share = recorded / referrals (an unknown
    answer counts as not recorded); share_known = recorded / (recorded + not_recorded)."""

    group: str | None
    referrals: int = 0
    recorded: int = 0
    not_recorded: int = 0
    unknown: int = 0

    @property
    def share(self) -> float | None:
        return self.recorded / self.referrals if self.referrals else None

    @property
    def share_known(self) -> float | None:
        known = self.recorded + self.not_recorded
        return self.recorded / known if known else None


def advance_care_planning(
    stays: Iterable[Stay],
    period: Period,
    *,
    flt: StayFilter | None = None,
    group_by: str | None = None,
) -> list[AcpRow]:
    """Over the placements requested in the period (``_cohort``) whose patient is at least 65 at
    the request (or ``flt.age_min`` when that is higher): how many have advance care planning
    recorded, not recorded, or unknown (not given)."""
    flt = flt or StayFilter()
    floor = max(ACP_AGE_MIN, flt.age_min or 0)
    flt = replace(flt, age_min=floor)
    rows: dict[str | None, AcpRow] = {}
    for label, stay, _ in _cohort(stays, period, flt, group_by):
        target = rows.setdefault(label, AcpRow(label))
        target.referrals += 1
        if stay.advance_care_planning == ACP_RECORDED:
            target.recorded += 1
        elif stay.advance_care_planning == ACP_NOT_RECORDED:
            target.not_recorded += 1
        else:
            target.unknown += 1
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- 6.9 between the cracks --------------------------------------------------------------------

# How long a request for each care type may wait for a place (request -> offer accepted) before it
# counts as "between the cracks" (docs/domain.md §6.9): the region's norm per care type, in hours.
CARE_TYPE_NORM_HOURS: dict[str, int] = {
    "elv_low": 48,
    "elv_high": 24,
    "elv_palliative": 24,
    "grz": 72,
    "wlz_crisis": 24,
    "ggz_crisis": 24,
    "district_nursing_acute": 4,
    "district_nursing": 72,
    "local_other": 72,
    "respite": 24,
    "observation": 24,
}
DEFAULT_NORM_HOURS = 72  # a care type missing from the table
REREFERRAL_WINDOW_US = 30 * 24 * 3_600_000_000  # 30 days in microseconds


def norm_us(care_type: str, region_norms: Mapping[str, int] | None = None) -> int:
    """The care type's norm in microseconds: the region's own (hours), else the default."""
    hours = (region_norms or {}).get(care_type)
    if hours is None:
        hours = CARE_TYPE_NORM_HOURS.get(care_type, DEFAULT_NORM_HOURS)
    return hours * 3_600_000_000


@dataclass(slots=True)
class CracksRow:
    """Requests made in the group that fell between the cracks (docs/domain.md §6.9).

    ``over_norm``: placed (first ``offer_accepted``) later than the care type's norm after the
    first ``request_created``, or, not placed and not cancelled, older than the norm at ``now``;
    ``cancelled_without_place``: cancelled without an acceptance; ``re_referrals``: the same
    patient (patient key) had another request made in the 30 days before this one (any care
    type; strictly earlier)."""

    group: str | None
    requests: int = 0
    over_norm: int = 0
    cancelled_without_place: int = 0
    re_referrals: int = 0


def between_the_cracks(
    stays: Iterable[Stay],
    period: Period,
    *,
    now: datetime,
    flt: StayFilter | None = None,
    group_by: str | None = None,
    region_norms: Mapping[str, int] | None = None,
) -> list[CracksRow]:
    """Over the placements requested in the period (``_cohort``). An earlier request counts for
    a re-referral whatever its care type or the filters, as long as it is in the data given (the
    SQL: the caller's region). ``region_norms``: the stays' region's own norms in hours (the
    SQL: each placement's region's)."""
    stays = list(stays)
    requested: dict[str, list[datetime]] = {}
    for stay in stays:
        created = stay.first(REQUEST_CREATED)
        if created is not None:
            requested.setdefault(stay.patient_key, []).append(created.occurred_at)
    rows: dict[str | None, CracksRow] = {}
    for label, stay, created in _cohort(stays, period, flt or StayFilter(), group_by):
        target = rows.setdefault(label, CracksRow(label))
        target.requests += 1
        t0 = created.occurred_at
        accepted = stay.first(OFFER_ACCEPTED)
        stopped = None if accepted is None else accepted.occurred_at
        left = stay.first(CANCELLED) is not None
        outcome = clock_outcome(t0, stopped, left, now, norm_us(stay.care_type, region_norms))
        target.over_norm += outcome in ("late", "overdue")
        target.cancelled_without_place += outcome == "left"
        earlier = requested[stay.patient_key]
        if any(t < t0 and duration_us(t0, t) <= REREFERRAL_WINDOW_US for t in earlier):
            target.re_referrals += 1
    return sorted(rows.values(), key=lambda r: r.group or "")


# --- 6.10 shortage ------------------------------------------------------------------------------

HOLD_REFUSED = "hold_refused"
SEARCH_EMPTY = "search_empty"


@dataclass(frozen=True, slots=True)
class Shortage:
    """One ``shortage_event`` row: a hold refused for no capacity or a search without result."""

    kind: str
    care_type: str
    subregion_id: str | None
    occurred_at: datetime


@dataclass(slots=True)
class ShortageRow:
    """Shortage moments of one local date, care type and subregion (docs/domain.md §6.10)."""

    day: date
    care_type: str
    subregion: str  # id, or ``unknown``
    holds_refused: int = 0
    searches_empty: int = 0


def shortage(
    events: Iterable[Shortage],
    period: Period,
    *,
    subregion_id: str | None = None,
    care_type: str | None = None,
) -> list[ShortageRow]:
    """Holds refused for no capacity and searches with no result per local date of the period,
    care type and subregion (those with at least one), ordered by date, care type, subregion."""
    rows: dict[tuple[date, str, str], ShortageRow] = {}
    for e in events:
        d = local_date(e.occurred_at)
        if not period.contains(d):
            continue
        if subregion_id is not None and e.subregion_id != subregion_id:
            continue
        if care_type is not None and e.care_type != care_type:
            continue
        sub = e.subregion_id or UNKNOWN
        row = rows.setdefault((d, e.care_type, sub), ShortageRow(d, e.care_type, sub))
        if e.kind == HOLD_REFUSED:
            row.holds_refused += 1
        else:
            row.searches_empty += 1
    return [rows[k] for k in sorted(rows)]
