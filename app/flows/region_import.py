"""Region import: create or update a region's registry from a checked region file.

Items are matched by their code (external identifier): region and subregion codes, municipality
CBS codes, organisation / location / unit ``external_id``. Rows made before identifiers existed
are adopted by name under the same parent. What the region has and the file no longer lists is
deactivated, never deleted, and every change is listed in the returned diff. The caller commits,
or rolls back for a dry run: the dry run's diff is exactly what the import would do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.capacity import service as capacity_service
from app.capacity.models import UnitCapacity
from app.capacity.schemas import CapacityReportIn
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Feature, Role, TargetGroup, mask_of
from app.errors import InvalidInput
from app.principal import Principal
from app.registry import regionfile
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
from app.registry.regionfile import Flat, Problem, RegionFile
from app.registry.schemas import ImportChange, ImportDiff, ImportKindDiff

KINDS = ("regions", "subregions", "municipalities", "organisations", "locations", "units")
SINGULAR = dict(
    zip(
        KINDS,
        ("region", "subregion", "municipality", "organisation", "location", "unit"),
        strict=True,
    )
)


@dataclass
class _Kind:
    created: list[str] = field(default_factory=list)
    updated: list[ImportChange] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unchanged: int = 0

    def record(self, code: str, changed: list[str]) -> None:
        if changed:
            self.updated.append(ImportChange(code=code, fields=changed))
        else:
            self.unchanged += 1

    def read(self) -> ImportKindDiff:
        return ImportKindDiff(
            created=self.created,
            updated=self.updated,
            deactivated=self.deactivated,
            unchanged=self.unchanged,
            counts={
                "created": len(self.created),
                "updated": len(self.updated),
                "deactivated": len(self.deactivated),
                "unchanged": self.unchanged,
            },
        )


def _sync(row: Any, desired: dict[str, Any], labels: dict[str, str] | None = None) -> list[str]:
    """Set the attributes that differ; the changed fields by their region-file names."""
    changed = []
    for attr, value in desired.items():
        if getattr(row, attr) != value:
            setattr(row, attr, value)
            changed.append((labels or {}).get(attr, attr))
    return changed


def _label(row: Organisation | Location | Unit) -> str:
    return row.external_id or f"{row.name} ({row.id})"


def invalid(problems: Iterable[Problem]) -> InvalidInput:
    errors = [p.as_error() for p in problems]
    summary = "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return InvalidInput(
        f"The region file has {len(errors)} problem(s), nothing was imported: {summary}{more}.",
        errors=errors,
    )


async def import_region(
    session: AsyncSession,
    principal: Principal,
    file: RegionFile,
    *,
    now: datetime,
    settings: Settings,
    dry_run: bool = False,
    report_at: Callable[[str], datetime] | None = None,
    report_source: str = "import",
) -> ImportDiff:
    """Apply ``file`` (admin only). A unit the import creates with ``free`` gets that as its
    first capacity report, taken at ``report_at(code)`` (default: now). Raises ``InvalidInput``
    naming every problem, before writing anything, when the file is inconsistent in itself or
    with the database (a code that belongs to another region)."""
    principal.require(Role.ADMIN)
    problems = regionfile.check(file)
    if problems:
        raise invalid(problems)
    flat = regionfile.flatten(file)
    state = await _State.load(session, file, flat)
    problems = state.conflicts(file, flat)
    if problems:
        raise invalid(problems)
    diff = {kind: _Kind() for kind in KINDS}
    region = await _region(session, state, file, diff["regions"])
    subs = await _subregions(session, state, file, region, diff["subregions"])
    await _municipalities(session, state, file, subs, diff["municipalities"])
    orgs = await _organisations(session, state, flat, region, diff["organisations"])
    locations = await _locations(session, state, file, flat, orgs, subs, diff["locations"])
    created = await _units(session, state, flat, locations, diff["units"])
    for unit, entry, at in created:
        if entry.free is None:
            continue
        await capacity_service.report_capacity(
            session,
            principal,
            unit.id,
            CapacityReportIn(
                free=entry.free,
                expected_free_24h=entry.expected_free_24h,
                reported_at=report_at(entry.code) if report_at is not None else now,
            ),
            now=now,
            settings=settings,
            source=report_source,
            pointer_prefix=at,
        )
    reads = {kind: d.read() for kind, d in diff.items()}
    changes = sum(
        r.counts["created"] + r.counts["updated"] + r.counts["deactivated"] for r in reads.values()
    )
    return ImportDiff(region=file.region.code, dry_run=dry_run, changes=changes, **reads)


@dataclass
class _State:
    """The rows an import of this file may touch, read before anything is written."""

    region: Region | None
    subregions: dict[str, Subregion]  # by code: this region's and the file's
    municipalities: list[Municipality]
    organisations: list[Organisation]
    locations: list[Location]
    units: list[Unit]
    region_codes: dict[uuid.UUID, str]  # region id -> code, of every region
    owners: dict[tuple[str, str], uuid.UUID]  # (kind, code of the file) -> region id in the db

    @classmethod
    async def load(cls, session: AsyncSession, file: RegionFile, flat: Flat) -> _State:
        region = await session.scalar(select(Region).where(Region.code == file.region.code))
        rid = region.id if region is not None else None
        sub_codes = [s.code for s in file.subregions]
        subs = (
            await session.scalars(
                select(Subregion).where(
                    or_(Subregion.code.in_(sub_codes), Subregion.region_id == rid)
                )
            )
        ).all()
        municipalities = (await session.scalars(select(Municipality))).all()
        org_codes = [p.entry.code for p in flat.organisations]
        orgs = (
            await session.scalars(
                select(Organisation).where(
                    or_(Organisation.external_id.in_(org_codes), Organisation.region_id == rid)
                )
            )
        ).all()
        org_ids = [o.id for o in orgs]
        loc_codes = [p.entry.code for p in flat.locations]
        locations = (
            await session.scalars(
                select(Location).where(
                    or_(Location.external_id.in_(loc_codes), Location.organisation_id.in_(org_ids))
                )
            )
        ).all()
        loc_ids = [loc.id for loc in locations]
        unit_codes = [p.entry.code for p in flat.units]
        units = (
            await session.scalars(
                select(Unit).where(
                    or_(Unit.external_id.in_(unit_codes), Unit.location_id.in_(loc_ids))
                )
            )
        ).all()
        regions = (await session.execute(select(Region.id, Region.code))).all()
        owners: dict[tuple[str, str], uuid.UUID] = {}
        for code, region_id in await session.execute(
            select(Organisation.external_id, Organisation.region_id).where(
                Organisation.external_id.in_(org_codes)
            )
        ):
            owners["organisation", str(code)] = region_id
        for code, region_id in await session.execute(
            select(Location.external_id, Organisation.region_id)
            .join(Organisation, Organisation.id == Location.organisation_id)
            .where(Location.external_id.in_(loc_codes))
        ):
            owners["location", str(code)] = region_id
        for code, region_id in await session.execute(
            select(Unit.external_id, Organisation.region_id)
            .join(Location, Location.id == Unit.location_id)
            .join(Organisation, Organisation.id == Location.organisation_id)
            .where(Unit.external_id.in_(unit_codes))
        ):
            owners["unit", str(code)] = region_id
        return cls(
            region=region,
            subregions={s.code: s for s in subs},
            municipalities=list(municipalities),
            organisations=list(orgs),
            locations=list(locations),
            units=list(units),
            region_codes={r[0]: r[1] for r in regions},
            owners=owners,
        )

    def _foreign(self, region_id: uuid.UUID) -> str | None:
        """The code of ``region_id`` when it is not the file's region."""
        if self.region is not None and region_id == self.region.id:
            return None
        return self.region_codes.get(region_id, str(region_id))

    def conflicts(self, file: RegionFile, flat: Flat) -> list[Problem]:
        """Codes of the file that the database gives to another region."""
        problems = []
        for i, sub in enumerate(file.subregions):
            row = self.subregions.get(sub.code)
            other = None if row is None else self._foreign(row.region_id)
            if other is not None:
                problems.append(
                    Problem(
                        regionfile.pointer("subregions", i, "code"),
                        f"subregion {sub.code!r} belongs to region {other!r}",
                    )
                )
        sub_region = {s.id: s.region_id for s in self.subregions.values()}
        for i, sub in enumerate(file.subregions):
            for m, entry in enumerate(sub.municipalities):
                muni = self.municipality(entry.cbs_code, entry.name)
                named = next((r for r in self.municipalities if r.name == entry.name), None)
                if named is not None and named is not muni:
                    problems.append(
                        Problem(
                            regionfile.pointer("subregions", i, "municipalities", m, "name"),
                            f"municipality {entry.name!r} is already registered with CBS code "
                            f"{named.cbs_code}",
                        )
                    )
                    continue
                if muni is None or not muni.active:
                    continue
                owner = sub_region.get(muni.subregion_id)
                other = None if owner is None else self._foreign(owner)
                if owner is None or other is not None:
                    problems.append(
                        Problem(
                            regionfile.pointer("subregions", i, "municipalities", m),
                            f"municipality {entry.name!r} belongs to a subregion of region "
                            f"{other or 'another region'!r}",
                        )
                    )
        for kind, placed in (
            ("organisation", flat.organisations),
            ("location", flat.locations),
            ("unit", flat.units),
        ):
            for p in placed:
                owner = self.owners.get((kind, p.entry.code))
                other = None if owner is None else self._foreign(owner)
                if other is not None:
                    problems.append(
                        Problem(
                            f"{p.pointer}/code",
                            f"{kind} {p.entry.code!r} belongs to region {other!r}",
                        )
                    )
        return problems

    def municipality(self, cbs_code: str, name: str) -> Municipality | None:
        for row in self.municipalities:
            if row.cbs_code == cbs_code:
                return row
        for row in self.municipalities:
            if row.name == name and row.cbs_code is None:
                return row
        return None


