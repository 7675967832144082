"""Capacity report and availability search bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from app.enums import CareType, Feature, NotAcceptingReason, SexPolicy, TargetGroup
from app.schemas import Count, Schema, ShortText, UtcDateTime


class CapacityReportIn(Schema):
    free: Count = Field(description="Places physically free now (never above staffed capacity)")
    expected_free_24h: Count | None = Field(default=None, description="Expected free in 24 h")
    reported_at: UtcDateTime | None = Field(
        default=None, description="When the count was taken; default now, never in the future"
    )


class CapacityReportItem(CapacityReportIn):
    unit_id: uuid.UUID


class CapacityReportRead(Schema):
    id: int
    unit_id: uuid.UUID
    free: int
    expected_free_24h: int | None
    reported_at: datetime
    recorded_at: datetime
    source: str
    available: int = Field(description="free minus places held for placements, never below 0")


class OrganisationRef(Schema):
    id: uuid.UUID
    name: str


class LocationRef(Schema):
    id: uuid.UUID
    name: str
    address: str
    postcode: str
    municipality: str
    latitude: float
    longitude: float
    phone: str | None


class SubregionRef(Schema):
    id: uuid.UUID | None = Field(description="null on a partner region's unit (its code is given)")
    code: str
    name: str


class AvailabilityHit(Schema):
    unit_id: uuid.UUID
    unit_name: str
    care_type: CareType
    label: str | None
    target_groups: list[TargetGroup]
    sex_policy: SexPolicy
    features: list[Feature]
    staffed_capacity: int
    available: int = Field(
        description="Free in the latest report minus held places (docs/domain.md §3.1)"
    )
    reported_free: int
    held: int
    expected_free_24h: int | None
    organisation: OrganisationRef
    location: LocationRef
    subregion: SubregionRef
    escalation_level: Literal["subregion", "region", "national"]
    escalation_rank: int = Field(description="0 = own subregion, n = n-th neighbour")
    distance_km: float | None
    reported_at: datetime
    age_minutes: int
    stale: bool
    matched_because: list[str]
    accepting: bool = Field(
        description=(
            "false: the unit takes no admissions now (listed only with include_not_accepting)"
        )
    )
    not_accepting_reason: NotAcceptingReason | None
    not_accepting_detail: str | None
    not_accepting_until: datetime | None = Field(
        description="When a closed unit expects to accept again (null: until reopened by hand)"
    )
    admits_now: bool = Field(
        default=True,
        description="Whether the unit admits at the search's admitting_at (its admission hours)",
    )
    next_admission_at: datetime | None = Field(
        default=None,
        description="Only for a unit that does not admit at admitting_at: when it next admits "
        "(null: it admits then, or not within a year)",
    )
    source: PartnerSource | None = Field(
        default=None,
        description="null: a unit of this region; set: a partner region's unit (read-only copy)",
    )
    earlier_hold: Literal["declined", "expired"] | None = Field(
        default=None,
        description=(
            "Searches for a placement only: how its last hold on this unit ended (it was "
            "declined or expired), or null"
        ),
    )


class PartnerSource(Schema):
    """Where a partner region's unit comes from and how old its figures are (docs/federation.md)."""

    partner_id: uuid.UUID
    region: str = Field(description="The partner's label (its region name)")
    reported_at: datetime | None = Field(description="When the partner's provider reported")
    fetched_at: datetime = Field(description="When this instance last read the figures")
    reachable: bool = Field(description="false: the partner does not answer; the figures are aged")
    read_only: bool = True


class PartnerState(Schema):
    id: uuid.UUID
    label: str
    reachable: bool
    last_fetch_at: datetime | None = Field(description="The last successful pull (null: never)")
    last_error: str | None


class AvailabilityResult(Schema):
    items: list[AvailabilityHit]
    count: int
    escalated: bool
    searched_subregions: list[str]
    generated_at: datetime
    partners: list[PartnerState] = Field(
        default_factory=list,
        description="With include_partners: every partner region searched and whether it answers",
    )


class UnitStatusIn(Schema):
    """Open a unit to admissions (``accepting: true``) or close it for a while."""

    accepting: StrictBool = Field(
        description="false closes the unit to admissions; true reopens it"
    )
    reason: NotAcceptingReason | None = Field(
        default=None, description="Why it is closed; required when accepting is false"
    )
    detail: ShortText | None = Field(
        default=None, description="Free text for the triagist; required when reason is 'other'"
    )
    until: UtcDateTime | None = Field(
        default=None,
        description=(
            "When the unit is expected to accept again; it reopens by itself then. Omitted: "
            "closed until reopened by hand"
        ),
    )


class UnitStatusRead(Schema):
    id: int
    unit_id: uuid.UUID
    accepting: bool = Field(description="Whether the change opened or closed the unit")
    reason: NotAcceptingReason | None
    detail: str | None
    until: datetime | None
    changed_at: datetime


class UnitStatusCurrent(Schema):
    """A unit's admission status now: closed by its latest change unless ``until`` has passed."""

    unit_id: uuid.UUID
    accepting: bool
    not_accepting_reason: NotAcceptingReason | None
    not_accepting_detail: str | None
    not_accepting_until: datetime | None
    changed_at: datetime | None


class UnitStateRead(Schema):
    """A unit's current capacity as its provider sees it on the capacity page."""

    unit_id: uuid.UUID
    name: str
    care_type: CareType
    location_name: str
    staffed_capacity: int
    free: int | None = Field(description="null until the first report")
    expected_free_24h: int | None
    held: int
    available: int | None
    reported_at: datetime | None
    reported_by_id: uuid.UUID | None = Field(description="the key or person that reported")
    source: str | None
    stale: bool


class AdmissionInterval(Schema):
    """Admission from ``opens`` to ``closes`` (local time in the Netherlands, HH:MM; ``closes``
    may be 24:00). Hours over midnight are two intervals, one on each day."""

    opens: Annotated[str, Field(pattern=r"^\d{2}:\d{2}$", examples=["08:00"])]
    closes: Annotated[str, Field(pattern=r"^\d{2}:\d{2}$", examples=["17:00"])]


DayHours = Annotated[list[AdmissionInterval], Field(max_length=8)]


class AdmissionException(Schema):
    date: dt.date
    hours: DayHours = Field(description="Empty: closed that whole day")


class AdmissionHoursIn(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "always_open": False,
                    "weekly": {
                        d: [{"opens": "08:00", "closes": "22:00"}]
                        for d in ("mon", "tue", "wed", "thu", "fri")
                    },
                    "exceptions": [{"date": "2026-12-25", "hours": []}],
                },
                {"always_open": True, "exceptions": []},
            ]
        }
    )

    always_open: StrictBool = Field(
        description="true: admits 24/7 (except on the exceptions' dates)"
    )
    weekly: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], DayHours] = Field(
        default_factory=dict, description="Hours per weekday; a day left out admits not at all"
    )
    exceptions: Annotated[list[AdmissionException], Field(max_length=400)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.always_open and any(self.weekly.values()):
            raise ValueError("weekly hours are only allowed with always_open false")
        dates = [e.date for e in self.exceptions]
        if len(set(dates)) != len(dates):
            raise ValueError("each exception date may appear once")
        return self


class AdmissionHoursRead(AdmissionHoursIn):
    unit_id: uuid.UUID
    admits_now: bool
    next_admission_at: datetime | None = Field(description="Now when it admits now; null: never")
