"""Response bodies of the capacity snapshot (the LPZ-style feed)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.enums import CareType, Feature, SexPolicy, TargetGroup
from app.schemas import Schema


class SnapshotRow(Schema):
    unit_id: uuid.UUID
    external_id: str | None = Field(description="The unit's stable code from the region file")
    unit_name: str
    care_type: CareType
    organisation_id: uuid.UUID
    organisation_name: str
    organisation_ura: str | None
    organisation_agb: str | None
    organisation_kvk: str | None
    location_id: uuid.UUID
    location_name: str
    municipality: str
    postcode: str
    subregion: str = Field(description="Subregion code")
    staffed: int = Field(description="Staffed capacity")
    free: int = Field(description="Free in the latest report (0 before the first report)")
    held: int = Field(description="Places held for placements against the latest report")
    available: int = Field(description="free - held, never below 0")
    expected_free_24h: int | None
    accepting: bool = Field(description="False while the provider has closed the unit")
    not_accepting_reason: str | None = Field(
        description="staff_shortage, outbreak, renovation, full or other"
    )
    not_accepting_detail: str | None
    not_accepting_until: datetime | None
    reported_at: datetime | None = Field(description="null: the unit never reported")
    age_minutes: int | None
    stale: bool = Field(description="Older than its care type's freshness limit, or never reported")
    target_groups: list[TargetGroup] = Field(description="JSON only (not a CSV column)")
    features: list[Feature] = Field(description="JSON only (not a CSV column)")
    sex_policy: SexPolicy = Field(description="JSON only (not a CSV column)")
    address: str = Field(description="JSON only (not a CSV column)")
    phone: str | None = Field(description="JSON only (not a CSV column)")
    latitude: float = Field(description="JSON only (not a CSV column)")
    longitude: float = Field(description="JSON only (not a CSV column)")


class CapacitySnapshot(Schema):
    generated_at: datetime
    count: int
    items: list[SnapshotRow]