async def _region(session: AsyncSession, state: _State, file: RegionFile, d: _Kind) -> Region:
    region = state.region
    created = region is None
    changed: list[str] = []
    if region is None:
        region = Region(id=uuid.uuid4(), code=file.region.code, name=file.region.name)
        session.add(region)
        d.created.append(region.code)
    else:
        changed = _sync(region, {"name": file.region.name})
    await session.flush()
    if file.region.norm_hours is not None:
        wanted = {str(k): v for k, v in file.region.norm_hours.items()}
        if await _norms(session, region, wanted):
            changed.append("norm_hours")
    if not created:
        d.record(region.code, changed)
    return region


async def _norms(session: AsyncSession, region: Region, wanted: dict[str, int]) -> bool:
    """Replace the region's own between-the-cracks norms (docs/domain.md §6.9) by the file's;
    whether they changed."""
    rows = (
        await session.scalars(select(RegionNorm).where(RegionNorm.region_id == region.id))
    ).all()
    if {r.care_type: r.hours for r in rows} == wanted:
        return False
    for row in rows:
        await session.delete(row)
    await session.flush()
    session.add_all(
        RegionNorm(region_id=region.id, care_type=k, hours=v) for k, v in wanted.items()
    )
    await session.flush()
    return True


async def _subregions(
    session: AsyncSession, state: _State, file: RegionFile, region: Region, d: _Kind
) -> dict[str, Subregion]:
    subs: dict[str, Subregion] = {}
    changes: dict[str, list[str]] = {}
    for entry in file.subregions:
        row = state.subregions.get(entry.code)
        if row is None:
            row = Subregion(id=uuid.uuid4(), region_id=region.id, code=entry.code, name=entry.name)
            row.active = True
            session.add(row)
            d.created.append(entry.code)
        else:
            changes[entry.code] = _sync(row, {"name": entry.name, "active": True})
        subs[entry.code] = row
    await session.flush()
    ids = [s.id for s in subs.values()]
    current = (
        await session.scalars(
            select(SubregionNeighbour)
            .where(SubregionNeighbour.subregion_id.in_(ids))
            .order_by(SubregionNeighbour.rank)
        )
    ).all()
    code_of = {s.id: code for code, s in subs.items()}
    for entry in file.subregions:
        own = subs[entry.code]
        had = [code_of.get(n.neighbour_id) for n in current if n.subregion_id == own.id]
        if had == entry.neighbours:
            continue
        if entry.code in changes:
            changes[entry.code].append("neighbours")
        await session.execute(
            delete(SubregionNeighbour).where(SubregionNeighbour.subregion_id == own.id)
        )
        for rank, code in enumerate(entry.neighbours, start=1):
            session.add(
                SubregionNeighbour(subregion_id=own.id, neighbour_id=subs[code].id, rank=rank)
            )
    for code, changed in changes.items():
        d.record(code, changed)
    for code, row in state.subregions.items():
        if code not in subs and row.region_id == region.id and row.active:
            row.active = False
            d.deactivated.append(code)
    await session.flush()
    return subs


