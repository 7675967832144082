"""Registry request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictBool, model_validator

from app.enums import CareType, Feature, OrganisationKind, SexPolicy, TargetGroup
from app.schemas import Count, Latitude, Longitude, Name, Postcode, Schema, ShortText

AgbCode = Annotated[str, Field(pattern=r"^[0-9]{8}$", description="AGB code (8 digits)")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{6,25}$")]
Capacity = Annotated[Count, Field(le=10_000)]


class NeighbourRead(Schema):
    id: uuid.UUID
    code: str
    name: str
    rank: int = Field(description="Position in the escalation order, 1 = first")


class SubregionRead(Schema):
    id: uuid.UUID
    region_id: uuid.UUID
    code: str
    name: str
    neighbours: list[NeighbourRead]
    municipalities: list[str]


class RegionRead(Schema):
    id: uuid.UUID
    code: str
    name: str
    subregions: list[SubregionRead]
    norm_hours: dict[str, int] = Field(
        default_factory=dict,
        description="The region's own between-the-cracks norm per care type, in hours (set by "
        "the region file); care types not listed take the default norm",
    )


class OrganisationCreate(Schema):
    name: Name
    kind: OrganisationKind
    region_id: uuid.UUID
    agb_code: AgbCode | None = None


class OrganisationUpdate(Schema):
    name: Name | None = None
    agb_code: AgbCode | None = None
    active: StrictBool | None = None


class OrganisationRead(Schema):
    id: uuid.UUID
    region_id: uuid.UUID
    name: str
    kind: OrganisationKind
    agb_code: str | None
    ura_number: str | None = None
    kvk_number: str | None = None
    external_id: str | None = Field(default=None, description="Code in the region file")
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class LocationCreate(Schema):
    organisation_id: uuid.UUID
    name: Name
    address: Name
    postcode: Postcode
    municipality: Name = Field(description="Decides the subregion through the municipality mapping")
    latitude: Latitude
    longitude: Longitude
    phone: Phone | None = None


class LocationUpdate(Schema):
    name: Name | None = None
    address: Name | None = None
    postcode: Postcode | None = None
    municipality: Name | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    phone: Phone | None = None
    active: StrictBool | None = None


class LocationRead(Schema):
    id: uuid.UUID
    organisation_id: uuid.UUID
    subregion_id: uuid.UUID
    name: str
    address: str
    postcode: str
    municipality: str
    latitude: float
    longitude: float
    phone: str | None
    external_id: str | None = Field(default=None, description="Code in the region file")
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


# The unit's label column holds 200 characters: longer text is refused here, not cut off there.
UnitLabel = Annotated[ShortText, Field(max_length=200)]


class UnitCreate(Schema):
    location_id: uuid.UUID
    name: Name
    care_type: CareType
    target_groups: list[TargetGroup] = Field(min_length=1, max_length=len(TargetGroup))
    sex_policy: SexPolicy = SexPolicy.ANY
    features: list[Feature] = Field(default_factory=list, max_length=len(Feature))
    staffed_capacity: Capacity = Field(description="Staffed places (beds; intake slots per day)")
    label: UnitLabel | None = Field(default=None, description="Free text; required for local_other")

    @model_validator(mode="after")
    def _label_for_local_other(self) -> UnitCreate:
        if self.care_type is CareType.LOCAL_OTHER and not self.label:
            raise ValueError("label is required for care_type local_other")
        return self


class UnitUpdate(Schema):
    name: Name | None = None
    target_groups: list[TargetGroup] | None = Field(default=None, min_length=1)
    sex_policy: SexPolicy | None = None
    features: list[Feature] | None = None
    staffed_capacity: Capacity | None = None
    label: UnitLabel | None = None
    active: StrictBool | None = None


class UnitRead(Schema):
    id: uuid.UUID
    location_id: uuid.UUID
    organisation_id: uuid.UUID
    subregion_id: uuid.UUID
    name: str
    care_type: CareType
    target_groups: list[TargetGroup]
    sex_policy: SexPolicy
    features: list[Feature]
    staffed_capacity: int
    label: str | None
    external_id: str | None = Field(default=None, description="Code in the region file")
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ImportChange(Schema):
    code: str = Field(description="The item's identifier in the region file")
    fields: list[str] = Field(description="The fields the import changes")


class ImportKindDiff(Schema):
    """What an import does to one kind of item."""

    created: list[str] = Field(description="Codes of the items the import creates")
    updated: list[ImportChange]
    deactivated: list[str] = Field(
        description="Items of the region the file no longer lists: deactivated, never deleted"
    )
    unchanged: int
    counts: dict[str, int] = Field(
        description="created, updated, deactivated and unchanged as numbers"
    )


class ImportDiff(Schema):
    """The difference between the database and a region file: what the import did (or, in a
    dry run, would do). A second import of the same file changes nothing."""

    region: str
    dry_run: bool
    changes: int = Field(description="Created + updated + deactivated items of every kind")
    regions: ImportKindDiff
    subregions: ImportKindDiff
    municipalities: ImportKindDiff
    organisations: ImportKindDiff
    locations: ImportKindDiff
    units: ImportKindDiff
