"""Plain read-only views of registry and capacity rows that the pure exchange mappings take.

The service fills them from the database; the mappings (``snapshot``, ``fhir``) never do I/O.
External identifiers (URA, AGB, KvK, the region file's stable codes) are optional: they are
filled where the registry holds them and the mappings fall back to the uuid otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StatusView:
    """A unit's admission status: ``accepting`` false closes it until ``until`` (or by hand)."""

    accepting: bool
    reason: str | None = None
    detail: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class OrganisationView:
    id: uuid.UUID
    name: str
    kind: str
    active: bool
    updated_at: datetime
    ura: str | None = None
    agb: str | None = None
    kvk: str | None = None
    external_id: str | None = None
    cities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LocationView:
    id: uuid.UUID
    organisation_id: uuid.UUID
    organisation_name: str
    name: str
    address: str
    postcode: str
    municipality: str
    latitude: float
    longitude: float
    phone: str | None
    active: bool
    updated_at: datetime
    subregion_code: str
    external_id: str | None = None
    care_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UnitView:
    id: uuid.UUID
    name: str
    care_type: str
    target_groups: tuple[str, ...]
    features: tuple[str, ...]
    sex_policy: str
    staffed: int
    label: str | None
    active: bool
    updated_at: datetime
    location: LocationView
    organisation: OrganisationView
    free: int
    held: int
    expected_free_24h: int | None
    reported_at: datetime | None
    external_id: str | None = None
    status: StatusView | None = None

    @property
    def available(self) -> int:
        """Free in the latest report minus held places, never below zero."""
        return max(0, self.free - self.held)


def is_accepting(status: StatusView | None, now: datetime) -> bool:
    """A unit accepts unless a status closes it and its ``until`` (if any) has not passed."""
    if status is None or status.accepting:
        return True
    return status.until is not None and status.until <= now