async def _municipalities(
    session: AsyncSession,
    state: _State,
    file: RegionFile,
    subs: dict[str, Subregion],
    d: _Kind,
) -> None:
    seen: set[str] = set()
    for sub in file.subregions:
        for entry in sub.municipalities:
            row = state.municipality(entry.cbs_code, entry.name)
            desired = {
                "name": entry.name,
                "subregion_id": subs[sub.code].id,
                "cbs_code": entry.cbs_code,
                "active": True,
            }
            if row is None:
                session.add(Municipality(**desired))
                d.created.append(entry.cbs_code)
            else:
                labels = {"subregion_id": "subregion"}
                d.record(entry.cbs_code, _sync(row, desired, labels))
                seen.add(row.name)
    own = {s.id for s in subs.values()} | {
        s.id for s in state.subregions.values() if state.region and s.region_id == state.region.id
    }
    for row in state.municipalities:
        if row.subregion_id in own and row.name not in seen and row.active:
            row.active = False
            d.deactivated.append(row.cbs_code or row.name)
    await session.flush()


async def _organisations(
    session: AsyncSession, state: _State, flat: Flat, region: Region, d: _Kind
) -> dict[str, Organisation]:
    by_code = {o.external_id: o for o in state.organisations if o.external_id is not None}
    legacy = {
        o.name: o for o in state.organisations if o.external_id is None and o.region_id == region.id
    }
    out: dict[str, Organisation] = {}
    for p in flat.organisations:
        entry: regionfile.OrganisationEntry = p.entry
        desired = {
            "name": entry.name,
            "kind": entry.kind.value,
            "agb_code": entry.agb_code,
            "ura_number": entry.ura_number,
            "kvk_number": entry.kvk_number,
            "active": True,
        }
        row = by_code.get(entry.code) or legacy.pop(entry.name, None)
        if row is None:
            row = Organisation(id=uuid.uuid4(), region_id=region.id, external_id=entry.code)
            _sync(row, desired)
            session.add(row)
            d.created.append(entry.code)
        else:
            changed = _sync(row, {**desired, "external_id": entry.code}, {"external_id": "code"})
            if changed:
                row.updated_at = utcnow()  # the ORM default fills it on insert only
            d.record(entry.code, changed)
        out[entry.code] = row
    kept = {o.id for o in out.values()}
    for row in state.organisations:
        if row.region_id == region.id and row.id not in kept and row.active:
            row.active = False
            d.deactivated.append(_label(row))
    await session.flush()
    return out


