"""Registry endpoints: regions, subregions, organisations, locations, units."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.db import utcnow
from app.enums import CareType, OrganisationKind, Role
from app.etag import etag
from app.flows import region_import as importer
from app.flows import units as units_flow
from app.http.deps import SessionDep, SettingsDep, WriteDep, authenticated, requires
from app.registry import service as registry_service
from app.registry.regionfile import RegionFile
from app.registry.schemas import (
    ImportDiff,
    LocationCreate,
    LocationRead,
    LocationUpdate,
    OrganisationCreate,
    OrganisationRead,
    OrganisationUpdate,
    RegionRead,
    SubregionRead,
    UnitCreate,
    UnitRead,
    UnitUpdate,
)
from app.routers.common import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    CursorQ,
    IfMatchH,
    LimitQ,
    json_response,
    listing,
)
from app.schemas import Page

router = APIRouter(prefix="/v1", tags=["registry"])


@router.get(
    "/regions",
    response_model=list[RegionRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_regions(session: SessionDep) -> list[RegionRead]:
    """Regions with their subregions, escalation neighbours and municipalities."""
    return await registry_service.list_regions(session)


@router.post(
    "/regions/import",
    response_model=ImportDiff,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def import_region(
    body: RegionFile,
    write: WriteDep,
    settings: SettingsDep,
    dry_run: Annotated[
        bool, Query(description="Only answer what the import would change; write nothing")
    ] = False,
) -> Response:
    """Admin: create or update a region from a region file (docs/exchange.md) by its codes.
    What the region has and the file no longer lists is deactivated. The answer is the diff;
    an inconsistent file is refused with one error per problem, and nothing is written."""
    diff = await importer.import_region(
        write.session, write.principal, body, now=utcnow(), settings=settings, dry_run=dry_run
    )
    if dry_run:
        await write.session.rollback()
        return json_response(diff.model_dump(mode="json"))
    return await write.commit(diff)


@router.get(
    "/subregions",
    response_model=list[SubregionRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_subregions(session: SessionDep) -> list[SubregionRead]:
    return await registry_service.list_subregions(session)


@router.get(
    "/organisations",
    response_model=Page[OrganisationRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_organisations(
    session: SessionDep,
    cursor: CursorQ = None,
    limit: LimitQ = 50,
    kind: OrganisationKind | None = None,
    region_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> Page[OrganisationRead]:
    items, nxt = await registry_service.list_organisations(
        session, listing(cursor, limit), kind=kind, region_id=region_id, active=active
    )
    return Page(items=items, next_cursor=nxt)


@router.post(
    "/organisations",
    status_code=201,
    response_model=OrganisationRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def create_organisation(body: OrganisationCreate, write: WriteDep) -> Response:
    org = await registry_service.create_organisation(write.session, write.principal, body)
    write.headers["ETag"] = etag(org.version)
    return await write.commit(org, status_code=201)


@router.get(
    "/organisations/{organisation_id}",
    response_model=OrganisationRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_organisation(
    organisation_id: uuid.UUID, session: SessionDep, response: Response
) -> OrganisationRead:
    org = await registry_service.get_organisation(session, organisation_id)
    response.headers["ETag"] = etag(org.version)
    return org


@router.patch(
    "/organisations/{organisation_id}",
    response_model=OrganisationRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def update_organisation(
    organisation_id: uuid.UUID, body: OrganisationUpdate, write: WriteDep, if_match: IfMatchH = None
) -> Response:
    org = await registry_service.update_organisation(
        write.session, write.principal, organisation_id, body, if_match
    )
    write.headers["ETag"] = etag(org.version)
    return await write.commit(org)


@router.get(
    "/locations",
    response_model=Page[LocationRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_locations(
    session: SessionDep,
    cursor: CursorQ = None,
    limit: LimitQ = 50,
    organisation_id: uuid.UUID | None = None,
    subregion_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> Page[LocationRead]:
    items, nxt = await registry_service.list_locations(
        session,
        listing(cursor, limit),
        organisation_id=organisation_id,
        subregion_id=subregion_id,
        active=active,
    )
    return Page(items=items, next_cursor=nxt)


@router.post(
    "/locations",
    status_code=201,
    response_model=LocationRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER)],
)
async def create_location(body: LocationCreate, write: WriteDep) -> Response:
    loc = await registry_service.create_location(write.session, write.principal, body)
    write.headers["ETag"] = etag(loc.version)
    return await write.commit(loc, status_code=201)


@router.get(
    "/locations/{location_id}",
    response_model=LocationRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_location(
    location_id: uuid.UUID, session: SessionDep, response: Response
) -> LocationRead:
    loc = await registry_service.get_location(session, location_id)
    response.headers["ETag"] = etag(loc.version)
    return loc


@router.patch(
    "/locations/{location_id}",
    response_model=LocationRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER)],
)
async def update_location(
    location_id: uuid.UUID, body: LocationUpdate, write: WriteDep, if_match: IfMatchH = None
) -> Response:
    loc = await registry_service.update_location(
        write.session, write.principal, location_id, body, if_match
    )
    write.headers["ETag"] = etag(loc.version)
    return await write.commit(loc)


@router.get(
    "/units", response_model=Page[UnitRead], responses=READ_PROBLEMS, dependencies=[authenticated()]
)
async def list_units(
    session: SessionDep,
    cursor: CursorQ = None,
    limit: LimitQ = 50,
    location_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    subregion_id: uuid.UUID | None = None,
    care_type: CareType | None = None,
    active: bool | None = None,
) -> Page[UnitRead]:
    items, nxt = await registry_service.list_units(
        session,
        listing(cursor, limit),
        location_id=location_id,
        organisation_id=organisation_id,
        subregion_id=subregion_id,
        care_type=care_type,
        active=active,
    )
    return Page(items=items, next_cursor=nxt)


@router.post(
    "/units",
    status_code=201,
    response_model=UnitRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER)],
)
async def create_unit(body: UnitCreate, write: WriteDep) -> Response:
    unit = await units_flow.create_unit(write.session, write.principal, body)
    write.headers["ETag"] = etag(unit.version)
    return await write.commit(unit, status_code=201)


@router.get(
    "/units/{unit_id}",
    response_model=UnitRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_unit(unit_id: uuid.UUID, session: SessionDep, response: Response) -> UnitRead:
    unit = await registry_service.get_unit(session, unit_id)
    response.headers["ETag"] = etag(unit.version)
    return unit


@router.patch(
    "/units/{unit_id}",
    response_model=UnitRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.PROVIDER)],
)
async def update_unit(
    unit_id: uuid.UUID, body: UnitUpdate, write: WriteDep, if_match: IfMatchH = None
) -> Response:
    unit = await registry_service.update_unit(
        write.session, write.principal, unit_id, body, if_match
    )
    write.headers["ETag"] = etag(unit.version)
    return await write.commit(unit)
