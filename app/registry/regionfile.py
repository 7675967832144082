"""The region file (docs/exchange.md, "Region file"): its shape and its consistency rules.

Pure: parses already loaded data (YAML or JSON) and names every problem with its JSON pointer in
the file; it reads no database and no clock. ``app.flows.region_import`` applies a checked file.

Organisations, locations and units carry a ``code``: their stable external identifier. Locations
and units may be nested (under their organisation / location) or listed at the top level with
the ``organisation`` / ``location`` they belong to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, ValidationError, model_validator

from app.enums import CareType, Feature, OrganisationKind, SexPolicy, TargetGroup
from app.schemas import Count, Latitude, Longitude, Name, Postcode, Schema, ShortText

Code = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Stable external identifier: letters, digits, '.', '_', '-' (max 64)",
    ),
]
CbsCode = Annotated[
    str, Field(pattern=r"^GM[0-9]{4}$", description="CBS gemeentecode, e.g. GM0687")
]
Digits8 = Annotated[str, Field(pattern=r"^[0-9]{8}$")]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{6,25}$")]
# Per list; a region's file stays well inside the API's body limit (a list one longer than this
# is refused with 422, not 413).
MAX_ITEMS = 2_000


class MunicipalityEntry(Schema):
    cbs_code: CbsCode
    name: Annotated[Name, Field(max_length=100)]


class SubregionEntry(Schema):
    code: Annotated[Code, Field(max_length=40)]
    name: Name
    neighbours: list[Code] = Field(
        default_factory=list, max_length=100, description="Escalation order: first = first step"
    )
    municipalities: list[MunicipalityEntry] = Field(min_length=1, max_length=500)


class UnitEntry(Schema):
    code: Code
    location: Code | None = Field(
        default=None, description="The location's code (implied when nested under it)"
    )
    name: Name
    care_type: CareType
    target_groups: list[TargetGroup] = Field(min_length=1, max_length=len(TargetGroup))
    sex_policy: SexPolicy = SexPolicy.ANY
    features: list[Feature] = Field(default_factory=list, max_length=len(Feature))
    staffed_capacity: Annotated[Count, Field(le=10_000)]
    label: Annotated[ShortText, Field(max_length=200)] | None = None
    free: Count | None = Field(
        default=None, description="Optional first capacity report when the import creates the unit"
    )
    expected_free_24h: Count | None = None

    @model_validator(mode="after")
    def _label_for_local_other(self) -> UnitEntry:
        if self.care_type is CareType.LOCAL_OTHER and not self.label:
            raise ValueError("label is required for care_type local_other")
        return self


class LocationEntry(Schema):
    code: Code
    organisation: Code | None = Field(
        default=None, description="The organisation's code (implied when nested under it)"
    )
    name: Name
    address: Name
    postcode: Postcode
    municipality: Annotated[Name, Field(max_length=100)] = Field(
        description="Name or CBS code of a municipality in this file; decides the subregion"
    )
    latitude: Latitude
    longitude: Longitude
    phone: Phone | None = None
    units: list[UnitEntry] = Field(default_factory=list, max_length=500)


class OrganisationEntry(Schema):
    code: Code
    name: Name
    kind: OrganisationKind
    agb_code: Digits8 | None = Field(default=None, description="AGB code (8 digits)")
    ura_number: Digits8 | None = Field(default=None, description="URA number (8 digits)")
    kvk_number: Digits8 | None = Field(default=None, description="KvK number (8 digits)")
    locations: list[LocationEntry] = Field(default_factory=list, max_length=500)


NormHours = Annotated[int, Field(ge=1, le=8760)]


class RegionEntry(Schema):
    code: Annotated[Code, Field(max_length=40)]
    name: Name
    norm_hours: dict[CareType, NormHours] | None = Field(
        default=None,
        description="The region's norm per care type, in hours from a request to a promised "
        "place, after which a request counts as between the cracks (1-8760). Care types left "
        "out take the default norm; omitted: the region's norms stay as they are; {}: the "
        "defaults for every care type",
        examples=[{"elv_high": 12, "grz": 48}],
    )


class RegionFile(Schema):
    """One region: its subregions (with municipalities and escalation neighbours), its
    organisations, their locations and units. What an import of it does: create or update by
    code; deactivate what the region has and the file no longer lists."""

    region: RegionEntry
    subregions: list[SubregionEntry] = Field(min_length=1, max_length=200)
    organisations: list[OrganisationEntry] = Field(default_factory=list, max_length=MAX_ITEMS)
    locations: list[LocationEntry] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="Locations listed apart from their organisation (each names it)",
    )
    units: list[UnitEntry] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description="Units listed apart from their location (each names it)",
    )


@dataclass(frozen=True, slots=True)
class Problem:
    pointer: str
    detail: str

    def as_error(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.detail}


class RegionFileInvalid(Exception):
    """The file cannot be imported; ``problems`` names each reason with its place in the file."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the region file")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Placed:
    """An organisation, location or unit with its place in the file and its parent's code."""

    pointer: str
    parent: str | None
    entry: Any


@dataclass(frozen=True, slots=True)
class Flat:
    organisations: list[Placed]
    locations: list[Placed]
    units: list[Placed]


def pointer(*parts: str | int) -> str:
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "#/" + "/".join(escaped)


