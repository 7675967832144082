"""Capacity report and availability search bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from app.enums import CareType, Feature, SexPolicy, TargetGroup
from app.schemas import Count, Schema, UtcDateTime


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
    id: uuid.UUID
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
    available: int = Field(description="Free in the latest report minus held places (DESIGN §3)")
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
    earlier_hold: Literal["declined", "expired"] | None = Field(
        default=None,
        description=(
            "Searches for a placement only: how its last hold on this unit ended (it was "
            "declined or expired), or null"
        ),
    )


class AvailabilityResult(Schema):
    items: list[AvailabilityHit]
    count: int
    escalated: bool
    searched_subregions: list[str]
    generated_at: datetime


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
