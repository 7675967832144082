"""Exchange service: the capacity snapshot (JSON/CSV), CSV capacity uploads, FHIR reads, searches
and capacity writes. Mapping is in the pure modules ``snapshot`` and ``fhir``; capacity writes go
through ``capacity.service`` under the same rules as the REST API.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.capacity import service as capacity_service
from app.capacity.models import UnitCapacity
from app.capacity.schemas import CapacityReportIn, CapacityReportRead
from app.config import Settings
from app.enums import CareType, Feature, Role, TargetGroup, codes_of
from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from app.exchange import fhir
from app.exchange import snapshot as snap
from app.exchange.views import LocationView, OrganisationView, StatusView, UnitView
from app.principal import Principal
from app.registry.models import Location, Organisation, Subregion, Unit
from app.registry.service import resolve_subregion

# --- views from the registry ------------------------------------------------------------------


def _external(row: object, *names: str) -> str | None:
    """An external identifier column where the registry has one (a region file's stable code,
    URA, KvK); ``None`` where the column does not exist (yet) or is empty."""
    for name in names:
        value = getattr(row, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _organisation_view(org: Organisation, cities: Iterable[str] = ()) -> OrganisationView:
    return OrganisationView(
        id=org.id,
        name=org.name,
        kind=org.kind,
        active=org.active,
        updated_at=org.updated_at,
        ura=_external(org, "ura", "ura_number", "ura_code"),
        agb=_external(org, "agb_code", "agb"),
        kvk=_external(org, "kvk", "kvk_number"),
        external_id=_external(org, "external_id", "code"),
        cities=tuple(sorted(set(cities))),
    )


def _location_view(
    loc: Location, org: Organisation, subregion_code: str, care_types: Iterable[str] = ()
) -> LocationView:
    return LocationView(
        id=loc.id,
        organisation_id=loc.organisation_id,
        organisation_name=org.name,
        name=loc.name,
        address=loc.address,
        postcode=loc.postcode,
        municipality=loc.municipality,
        latitude=loc.latitude,
        longitude=loc.longitude,
        phone=loc.phone,
        active=loc.active,
        updated_at=loc.updated_at,
        subregion_code=subregion_code,
        external_id=_external(loc, "external_id", "code"),
        care_types=tuple(sorted(set(care_types))),
    )


def status_view(state: UnitCapacity | None) -> StatusView | None:
    """The unit's admission status as ``PUT /v1/units/{id}/status`` last set it (kept on its
    capacity row); ``None`` when it was never closed. Whether a closure has ended by its
    ``until`` is decided at read time (``views.is_accepting``)."""
    if state is None or state.closed_reason is None:
        return None
    return StatusView(
        accepting=False,
        reason=state.closed_reason,
        detail=state.closed_detail,
        since=state.status_changed_at,
        until=state.closed_until,
    )


@dataclass(frozen=True)
class UnitFilter:
    unit_ids: Sequence[uuid.UUID] | None = None
    location_ids: Sequence[uuid.UUID] | None = None
    organisation_id: uuid.UUID | None = None
    care_types: Sequence[str] = ()
    subregion_id: uuid.UUID | None = None
    active_only: bool = False


async def unit_views(session: AsyncSession, f: UnitFilter) -> list[UnitView]:
    """Units with their location, organisation, current capacity and status, in a stable order
    (organisation, location, unit name, id)."""
    stmt: Select[Any] = (
        select(Unit, Location, Organisation, Subregion.code, UnitCapacity)  # type: ignore[assignment]
        .join(Location, Location.id == Unit.location_id)
        .join(Organisation, Organisation.id == Location.organisation_id)
        .join(Subregion, Subregion.id == Location.subregion_id)
        .outerjoin(UnitCapacity, UnitCapacity.unit_id == Unit.id)
    )
    if f.unit_ids is not None:
        stmt = stmt.where(Unit.id.in_(f.unit_ids))
    if f.location_ids is not None:
        stmt = stmt.where(Unit.location_id.in_(f.location_ids))
    if f.organisation_id is not None:
        stmt = stmt.where(Location.organisation_id == f.organisation_id)
    if f.care_types:
        stmt = stmt.where(Unit.care_type.in_(f.care_types))
    if f.subregion_id is not None:
        stmt = stmt.where(Location.subregion_id == f.subregion_id)
    if f.active_only:
        stmt = stmt.where(Unit.active, Location.active, Organisation.active)
    stmt = stmt.order_by(Organisation.name, Location.name, Unit.name, Unit.id)
    rows = (await session.execute(stmt)).all()
    out = []
    for unit, loc, org, sub_code, state in rows:
        out.append(
            UnitView(
                id=unit.id,
                name=unit.name,
                care_type=unit.care_type,
                target_groups=tuple(codes_of(unit.target_group_mask, TargetGroup)),
                features=tuple(codes_of(unit.feature_mask, Feature)),
                sex_policy=unit.sex_policy,
                staffed=unit.staffed_capacity,
                label=unit.label,
                active=unit.active,
                updated_at=unit.updated_at,
                location=_location_view(loc, org, sub_code),
                organisation=_organisation_view(org),
                free=0 if state is None else state.free,
                held=0 if state is None else state.held,
                expected_free_24h=None if state is None else state.expected_free_24h,
                reported_at=None if state is None else state.reported_at,
                external_id=_external(unit, "external_id", "code"),
                status=status_view(state),
            )
        )
    return out


# --- snapshot and CSV ---------------------------------------------------------------------------


async def capacity_snapshot(
    session: AsyncSession,
    principal: Principal,
    *,
    care_types: Sequence[CareType] = (),
    organisation_id: uuid.UUID | None = None,
    subregion: str | None = None,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    """Every active unit's current availability, status and freshness (the LPZ-style feed).
    Aggregates only, no patient data: every key may read it."""
    subregion_id = None if subregion is None else (await resolve_subregion(session, subregion)).id
    units = await unit_views(
        session,
        UnitFilter(
            organisation_id=organisation_id,
            care_types=[c.value for c in care_types],
            subregion_id=subregion_id,
            active_only=True,
        ),
    )
    rows = snap.snapshot_rows(units, now=now, stale_after=settings.stale_after)
    return {"generated_at": now, "count": len(rows), "items": rows}


async def upload_csv(
    session: AsyncSession, principal: Principal, text: str, *, now: datetime, settings: Settings
) -> list[CapacityReportRead]:
    """Capacity reports from CSV, all-or-nothing; every bad line and column is named."""
    principal.require(Role.PROVIDER)
    lines, errors = snap.parse_upload(text)
    externals = sorted({r.external_id for r in lines if r.external_id is not None})
    by_external = await _units_by_external_id(session, externals)
    items = []
    for r in lines:
        unit_id = r.unit_id if r.unit_id is not None else by_external.get(r.external_id or "")
        if unit_id is None:
            errors.append({"pointer": f"{r.pointer}/external_id", "detail": "unknown unit"})
            continue
        items.append(
            capacity_service.BulkItem(
                pointer=r.pointer,
                unit_id=unit_id,
                report=CapacityReportIn(
                    free=r.free, expected_free_24h=r.expected_free_24h, reported_at=r.reported_at
                ),
                unit_field=r.unit_field,
            )
        )
    if errors:
        raise InvalidInput(
            f"{len(errors)} problem(s) in the CSV; nothing was written: "
            + "; ".join(f"{e['pointer']} {e['detail']}" for e in errors[:20])
            + ("; ..." if len(errors) > 20 else ""),
            errors=errors,
        )
    return await capacity_service.report_many(
        session, principal, items, now=now, settings=settings, source="csv"
    )


async def _units_by_external_id(
    session: AsyncSession, values: Sequence[str]
) -> dict[str, uuid.UUID]:
    column = getattr(Unit, "external_id", None)
    if column is None or not values:
        return {}
    rows = await session.execute(select(column, Unit.id).where(column.in_(values)))
    return {str(ext): uuid.UUID(str(unit_id)) for ext, unit_id in rows}


# --- FHIR reads and searches ------------------------------------------------------------------


@dataclass(frozen=True)
class SearchRequest:
    """A FHIR search as the router received it: ``params`` in order, repeated names kept."""

    resource_type: str
    params: Sequence[tuple[str, str]]
    base_url: str  # e.g. http://host/fhir


_MAX_COUNT = 500
_DEFAULT_COUNT = 50


def _int_param(values: list[str], name: str, default: int, high: int) -> int:
    if not values:
        return default
    raw = values[-1]
    if not raw.isdigit() or int(raw) > high:
        raise InvalidInput(
            f"{name}={raw!r}: must be a whole number from 0 to {high}.",
            errors=[{"pointer": f"query:{name}", "detail": f"0 to {high}"}],
        )
    return int(raw)


def _date_params(values: list[str], name: str) -> list[fhir.DateParam]:
    try:
        return [fhir.parse_date_param(v) for v in values]
    except ValueError as exc:
        raise InvalidInput(
            str(exc), errors=[{"pointer": f"query:{name}", "detail": str(exc)}]
        ) from None


def _bool_param(values: list[str], name: str) -> bool | None:
    if not values:
        return None
    if values[-1] not in ("true", "false"):
        raise InvalidInput(
            f"{name} must be true or false.",
            errors=[{"pointer": f"query:{name}", "detail": "true or false"}],
        )
    return values[-1] == "true"


Matcher = Callable[[Any], bool]


def _filters(
    grouped: Mapping[str, list[str]], supported: Mapping[str, Callable[[str], Matcher]]
) -> list[Matcher]:
    out = []
    for name, values in grouped.items():
        make = supported.get(name)
        if make is not None:
            out += [make(v) for v in values]
    return out


@dataclass
class _Plan:
    """What a search over one resource type needs: the candidates and how to read them."""

    items: Sequence[Any]
    supported: dict[str, Callable[[str], Matcher]]
    updated_of: Callable[[Any], datetime | None]
    to_resource: Callable[[Any], dict[str, Any]]
    id_of: Callable[[Any], str]
    booleans: dict[str, Callable[[Any], bool]]


def _token(pairs: Callable[[Any], list[tuple[str | None, str]]]) -> Callable[[str], Matcher]:
    def make(raw: str) -> Matcher:
        return lambda item: fhir.token_matches(raw, pairs(item))

    return make


def _text(value: Callable[[Any], Iterable[str]]) -> Callable[[str], Matcher]:
    def make(raw: str) -> Matcher:
        return lambda item: any(fhir.string_matches(raw, v) for v in value(item))

    return make


def _ref(resource_type: str, value: Callable[[Any], uuid.UUID]) -> Callable[[str], Matcher]:
    def make(raw: str) -> Matcher:
        return lambda item: fhir.reference_id(raw, resource_type) == str(value(item))

    return make


def _pairs(ids: Callable[[Any], list[tuple[str, str]]]) -> Callable[[Any], list[Any]]:
    return lambda item: list(ids(item))


async def _plan(session: AsyncSession, kind: str, now: datetime) -> _Plan:
    if kind == "Organization":
        return _Plan(
            items=await _organisation_views(session),
            supported={
                "identifier": _token(_pairs(fhir.organisation_identifiers)),
                "type": _token(lambda o: [(fhir.ORGANISATION_KIND_SYSTEM, o.kind)]),
                "name": _text(lambda o: [o.name]),
                "address-city": _text(lambda o: o.cities),
            },
            updated_of=lambda o: o.updated_at,
            to_resource=fhir.organization,
            id_of=lambda o: str(o.id),
            booleans={"active": lambda o: o.active},
        )
    if kind == "Location":
        return _Plan(
            items=await _location_views(session),
            supported={
                "identifier": _token(_pairs(fhir.location_identifiers)),
                "type": _token(lambda loc: [(fhir.CARE_TYPE_SYSTEM, c) for c in loc.care_types]),
                "name": _text(lambda loc: [loc.name]),
                "address-city": _text(lambda loc: [loc.municipality]),
                "address-postalcode": _text(lambda loc: [loc.postcode]),
                "organization": _ref("Organization", lambda loc: loc.organisation_id),
            },
            updated_of=lambda loc: loc.updated_at,
            to_resource=fhir.location,
            id_of=lambda loc: str(loc.id),
            booleans={},
        )
    if kind == "HealthcareService":
        care_type = _token(lambda u: [(fhir.CARE_TYPE_SYSTEM, u.care_type)])
        return _Plan(
            items=await unit_views(session, UnitFilter()),
            supported={
                "identifier": _token(_pairs(fhir.unit_identifiers)),
                "type": care_type,
                "service-type": care_type,
                "characteristic": _token(
                    lambda u: (
                        [(fhir.TARGET_GROUP_SYSTEM, g) for g in u.target_groups]
                        + [(fhir.FEATURE_SYSTEM, f) for f in u.features]
                        + [(fhir.SEX_POLICY_SYSTEM, u.sex_policy)]
                    )
                ),
                "name": _text(lambda u: [u.name]),
                "address-city": _text(lambda u: [u.location.municipality]),
                "organization": _ref("Organization", lambda u: u.organisation.id),
                "location": _ref("Location", lambda u: u.location.id),
            },
            updated_of=lambda u: u.updated_at,
            to_resource=lambda u: fhir.healthcare_service(u, now=now),
            id_of=lambda u: str(u.id),
            booleans={"active": lambda u: u.active},
        )
    if kind == "MeasureReport":
        return _Plan(
            items=await _report_groups(session, UnitFilter(active_only=True)),
            supported={
                "subject": _ref("Location", lambda g: g[0].location.id),
                "measure": lambda raw: lambda g: raw.endswith(f"Measure/{fhir.MEASURE_ID}"),
            },
            updated_of=_latest,
            to_resource=fhir.measure_report,
            id_of=lambda g: fhir.measure_report_id(g[0].location.id, g[0].care_type),
            booleans={},
        )
    raise NotFound(f"{kind} is not searchable here; see /fhir/metadata.")


def _equals(attribute: Callable[[Any], bool], wanted: bool) -> Matcher:
    return lambda item: attribute(item) == wanted


def _dated(value: Callable[[Any], datetime | None], param: fhir.DateParam) -> Matcher:
    return lambda item: param.matches(value(item))


async def search(
    session: AsyncSession, principal: Principal, req: SearchRequest, *, now: datetime
) -> dict[str, Any]:
    """A ``searchset`` Bundle: matches in a stable order, ``total``, ``self`` and ``next`` links.
    Unknown parameters are ignored (FHIR's lenient handling) and left out of the links."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for name, value in req.params:
        grouped[name].append(value)
    count = _int_param(grouped.get("_count", []), "_count", _DEFAULT_COUNT, _MAX_COUNT)
    offset = _int_param(grouped.get("_offset", []), "_offset", 0, 10_000_000)
    updated = _date_params(grouped.get("_lastUpdated", []), "_lastUpdated")
    period = (
        _date_params(grouped.get("period", []), "period")
        if req.resource_type == "MeasureReport"
        else []
    )
    plan = await _plan(session, req.resource_type, now)
    matchers = _filters(grouped, plan.supported)
    for name, attribute in plan.booleans.items():
        wanted = _bool_param(grouped.get(name, []), name)
        if wanted is not None:
            matchers.append(_equals(attribute, wanted))
    ids = grouped.get("_id")
    if ids:
        wanted_ids = {v for raw in ids for v in raw.split(",")}
        matchers.append(lambda item: plan.id_of(item) in wanted_ids)
    matchers += [_dated(plan.updated_of, p) for p in [*updated, *period]]
    hits = [item for item in plan.items if all(m(item) for m in matchers)]
    page = hits[offset : offset + count]
    used = {"_lastUpdated", "_id", *plan.supported, *plan.booleans}
    if period:
        used.add("period")
    kept = [(n, v) for n, v in req.params if n in used]
    base = f"{req.base_url}/{req.resource_type}"

    def link(at: int) -> str:
        return f"{base}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(at))])}"

    entries = [(f"{base}/{plan.id_of(item)}", plan.to_resource(item)) for item in page]
    return fhir.searchset(
        entries,
        total=len(hits),
        self_url=link(offset),
        next_url=link(offset + count) if count and offset + count < len(hits) else None,
        now=now,
    )


def _latest(group: Sequence[UnitView]) -> datetime | None:
    times = [u.reported_at for u in group if u.reported_at is not None]
    return max(times) if times else None


async def _organisation_views(
    session: AsyncSession, ids: Sequence[uuid.UUID] | None = None
) -> list[OrganisationView]:
    stmt: Select[Any] = select(Organisation).order_by(Organisation.id)
    if ids is not None:
        stmt = stmt.where(Organisation.id.in_(ids))
    orgs = (await session.scalars(stmt)).all()
    cities: dict[uuid.UUID, set[str]] = defaultdict(set)
    for org_id, city in await session.execute(
        select(Location.organisation_id, Location.municipality)
    ):
        cities[org_id].add(city)
    return [_organisation_view(o, cities[o.id]) for o in orgs]


async def _location_views(
    session: AsyncSession, ids: Sequence[uuid.UUID] | None = None
) -> list[LocationView]:
    stmt: Select[Any] = (
        select(Location, Organisation, Subregion.code)  # type: ignore[assignment]
        .join(Organisation, Organisation.id == Location.organisation_id)
        .join(Subregion, Subregion.id == Location.subregion_id)
        .order_by(Location.id)
    )
    if ids is not None:
        stmt = stmt.where(Location.id.in_(ids))
    rows = (await session.execute(stmt)).all()
    care: dict[uuid.UUID, set[str]] = defaultdict(set)
    for loc_id, care_type in await session.execute(
        select(Unit.location_id, Unit.care_type).where(Unit.active)
    ):
        care[loc_id].add(care_type)
    return [_location_view(loc, org, code, care[loc.id]) for loc, org, code in rows]


async def _report_groups(session: AsyncSession, f: UnitFilter) -> list[list[UnitView]]:
    """The reported units grouped per location and care type, ordered by the report id."""
    groups: dict[tuple[uuid.UUID, str], list[UnitView]] = defaultdict(list)
    for unit in await unit_views(session, f):
        if unit.reported_at is not None:
            groups[(unit.location.id, unit.care_type)].append(unit)
    return [
        sorted(groups[key], key=lambda u: str(u.id))
        for key in sorted(groups, key=lambda k: fhir.measure_report_id(*k))
    ]


async def read(
    session: AsyncSession,
    principal: Principal,
    resource_type: str,
    resource_id: str,
    *,
    now: datetime,
) -> dict[str, Any]:
    """One resource by id (404 when there is none)."""
    missing = NotFound(f"No {resource_type}/{resource_id}.")
    if resource_type == "Measure":
        if resource_id != fhir.MEASURE_ID:
            raise missing
        return fhir.measure(updated_at=fhir.MEASURE_DATE)
    if resource_type == "MeasureReport":
        key = fhir.parse_measure_report_id(resource_id)
        if key is None:
            raise missing
        groups = await _report_groups(
            session, UnitFilter(location_ids=[key[0]], care_types=[key[1]], active_only=True)
        )
        if not groups:
            raise missing
        return fhir.measure_report(groups[0])
    try:
        own = uuid.UUID(resource_id)
    except ValueError:
        raise missing from None
    if resource_type == "Organization":
        orgs = await _organisation_views(session, [own])
        if not orgs:
            raise missing
        return fhir.organization(orgs[0])
    if resource_type == "Location":
        locs = await _location_views(session, [own])
        if not locs:
            raise missing
        return fhir.location(locs[0])
    if resource_type == "HealthcareService":
        units = await unit_views(session, UnitFilter(unit_ids=[own]))
        if not units:
            raise missing
        return fhir.healthcare_service(units[0], now=now)
    raise missing


# --- FHIR writes ---------------------------------------------------------------------------------


def _refuse(issues: list[dict[str, str]], status: int = 422) -> DomainError:
    detail = "; ".join(f"{i['pointer']}: {i['detail']}" for i in issues[:20])
    kind = {403: Forbidden, 404: NotFound, 409: Conflict}.get(status, InvalidInput)
    return kind(detail, errors=issues)


async def _location_of(session: AsyncSession, posted: fhir.PostedCapacity) -> Location | None:
    """By the reference's id, else by the subject's identifier (uuid or region-file code)."""
    if posted.location_id is not None:
        found_by_id = await session.get(Location, posted.location_id)
        if found_by_id is not None:
            return found_by_id
    if posted.location_identifier is None:
        return None
    system, value = posted.location_identifier
    if system == fhir.URI_SYSTEM and value.startswith("urn:uuid:"):
        try:
            return await session.get(Location, uuid.UUID(value.removeprefix("urn:uuid:")))
        except ValueError:
            return None
    column = getattr(Location, "external_id", None)
    if system == fhir.EXTERNAL_ID_SYSTEM and column is not None:
        found: Location | None = await session.scalar(select(Location).where(column == value))
        return found
    return None


async def _unit_of(
    session: AsyncSession, posted: fhir.PostedCapacity, location: Location
) -> tuple[uuid.UUID | None, dict[str, str] | None]:
    units = (
        await session.scalars(
            select(Unit).where(
                Unit.location_id == location.id,
                Unit.care_type == posted.care_type,
                Unit.active,
            )
        )
    ).all()
    if posted.unit_refs:
        for system, code in posted.unit_refs:
            for unit in units:
                if (system == fhir.URI_SYSTEM and code == f"urn:uuid:{unit.id}") or (
                    system == fhir.EXTERNAL_ID_SYSTEM and code == _external(unit, "external_id")
                ):
                    return unit.id, None
        return None, {
            "pointer": f"{posted.stratum_path}.value",
            "detail": f"no active {posted.care_type} unit with this identifier at the location",
        }
    if len(units) == 1:
        return units[0].id, None
    return None, {
        "pointer": f"{posted.group_path}.code",
        "detail": (
            f"the location has no active {posted.care_type} unit"
            if not units
            else f"the location has {len(units)} {posted.care_type} units: report each as a "
            "stratum (value urn:uuid:<unit id>)"
        ),
    }


async def _write(
    session: AsyncSession,
    principal: Principal,
    reports: Sequence[fhir.PostedCapacity],
    *,
    now: datetime,
    settings: Settings,
) -> list[tuple[str, dict[str, Any]]]:
    """Write every report or none; returns ``(MeasureReport/<id>, resource)`` per MeasureReport
    written (its current state after the write)."""
    issues: list[dict[str, str]] = []
    status = 422
    written: dict[str, tuple[uuid.UUID, str]] = {}
    for posted in reports:
        location = await _location_of(session, posted)
        if location is None:
            issues.append(
                {
                    "pointer": posted.subject_path,
                    "detail": "no such Location here",
                    "code": "not-found",
                }
            )
            continue
        unit_id, problem = await _unit_of(session, posted, location)
        if problem is not None or unit_id is None:
            issues.append(problem or {"pointer": posted.subject_path, "detail": "no unit"})
            continue
        paths = {"@/free": posted.count_path, "@/reported_at": posted.time_path}
        try:
            await capacity_service.report_capacity(
                session,
                principal,
                unit_id,
                CapacityReportIn(free=posted.free, reported_at=posted.reported_at),
                now=now,
                settings=settings,
                source="fhir",
                pointer_prefix="@",
            )
        except DomainError as exc:
            if status == 422 and exc.status != 422:
                status = exc.status
            for e in exc.errors or [{"pointer": posted.subject_path, "detail": exc.detail}]:
                pointer = str(e.get("pointer", ""))
                issues.append(
                    {"pointer": paths.get(pointer, posted.subject_path), "detail": str(e["detail"])}
                )
            continue
        written[fhir.measure_report_id(location.id, posted.care_type)] = (
            location.id,
            posted.care_type,
        )
    if issues:
        raise _refuse(issues, status)
    out = []
    for report_id, (location_id, care_type) in written.items():
        groups = await _report_groups(
            session, UnitFilter(location_ids=[location_id], care_types=[care_type])
        )
        out.append((f"MeasureReport/{report_id}", fhir.measure_report(groups[0])))
    return out


async def post_measure_report(
    session: AsyncSession, principal: Principal, data: Any, *, now: datetime, settings: Settings
) -> tuple[str, dict[str, Any]]:
    """A MeasureReport as a capacity report (rules of ``PUT /v1/units/{id}/capacity``)."""
    principal.require(Role.PROVIDER)
    reports, issues = fhir.parse_measure_report(data)
    if issues:
        raise _refuse(issues)
    return (await _write(session, principal, reports, now=now, settings=settings))[0]


async def post_transaction(
    session: AsyncSession, principal: Principal, data: Any, *, now: datetime, settings: Settings
) -> dict[str, Any]:
    """A transaction Bundle of MeasureReports: all written, or none (every problem named)."""
    principal.require(Role.PROVIDER)
    reports, issues = fhir.parse_transaction(data)
    if issues:
        raise _refuse(issues)
    written = await _write(session, principal, reports, now=now, settings=settings)
    return fhir.transaction_response(written, now=now)