def parse(data: Any) -> RegionFile:
    """The file as a model; a file of the wrong shape raises with one problem per error."""
    try:
        return RegionFile.model_validate(data)
    except ValidationError as exc:
        raise RegionFileInvalid(
            [Problem(pointer(*e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        ) from None


def flatten(file: RegionFile) -> Flat:
    """Every organisation, location and unit once, each with the code of its parent (nested
    entries take it from where they stand; top-level ones from their own field)."""
    orgs = [Placed(pointer("organisations", i), None, o) for i, o in enumerate(file.organisations)]
    locations: list[Placed] = []
    units: list[Placed] = []

    def add_units(loc: LocationEntry, at: tuple[str | int, ...]) -> None:
        for k, unit in enumerate(loc.units):
            units.append(Placed(pointer(*at, "units", k), loc.code, unit))

    for i, org in enumerate(file.organisations):
        for j, loc in enumerate(org.locations):
            at = ("organisations", i, "locations", j)
            locations.append(Placed(pointer(*at), org.code, loc))
            add_units(loc, at)
    for j, loc in enumerate(file.locations):
        locations.append(Placed(pointer("locations", j), loc.organisation, loc))
        add_units(loc, ("locations", j))
    for k, unit in enumerate(file.units):
        units.append(Placed(pointer("units", k), unit.location, unit))
    return Flat(orgs, locations, units)


def _duplicates(items: Iterable[tuple[str, str]], what: str) -> Iterator[Problem]:
    """(pointer, key) pairs: a problem at every repeat of a key, naming the first place."""
    first: dict[str, str] = {}
    for at, key in items:
        if key in first:
            yield Problem(at, f"duplicate {what} {key!r} (first at {first[key]})")
        else:
            first[key] = at


def check(file: RegionFile) -> list[Problem]:
    """Every inconsistency of a well-shaped file (empty: it can be imported)."""
    problems: list[Problem] = []
    subs = file.subregions
    problems += _duplicates(
        ((pointer("subregions", i, "code"), s.code) for i, s in enumerate(subs)), "subregion code"
    )
    codes = {s.code for s in subs}
    for i, sub in enumerate(subs):
        for n, code in enumerate(sub.neighbours):
            at = pointer("subregions", i, "neighbours", n)
            if code == sub.code:
                problems.append(Problem(at, "a subregion is not its own neighbour"))
            elif code not in codes:
                problems.append(Problem(at, f"unknown neighbour {code!r}: no such subregion"))
        for code, count in Counter(sub.neighbours).items():
            if count > 1:
                at = pointer("subregions", i, "neighbours")
                problems.append(Problem(at, f"neighbour {code!r} listed {count} times"))
    where: dict[str, tuple[str, str]] = {}  # cbs code -> (subregion code, pointer)
    names: dict[str, str] = {}  # municipality name -> cbs code
    for i, sub in enumerate(subs):
        for m, muni in enumerate(sub.municipalities):
            at = pointer("subregions", i, "municipalities", m)
            seen = where.get(muni.cbs_code)
            if seen is not None and seen[0] != sub.code:
                problems.append(
                    Problem(
                        at,
                        f"municipality {muni.cbs_code} ({muni.name}) is in two subregions: "
                        f"{seen[0]!r} (at {seen[1]}) and {sub.code!r}",
                    )
                )
            elif seen is not None:
                problems.append(Problem(at, f"municipality {muni.cbs_code} listed twice"))
            else:
                where[muni.cbs_code] = (sub.code, at)
            other = names.setdefault(muni.name, muni.cbs_code)
            if other != muni.cbs_code:
                problems.append(
                    Problem(at, f"municipality name {muni.name!r} has two CBS codes: {other}")
                )
    flat = flatten(file)
    for kind, items in (
        ("organisation", flat.organisations),
        ("location", flat.locations),
        ("unit", flat.units),
    ):
        problems += _duplicates(
            ((f"{p.pointer}/code", p.entry.code) for p in items), f"{kind} code"
        )
    org_codes = {p.entry.code for p in flat.organisations}
    municipalities = set(names) | set(where)
    for p in flat.locations:
        loc: LocationEntry = p.entry
        if loc.organisation is not None and p.parent != loc.organisation:
            problems.append(
                Problem(
                    f"{p.pointer}/organisation",
                    f"nested under organisation {p.parent!r} but names {loc.organisation!r}",
                )
            )
        elif p.parent is None:
            problems.append(
                Problem(f"{p.pointer}/organisation", "required for a top-level location")
            )
        elif p.parent not in org_codes:
            problems.append(
                Problem(f"{p.pointer}/organisation", f"unknown organisation {p.parent!r}")
            )
        if loc.municipality not in municipalities:
            problems.append(
                Problem(
                    f"{p.pointer}/municipality",
                    f"unknown municipality {loc.municipality!r}: not in any subregion of the file",
                )
            )
    location_codes = {p.entry.code for p in flat.locations}
    for p in flat.units:
        unit: UnitEntry = p.entry
        if unit.location is not None and p.parent != unit.location:
            problems.append(
                Problem(
                    f"{p.pointer}/location",
                    f"nested under location {p.parent!r} but names {unit.location!r}",
                )
            )
        elif p.parent is None:
            problems.append(Problem(f"{p.pointer}/location", "required for a top-level unit"))
        elif p.parent not in location_codes:
            problems.append(Problem(f"{p.pointer}/location", f"unknown location {p.parent!r}"))
    return problems


def municipality_name(file: RegionFile, ref: str) -> str:
    """The name of the file's municipality ``ref`` (a name or a CBS code)."""
    for sub in file.subregions:
        for muni in sub.municipalities:
            if ref in (muni.name, muni.cbs_code):
                return muni.name
    raise KeyError(ref)


def load(data: Any) -> tuple[RegionFile, Flat]:
    """Parse and check: the file and its flat lists, or ``RegionFileInvalid`` naming every
    problem."""
    file = parse(data)
    problems = check(file)
    if problems:
        raise RegionFileInvalid(problems)
    return file, flatten(file)