async def _locations(
    session: AsyncSession,
    state: _State,
    file: RegionFile,
    flat: Flat,
    orgs: dict[str, Organisation],
    subs: dict[str, Subregion],
    d: _Kind,
) -> dict[str, Location]:
    sub_of: dict[str, uuid.UUID] = {}
    for sub in file.subregions:
        for muni in sub.municipalities:
            sub_of[muni.name] = sub_of[muni.cbs_code] = subs[sub.code].id
    by_code = {loc.external_id: loc for loc in state.locations if loc.external_id is not None}
    # After the conflict check every organisation read belongs to the region.
    org_ids = {o.id for o in orgs.values()} | {o.id for o in state.organisations}
    legacy = {
        (loc.organisation_id, loc.name): loc
        for loc in state.locations
        if loc.external_id is None and loc.organisation_id in org_ids
    }
    out: dict[str, Location] = {}
    labels = {"organisation_id": "organisation", "subregion_id": "subregion"}
    for p in flat.locations:
        entry: regionfile.LocationEntry = p.entry
        org = orgs[str(p.parent)]
        desired = {
            "organisation_id": org.id,
            "subregion_id": sub_of[entry.municipality],
            "name": entry.name,
            "address": entry.address,
            "postcode": entry.postcode,
            "municipality": regionfile.municipality_name(file, entry.municipality),
            "latitude": entry.latitude,
            "longitude": entry.longitude,
            "phone": entry.phone,
            "active": True,
        }
        row = by_code.get(entry.code) or legacy.pop((org.id, entry.name), None)
        if row is None:
            row = Location(id=uuid.uuid4(), external_id=entry.code)
            _sync(row, desired)
            session.add(row)
            d.created.append(entry.code)
        else:
            changed = _sync(
                row, {**desired, "external_id": entry.code}, {**labels, "external_id": "code"}
            )
            if changed:
                row.updated_at = utcnow()  # the ORM default fills it on insert only
            d.record(entry.code, changed)
        out[entry.code] = row
    kept = {loc.id for loc in out.values()}
    for row in state.locations:
        if row.organisation_id in org_ids and row.id not in kept and row.active:
            row.active = False
            d.deactivated.append(_label(row))
    await session.flush()
    return out


