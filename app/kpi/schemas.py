"""KPI answers, baselines and inflow reports (docs/domain.md §6): aggregates only."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from app.kpi import formulas as f
from app.schemas import Schema, Text, _reject_bool

AgeBand = Literal["0-17", "18-64", "65-74", "75-84", "85+"]
Source = Literal["seh", "hap", "rav", "vvt_acute"]
# Every contact type of every source (docs/domain.md §6.2 lists which source takes which)
ContactType = Literal[
    "registration",
    "secondary_transfer",
    "telephone_consult",
    "consult",
    "home_visit",
    "information_call",
    "deployment",
    "ehgv",
    "cancelled_run",
    "acute_admission",
    "acute_home_visit",
]
Definition = Literal["broad", "narrow"]
GroupBy = Literal[
    "month", "week", "hospital", "subregion", "age_band", "care_type", "source", "patient_group"
]
KpiName = Literal[
    "wrong_bed_days",
    "inflow",
    "lead_times",
    "escalations",
    "capacity",
    "ggz_crisis_within_norm",
    "admission_guarantee",
    "wlz_crisis_waiting",
    "advance_care_planning",
    "between_the_cracks",
    "shortage",
]
ReportCount = Annotated[int, BeforeValidator(_reject_bool), Field(ge=0, le=10_000_000)]

SUPPRESSION_NOTE = (
    "Cells with 1-4 patients are suppressed for analyst keys: their values are null and "
    "'suppressed' is true."
)


class PeriodRead(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: date = Field(alias="from", description="First local date (inclusive)")
    to: date = Field(description="Local date after the last one (exclusive)")
    days: int
    timezone: str = f.TZ.key


class TargetRead(Schema):
    """A regional target for the period and whether the region is on track (docs/domain.md §6)."""

    kpi: str
    scope: str
    rule: str
    baseline_year: int | None
    baseline_value: float | None
    baseline_source: str | None
    target_year: int
    value: float = Field(description="Target for this period (yearly target x fraction)")
    fraction: float = Field(description="Share of the target year the period covers")
    measured: float | None
    on_track: bool | None


class AnswerBase(Schema):
    kpi: KpiName
    definition_version: str = f.DEFINITION_VERSION
    period: PeriodRead
    group_by: GroupBy | None
    filters: dict[str, str | int | None]
    suppressed_cells: int = Field(description="Rows whose values were suppressed (small cells)")
    targets: list[TargetRead] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    computed_at: datetime


class WrongBedRead(Schema):
    group: str | None
    days: int | None = Field(description="VBD: midnight census of ready intervals")
    patients: int | None
    avg_daily: float | None
    intervals: int | None
    open_intervals: int | None
    backdated: int | None = Field(description="Counted intervals with a back-dated event (>48 h)")
    hospital_transfers: int | None
    deaths: int | None
    calendar_days: int
    suppressed: bool = False


class WrongBedAnswer(AnswerBase):
    definition: Definition
    rows: list[WrongBedRead]
    total: WrongBedRead


class InflowRead(Schema):
    source: Source
    group: str | None
    count: int | None
    ehgv: int | None = Field(description="RAV: deployments treated without transport (sub-count)")
    suppressed: bool = False


class InflowAnswer(AnswerBase):
    rows: list[InflowRead]
    totals: list[InflowRead] = Field(description="Per source over the whole period")


class LeadTimeRead(Schema):
    group: str | None
    requests: int | None
    triaged: int | None
    triage_median_minutes: float | None
    triage_p90_minutes: float | None
    placed: int | None
    placement_median_minutes: float | None
    placement_p90_minutes: float | None
    suppressed: bool = False


class LeadTimeAnswer(AnswerBase):
    rows: list[LeadTimeRead]
    total: LeadTimeRead


class EscalationRead(Schema):
    group: str | None
    requests: int | None
    escalated: int | None
    escalation_rate: float | None
    to_region: int | None
    to_national: int | None
    expired_holds: int | None
    declines: dict[str, int] | None
    suppressed: bool = False


class EscalationAnswer(AnswerBase):
    rows: list[EscalationRead]
    total: EscalationRead


class CapacityRead(Schema):
    group: str | None
    unit_moments: int
    stale: int
    stale_share: float | None
    reported: int
    staffed: int
    occupied: int
    occupancy: float | None
    closed_unit_days: int = Field(
        description="Census days on which a unit was closed to admissions (all reasons)"
    )
    closed_staff_shortage: int
    closed_outbreak: int
    closed_renovation: int
    closed_full: int
    closed_other: int
    suppressed: bool = False


class CapacityAnswer(AnswerBase):
    rows: list[CapacityRead]
    total: CapacityRead


class GgzRead(Schema):
    group: str | None
    cases: int | None
    within: int | None
    late: int | None
    open_overdue: int | None
    open_within: int | None
    left_before_assessment: int | None
    share: float | None
    suppressed: bool = False


class GgzAnswer(AnswerBase):
    rows: list[GgzRead]
    total: GgzRead


# --- baselines ----------------------------------------------------------------------------------


class BaselineIn(Schema):
    kpi: KpiName
    year: Annotated[int, BeforeValidator(_reject_bool), Field(ge=2000, le=2100)]
    scope: Annotated[str, Field(pattern=r"^[a-z0-9+/_-]{1,60}$", examples=["age75+/broad"])]
    value: Annotated[
        float, BeforeValidator(_reject_bool), Field(ge=0, le=1e12, allow_inf_nan=False)
    ]
    source: Annotated[Text, Field(min_length=1, max_length=500)]


class BaselineRead(BaselineIn):
    id: uuid.UUID
    loaded_at: datetime


# --- inflow reports -----------------------------------------------------------------------------


class InflowLineIn(Schema):
    period_start: date = Field(
        description="First date of the line; the whole count counts on this date (a multi-day "
        "line is not spread over its days)"
    )
    period_end: date = Field(description="Exclusive; at most 31 days after period_start")
    subregion: Annotated[
        str | None, Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="id or code")
    ] = None
    age_band: AgeBand
    urgency_native: Annotated[str, Field(min_length=1, max_length=10, examples=["U3", "A1"])]
    contact_type: ContactType = Field(
        description="Per source: seh registration, secondary_transfer; hap telephone_consult, "
        "consult, home_visit, information_call; rav deployment, ehgv, cancelled_run; vvt_acute "
        "acute_admission, acute_home_visit, information_call. Counted: seh registration; hap "
        "telephone_consult, consult, home_visit; rav deployment, ehgv (urgency A0-B2); "
        "vvt_acute acute_admission, acute_home_visit.",
        examples=["registration"],
    )
    count: ReportCount


class InflowReportIn(Schema):
    """Aggregated acute contacts of one organisation (docs/domain.md §6.2); no persons.

    Idempotent per (source, organisation, period, age band, native urgency, contact type): a
    re-sent line *replaces* the stored count (upsert); lines not re-sent are kept.
    """

    source: Source
    organisation_id: uuid.UUID | None = Field(
        default=None, description="Default: the key's organisation (required for admin keys)"
    )
    lines: Annotated[list[InflowLineIn], Field(min_length=1, max_length=2000)]


class InflowReportResult(Schema):
    received: int
    inserted: int
    replaced: int


# --- admission guarantee (docs/domain.md §6.5) ----------------------------------------------------


class GuaranteeRead(Schema):
    group: str | None
    requests: int | None = Field(description="Requests for respite or observation in the group")
    within: int | None = Field(description="Placed (offer accepted) within 24 h of the request")
    late: int | None = Field(description="Placed after 24 h")
    open_overdue: int | None = Field(description="Not placed, not cancelled, older than 24 h")
    open_within: int | None = Field(description="Not placed yet, still within 24 h (left out)")
    cancelled: int | None = Field(description="Cancelled without a place (left out)")
    share: float | None = Field(description="within / (within + late + open_overdue)")
    suppressed: bool = False


class GuaranteeAnswer(AnswerBase):
    rows: list[GuaranteeRead]
    total: GuaranteeRead


# --- Wlz-crisis waiting (docs/domain.md §6.7) ----------------------------------------------------


class WaitingDayRead(Schema):
    day: date = Field(description="Local date; counted at the local midnight that starts it")
    waiting: int | None = Field(description="Patients waiting for a Wlz-crisis place")
    suppressed: bool = False


class WaitingTotalRead(Schema):
    days: int = Field(description="Days counted (the period up to now)")
    patient_days: int | None = Field(description="Sum of the daily counts")
    mean: float | None = Field(description="Mean patients waiting per day")
    peak: int | None = Field(description="Most patients waiting at one midnight")
    suppressed: bool = False


class WaitingAnswer(AnswerBase):
    rows: list[WaitingDayRead]
    total: WaitingTotalRead


# --- advance care planning (docs/domain.md §6.8) --------------------------------------------------


class AcpRead(Schema):
    group: str | None
    referrals: int | None = Field(description="Referrals of patients aged 65+ in the group")
    recorded: int | None = Field(description="Advance care planning recorded")
    not_recorded: int | None = Field(description="Advance care planning not recorded")
    unknown: int | None = Field(description="Not given on the referral")
    share: float | None = Field(description="recorded / referrals (unknown counts as not)")
    share_known: float | None = Field(description="recorded / (recorded + not_recorded)")
    suppressed: bool = False


class AcpAnswer(AnswerBase):
    rows: list[AcpRead]
    total: AcpRead


# --- between the cracks (docs/domain.md §6.9) -----------------------------------------------------


class CracksRead(Schema):
    group: str | None
    requests: int | None = Field(description="Requests made in the period in the group")
    over_norm: int | None = Field(
        description="Placed later than the care type's norm, or still waiting past it"
    )
    cancelled_without_place: int | None = Field(description="Cancelled without an acceptance")
    re_referrals: int | None = Field(
        description="The same patient had another request in the 30 days before"
    )
    suppressed: bool = False


class CracksAnswer(AnswerBase):
    rows: list[CracksRead]
    total: CracksRead
    norms_hours: dict[str, int] = Field(description="The norm per care type, in hours")


# --- shortage (docs/domain.md §6.10) --------------------------------------------------------------


class ShortageRead(Schema):
    day: date = Field(description="Local date")
    care_type: str
    subregion: str = Field(description="Subregion code (unknown: none)")
    holds_refused: int = Field(description="Holds refused because the unit had no place left")
    searches_empty: int = Field(description="Searches for this care type that found no unit")


class ShortageTotalRead(Schema):
    holds_refused: int
    searches_empty: int


class ShortageAnswer(AnswerBase):
    rows: list[ShortageRead]
    total: ShortageTotalRead


# --- demand forecast (docs/domain.md §6.6) --------------------------------------------------------


class BackTestRead(Schema):
    train_days: int = Field(description="Days the back-test trained on (first three quarters)")
    test_days: int = Field(description="Days it forecast in one go (the last quarter)")
    mae: float | None = Field(description="Mean absolute error per day of this method")
    mae_seasonal_naive: float | None = Field(
        description="Mean absolute error per day of repeating the last training week"
    )
    beats_seasonal_naive: bool | None


class ForecastDayRead(Schema):
    date: date
    expected: float = Field(description="Expected requests on this local date")
    lower: float = Field(description="80 % interval: lower bound")
    upper: float = Field(description="80 % interval: upper bound")


class CurrentCapacityRead(Schema):
    units: int = Field(description="Active units of this care type in this subregion")
    available: int = Field(
        description="Places available now: latest free minus held, over open units"
    )
    closed_units: int
    stale_units: int = Field(description="Units without a report younger than the care type's TTL")


class DemandSeriesRead(Schema):
    care_type: str
    subregion: str | None = Field(description="Subregion code; null for requests without one")
    method: Literal["holt_winters_damped", "mean"]
    history_requests: int = Field(description="Requests in the history window")
    capacity: CurrentCapacityRead
    backtest: BackTestRead
    days: list[ForecastDayRead]


class DemandForecastAnswer(Schema):
    kpi: Literal["demand_forecast"] = "demand_forecast"
    method: str
    history: PeriodRead
    horizon: PeriodRead
    filters: dict[str, str | int | None]
    total: DemandSeriesRead = Field(description="All series summed (one model on the sum)")
    series: list[DemandSeriesRead]
    notes: list[str] = Field(default_factory=list)
    computed_at: datetime
