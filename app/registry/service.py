"""Registry service: regions and subregions (read), organisations, locations and units (CRUD).

Permission rule (docs/domain.md §14): admins manage everything; a provider key manages the
locations and
units of its own organisation; every key may read the registry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.enums import (
    CareType,
    Feature,
    OrganisationKind,
    Role,
    SexPolicy,
    TargetGroup,
    codes_of,
    mask_of,
)
from app.errors import InvalidInput, NotFound
from app.etag import check_if_match
from app.pagination import fetch_page
from app.principal import Principal
from app.registry.models import (
    Location,
    Municipality,
    Organisation,
    Region,
    RegionNorm,
    Subregion,
    SubregionNeighbour,
    Unit,
)
from app.registry.schemas import (
    LocationCreate,
    LocationRead,
    LocationUpdate,
    NeighbourRead,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    RegionRead,
    SubregionRead,
    UnitCreate,
    UnitRead,
    UnitUpdate,
)


@dataclass(frozen=True)
class Listing:
    cursor: str | None = None
    limit: int = 50


# --- regions and subregions -------------------------------------------------------------------


async def list_regions(session: AsyncSession) -> list[RegionRead]:
    regions = (await session.scalars(select(Region).order_by(Region.code))).all()
    subregions = await list_subregions(session)
    norms: dict[uuid.UUID, dict[str, int]] = {}
    for n in (await session.scalars(select(RegionNorm).order_by(RegionNorm.care_type))).all():
        norms.setdefault(n.region_id, {})[n.care_type] = n.hours
    return [
        RegionRead(
            id=r.id,
            code=r.code,
            name=r.name,
            subregions=[s for s in subregions if s.region_id == r.id],
            norm_hours=norms.get(r.id, {}),
        )
        for r in regions
    ]


async def list_subregions(session: AsyncSession) -> list[SubregionRead]:
    subs = (await session.scalars(select(Subregion).order_by(Subregion.code))).all()
    by_id = {s.id: s for s in subs}
    neighbours = (
        await session.scalars(select(SubregionNeighbour).order_by(SubregionNeighbour.rank))
    ).all()
    municipalities = (
        await session.scalars(
            select(Municipality).where(Municipality.active).order_by(Municipality.name)
        )
    ).all()
    return [
        SubregionRead(
            id=s.id,
            region_id=s.region_id,
            code=s.code,
            name=s.name,
            neighbours=[
                NeighbourRead(
                    id=n.neighbour_id,
                    code=by_id[n.neighbour_id].code,
                    name=by_id[n.neighbour_id].name,
                    rank=n.rank,
                )
                for n in neighbours
                if n.subregion_id == s.id
            ],
            municipalities=[m.name for m in municipalities if m.subregion_id == s.id],
        )
        for s in subs
    ]


def subregion_is(ref: str) -> ColumnElement[bool]:
    """The condition picking the subregion a client names by id (UUID text) or code
    (``leiden``): the one reading of a subregion reference, for sessions and connections."""
    try:
        return Subregion.id == uuid.UUID(ref)
    except ValueError:
        return Subregion.code == ref


async def find_subregion(session: AsyncSession, ref: str) -> Subregion | None:
    """The subregion ``ref`` (id or code) names, if any."""
    return await session.scalar(select(Subregion).where(subregion_is(ref)))


async def resolve_subregion(
    session: AsyncSession, ref: str, *, pointer: str = "query:subregion"
) -> Subregion:
    """The subregion ``ref`` (id or code) names; else a 422 naming ``pointer``."""
    found = await find_subregion(session, ref)
    if found is None:
        raise InvalidInput(
            f"Unknown subregion {ref!r}.",
            errors=[{"pointer": pointer, "detail": "no such subregion (id or code)"}],
        )
    return found


# --- organisations ----------------------------------------------------------------------------


def organisation_read(org: Organisation) -> OrganisationRead:
    return OrganisationRead.model_validate(org, from_attributes=True)


async def _organisation(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    org = await session.get(Organisation, organisation_id)
    if org is None:
        raise NotFound(f"No organisation {organisation_id}.")
    return org


async def get_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> OrganisationRead:
    return organisation_read(await _organisation(session, organisation_id))


async def list_organisations(
    session: AsyncSession,
    listing: Listing,
    *,
    kind: OrganisationKind | None = None,
    region_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> tuple[list[OrganisationRead], str | None]:
    stmt: Select[Any] = select(Organisation)
    if kind is not None:
        stmt = stmt.where(Organisation.kind == kind.value)
    if region_id is not None:
        stmt = stmt.where(Organisation.region_id == region_id)
    if active is not None:
        stmt = stmt.where(Organisation.active == active)
    rows, nxt = await fetch_page(session, stmt, Organisation.id, listing.cursor, listing.limit)
    return [organisation_read(r[0]) for r in rows], nxt


async def create_organisation(
    session: AsyncSession, principal: Principal, body: OrganisationCreate
) -> OrganisationRead:
    principal.require(Role.ADMIN)
    if await session.get(Region, body.region_id) is None:
        raise InvalidInput(
            "Unknown region.", errors=[{"pointer": "#/region_id", "detail": "no such region"}]
        )
    org = Organisation(
        name=body.name, kind=body.kind.value, region_id=body.region_id, agb_code=body.agb_code
    )
    session.add(org)
    await session.flush()
    return organisation_read(org)


def _apply(target: object, changes: dict[str, Any], non_nullable: set[str]) -> None:
    for name, value in changes.items():
        if value is None and name in non_nullable:
            raise InvalidInput(
                f"{name} cannot be null.", errors=[{"pointer": f"#/{name}", "detail": "not null"}]
            )
        setattr(target, name, value)
    target.updated_at = utcnow()  # type: ignore[attr-defined]


async def update_organisation(
    session: AsyncSession,
    principal: Principal,
    organisation_id: uuid.UUID,
    body: OrganisationUpdate,
    if_match: str | None,
) -> OrganisationRead:
    principal.require(Role.ADMIN)
    org = await _organisation(session, organisation_id)
    check_if_match(if_match, org.version)
    _apply(org, body.model_dump(exclude_unset=True), {"name", "active"})
    await session.flush()
    return organisation_read(org)


# --- locations --------------------------------------------------------------------------------


def location_read(loc: Location) -> LocationRead:
    return LocationRead.model_validate(loc, from_attributes=True)


async def _location(session: AsyncSession, location_id: uuid.UUID) -> Location:
    loc = await session.get(Location, location_id)
    if loc is None:
        raise NotFound(f"No location {location_id}.")
    return loc


async def _subregion_of_municipality(session: AsyncSession, municipality: str) -> uuid.UUID:
    found = await session.scalar(
        select(Municipality.subregion_id).where(
            Municipality.name == municipality, Municipality.active
        )
    )
    if found is None:
        raise InvalidInput(
            f"Municipality {municipality!r} is not mapped to a subregion.",
            errors=[{"pointer": "#/municipality", "detail": "unknown municipality"}],
        )
    return found


async def get_location(session: AsyncSession, location_id: uuid.UUID) -> LocationRead:
    return location_read(await _location(session, location_id))


async def list_locations(
    session: AsyncSession,
    listing: Listing,
    *,
    organisation_id: uuid.UUID | None = None,
    subregion_id: uuid.UUID | None = None,
    municipality: str | None = None,
    active: bool | None = None,
) -> tuple[list[LocationRead], str | None]:
    stmt: Select[Any] = select(Location)
    if organisation_id is not None:
        stmt = stmt.where(Location.organisation_id == organisation_id)
    if subregion_id is not None:
        stmt = stmt.where(Location.subregion_id == subregion_id)
    if municipality is not None:
        stmt = stmt.where(Location.municipality == municipality)
    if active is not None:
        stmt = stmt.where(Location.active == active)
    rows, nxt = await fetch_page(session, stmt, Location.id, listing.cursor, listing.limit)
    return [location_read(r[0]) for r in rows], nxt


async def create_location(
    session: AsyncSession, principal: Principal, body: LocationCreate
) -> LocationRead:
    principal.require(Role.PROVIDER)
    principal.require_organisation(body.organisation_id, "locations")
    await _organisation(session, body.organisation_id)
    data = body.model_dump()
    loc = Location(
        **data, subregion_id=await _subregion_of_municipality(session, body.municipality)
    )
    session.add(loc)
    await session.flush()
    return location_read(loc)


async def update_location(
    session: AsyncSession,
    principal: Principal,
    location_id: uuid.UUID,
    body: LocationUpdate,
    if_match: str | None,
) -> LocationRead:
    principal.require(Role.PROVIDER)
    loc = await _location(session, location_id)
    principal.require_organisation(loc.organisation_id, "locations")
    check_if_match(if_match, loc.version)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("municipality") is not None:
        loc.subregion_id = await _subregion_of_municipality(session, changes["municipality"])
    _apply(
        loc,
        changes,
        {"name", "address", "postcode", "municipality", "latitude", "longitude", "active"},
    )
    await session.flush()
    return location_read(loc)


# --- units ------------------------------------------------------------------------------------


def unit_read(unit: Unit, location: Location) -> UnitRead:
    return UnitRead(
        id=unit.id,
        location_id=unit.location_id,
        organisation_id=location.organisation_id,
        subregion_id=location.subregion_id,
        name=unit.name,
        care_type=CareType(unit.care_type),
        target_groups=codes_of(unit.target_group_mask, TargetGroup),
        sex_policy=SexPolicy(unit.sex_policy),
        features=codes_of(unit.feature_mask, Feature),
        staffed_capacity=unit.staffed_capacity,
        label=unit.label,
        external_id=unit.external_id,
        active=unit.active,
        version=unit.version,
        created_at=unit.created_at,
        updated_at=unit.updated_at,
    )


async def unit_with_location(session: AsyncSession, unit_id: uuid.UUID) -> tuple[Unit, Location]:
    row = (
        await session.execute(
            select(Unit, Location)
            .join(Location, Location.id == Unit.location_id)
            .where(Unit.id == unit_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"No unit {unit_id}.")
    return row[0], row[1]


async def get_unit(session: AsyncSession, unit_id: uuid.UUID) -> UnitRead:
    return unit_read(*await unit_with_location(session, unit_id))


async def list_units(
    session: AsyncSession,
    listing: Listing,
    *,
    location_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    subregion_id: uuid.UUID | None = None,
    care_type: CareType | None = None,
    active: bool | None = None,
) -> tuple[list[UnitRead], str | None]:
    stmt: Select[Any] = select(Unit, Location)  # type: ignore[assignment]
    stmt = stmt.join(Location, Location.id == Unit.location_id)
    if location_id is not None:
        stmt = stmt.where(Unit.location_id == location_id)
    if organisation_id is not None:
        stmt = stmt.where(Location.organisation_id == organisation_id)
    if subregion_id is not None:
        stmt = stmt.where(Location.subregion_id == subregion_id)
    if care_type is not None:
        stmt = stmt.where(Unit.care_type == care_type.value)
    if active is not None:
        stmt = stmt.where(Unit.active == active)
    rows, nxt = await fetch_page(session, stmt, Unit.id, listing.cursor, listing.limit)
    return [unit_read(r[0], r[1]) for r in rows], nxt


async def create_unit(session: AsyncSession, principal: Principal, body: UnitCreate) -> UnitRead:
    principal.require(Role.PROVIDER)
    location = await _location(session, body.location_id)
    principal.require_organisation(location.organisation_id, "units")
    unit = Unit(
        location_id=body.location_id,
        name=body.name,
        care_type=body.care_type.value,
        target_group_mask=mask_of(body.target_groups, TargetGroup),
        feature_mask=mask_of(body.features, Feature),
        sex_policy=body.sex_policy.value,
        staffed_capacity=body.staffed_capacity,
        label=body.label,
    )
    session.add(unit)
    await session.flush()
    # Its current-capacity row is added by the caller (app.flows.units.create_unit).
    return unit_read(unit, location)


async def update_unit(
    session: AsyncSession,
    principal: Principal,
    unit_id: uuid.UUID,
    body: UnitUpdate,
    if_match: str | None,
) -> UnitRead:
    principal.require(Role.PROVIDER)
    unit, location = await unit_with_location(session, unit_id)
    principal.require_organisation(location.organisation_id, "units")
    check_if_match(if_match, unit.version)
    changes = body.model_dump(exclude_unset=True)
    if "target_groups" in changes and changes["target_groups"] is not None:
        changes["target_group_mask"] = mask_of(changes.pop("target_groups"), TargetGroup)
    if "features" in changes and changes["features"] is not None:
        changes["feature_mask"] = mask_of(changes.pop("features"), Feature)
    if changes.get("sex_policy") is not None:
        changes["sex_policy"] = changes["sex_policy"].value
    _apply(
        unit,
        changes,
        {"name", "target_groups", "features", "sex_policy", "staffed_capacity", "active"},
    )
    await session.flush()
    return unit_read(unit, location)