async def _units(
    session: AsyncSession,
    state: _State,
    flat: Flat,
    locations: dict[str, Location],
    d: _Kind,
) -> list[tuple[Unit, regionfile.UnitEntry, str]]:
    by_code = {u.external_id: u for u in state.units if u.external_id is not None}
    # After the conflict check every location read belongs to the region.
    loc_ids = {loc.id for loc in locations.values()} | {loc.id for loc in state.locations}
    legacy = {
        (u.location_id, u.name, u.care_type): u
        for u in state.units
        if u.external_id is None and u.location_id in loc_ids
    }
    created: list[tuple[Unit, regionfile.UnitEntry, str]] = []
    kept: set[uuid.UUID] = set()
    labels = {
        "location_id": "location",
        "target_group_mask": "target_groups",
        "feature_mask": "features",
    }
    for p in flat.units:
        entry: regionfile.UnitEntry = p.entry
        location = locations[str(p.parent)]
        desired = {
            "location_id": location.id,
            "name": entry.name,
            "care_type": entry.care_type.value,
            "target_group_mask": mask_of(entry.target_groups, TargetGroup),
            "feature_mask": mask_of(entry.features, Feature),
            "sex_policy": entry.sex_policy.value,
            "staffed_capacity": entry.staffed_capacity,
            "label": entry.label,
            "active": True,
        }
        row = by_code.get(entry.code) or legacy.pop(
            (location.id, entry.name, entry.care_type.value), None
        )
        if row is None:
            row = Unit(id=uuid.uuid4(), external_id=entry.code)
            _sync(row, desired)
            session.add(row)
            d.created.append(entry.code)
            created.append((row, entry, p.pointer))
        else:
            changed = _sync(
                row, {**desired, "external_id": entry.code}, {**labels, "external_id": "code"}
            )
            if changed:
                row.updated_at = utcnow()  # the ORM default fills it on insert only
            d.record(entry.code, changed)
        kept.add(row.id)
    for row in state.units:
        if row.location_id in loc_ids and row.id not in kept and row.active:
            row.active = False
            d.deactivated.append(_label(row))
    await session.flush()
    # Every unit has a current-capacity row from birth: nothing free until its first report.
    for row, _, _ in created:
        session.add(UnitCapacity(unit_id=row.id, free=0, held=0))
    await session.flush()
    return created


def read_file(path: Path) -> RegionFile:
    """A region file from disk (YAML, of which JSON is a subset), parsed; ``InvalidInput``
    naming every problem when it is not a region file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"{path} cannot be read as YAML or JSON: {exc}",
            errors=[{"pointer": "#", "detail": "not a YAML or JSON document"}],
        ) from None
    try:
        return regionfile.parse(data)
    except regionfile.RegionFileInvalid as exc:
        raise invalid(exc.problems) from None


async def import_file(
    db: Database, principal: Principal, path: Path, *, dry_run: bool, settings: Settings
) -> ImportDiff:
    """``juisteplek import-region``: import (or, dry, only diff) one file in one transaction."""
    file = read_file(path)
    async with db.sessionmaker() as session:
        diff = await import_region(
            session, principal, file, now=utcnow(), settings=settings, dry_run=dry_run
        )
        if dry_run:
            await session.rollback()
        else:
            await session.commit()
    return diff


def describe(diff: ImportDiff) -> list[str]:
    """The diff as text lines: a count line per kind, then each change."""
    verb = "would change" if diff.dry_run else "changed"
    lines = [
        f"region {diff.region}: {diff.changes} {verb}" + (" (dry run)" if diff.dry_run else "")
    ]
    for kind in KINDS:
        d: ImportKindDiff = getattr(diff, kind)
        c = d.counts
        lines.append(
            f"  {kind:<15} created {c['created']:>4}  updated {c['updated']:>4}  "
            f"deactivated {c['deactivated']:>4}  unchanged {c['unchanged']:>4}"
        )
    for kind in KINDS:
        d = getattr(diff, kind)
        one = SINGULAR[kind]
        lines += [f"  + {one} {code}" for code in d.created]
        lines += [f"  ~ {one} {u.code}: {', '.join(u.fields)}" for u in d.updated]
        lines += [f"  - {one} {code} (deactivated)" for code in d.deactivated]
    return lines
