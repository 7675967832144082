"""The triagist's capacity board: the care type x subregion summary and the matching units.

Capacity data carries no patient data, so these reads are not written to the NEN 7513 log. A
count older than its care type's limit is shown as unknown: its unit is listed (sorted last) so
the triagist can phone it, but its number is neither shown nor added to any total.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import RowMapping

from app.capacity import board_queries, ranking
from app.capacity.freshness import (
    Freshness,
    Summary,
    UnitFigures,
    board_order,
    freshness,
    is_known,
    summarise,
)
from app.capacity.service import ScopeResolver, parse_near
from app.config import Settings
from app.db import Database
from app.enums import (
    CareType,
    Feature,
    NotAcceptingReason,
    Role,
    Sex,
    TargetGroup,
    codes_of,
    is_closed,
    mask_of,
)
from app.errors import InvalidInput
from app.placement.suitability import ROOM_POLICIES
from app.principal import Principal

_POSTCODE = re.compile(r"^\s*(\d{4})\s*([A-Za-z]{2})?\s*$")
_LATLON = re.compile(r"^\s*-?\d{1,2}(\.\d+)?\s*,\s*-?\d{1,3}(\.\d+)?\s*$")


@dataclass(frozen=True)
class BoardQuery:
    care_types: tuple[CareType, ...] = ()
    target_groups: tuple[TargetGroup, ...] = ()
    sex: Sex | None = None
    features: tuple[Feature, ...] = ()
    subregion: str | None = None
    escalate: bool = False
    near: str | None = None  # a postcode, a municipality or "latitude,longitude"
    limit: int = 100


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float
    label: str


@dataclass(frozen=True)
class BoardUnit:
    unit_id: uuid.UUID
    unit_name: str
    care_type: CareType
    label: str | None
    target_groups: list[TargetGroup]
    sex_policy: str
    features: list[Feature]
    staffed_capacity: int
    free: int | None  # None: unknown (stale or never reported)
    held: int
    available: int | None  # None: unknown
    expected_free_24h: int | None
    reported_at: datetime | None
    age_minutes: int | None
    freshness: Freshness
    stale_after_minutes: int
    organisation_id: uuid.UUID
    organisation_name: str
    location_name: str
    address: str
    postcode: str
    municipality: str
    phone: str | None
    subregion_id: uuid.UUID
    subregion_code: str
    subregion_name: str
    escalation_rank: int
    distance_km: float | None
    # Closed to admissions for a while (``PUT /v1/units/{id}/status``): shown, after the open
    # units, with its reason and expected end.
    accepting: bool = True
    not_accepting_reason: NotAcceptingReason | None = None
    not_accepting_detail: str | None = None
    not_accepting_until: datetime | None = None

    @property
    def known(self) -> bool:
        return is_known(self.freshness)

    @property
    def bookable(self) -> int:
        """Places that can be held now: the known available count, 0 when unknown or closed."""
        return (self.available or 0) if self.accepting else 0


@dataclass(frozen=True)
class BoardUnits:
    items: list[BoardUnit]
    total: int
    escalated: bool
    searched_subregions: list[uuid.UUID]
    near: Place | None
    generated_at: datetime


@dataclass(frozen=True)
class SubregionInfo:
    id: uuid.UUID
    code: str
    name: str


@dataclass(frozen=True)
class BoardSummary:
    summary: Summary
    subregions: dict[uuid.UUID, SubregionInfo]
    own_subregion_id: uuid.UUID | None
    generated_at: datetime


def _require(principal: Principal) -> None:
    principal.require(Role.TRIAGIST)


def ttl_of(settings: Settings) -> dict[str, timedelta]:
    return {ct.value: settings.stale_after(ct.value) for ct in CareType}


async def board_summary(
    db: Database, principal: Principal, *, now: datetime, settings: Settings
) -> BoardSummary:
    """Available places per care type x subregion of the principal's region (admin: all), own
    subregion first; care types in their fixed order."""
    _require(principal)
    async with db.read() as conn:
        rows = await board_queries.summary_rows(conn, principal.region_id)
        subs = await board_queries.subregions(conn, principal.region_id)
        own = (
            None
            if principal.organisation_id is None
            else await board_queries.own_subregion(conn, principal.organisation_id)
        )
    infos = {s["id"]: SubregionInfo(id=s["id"], code=s["code"], name=s["name"]) for s in subs}
    order = [s["id"] for s in subs]
    if own in infos:
        order = [own, *[s for s in order if s != own]]
    summary = summarise(
        (
            UnitFigures(
                care_type=r["care_type"],
                subregion_id=r["subregion_id"],
                # A unit closed to admissions has no place to offer, whatever it reported free.
                free=0 if is_closed(r["closed_reason"], r["closed_until"], now) else r["free"],
                held=r["held"] or 0,
                reported_at=r["reported_at"],
            )
            for r in rows
        ),
        now=now,
        ttl_of=ttl_of(settings),
        care_type_order=[c.value for c in CareType],
        subregion_order=order,
    )
    return BoardSummary(
        summary=summary,
        subregions=infos,
        own_subregion_id=own if own in infos else None,
        generated_at=now,
    )


def postcode_point(
    number: int, points: Sequence[tuple[str, float, float]]
) -> tuple[float, float] | None:
    """The centre of the known locations in the nearest four-digit postcode area (pure).

    Dutch postcode numbers are handed out by area, so the nearest number with locations is a
    close neighbour; the registry's own addresses are the only geography the app holds.
    """
    by_number: dict[int, list[tuple[float, float]]] = {}
    for postcode, lat, lon in points:
        digits = postcode.strip()[:4]
        if digits.isdigit():
            by_number.setdefault(int(digits), []).append((lat, lon))
    if not by_number:
        return None
    best = min(by_number, key=lambda n: (abs(n - number), n))
    coords = by_number[best]
    return (
        sum(c[0] for c in coords) / len(coords),
        sum(c[1] for c in coords) / len(coords),
    )


def _centre(coords: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return (sum(c[0] for c in coords) / len(coords), sum(c[1] for c in coords) / len(coords))


async def locate(db: Database, text: str) -> Place:
    """A postcode (``2333 ZA``, ``2333``), a municipality or ``latitude,longitude`` as a point."""
    wanted = text.strip()
    if _LATLON.match(wanted):
        lat, lon = parse_near(wanted.replace(" ", ""))
        return Place(lat, lon, wanted)
    postcode = _POSTCODE.match(wanted)
    async with db.read() as conn:
        if postcode is not None:
            points = await board_queries.points_by_postcode(conn)
            found = postcode_point(
                int(postcode.group(1)),
                [(p["postcode"], p["latitude"], p["longitude"]) for p in points],
            )
            if found is not None:
                return Place(found[0], found[1], wanted.upper())
        else:
            rows = await board_queries.points_of_municipality(conn, wanted)
            if rows:
                lat, lon = _centre([(r["latitude"], r["longitude"]) for r in rows])
                return Place(lat, lon, str(rows[0]["municipality"]))
    raise InvalidInput(
        f"near={text!r} is not a known postcode, municipality or 'latitude,longitude'.",
        errors=[{"pointer": "query:near", "detail": "e.g. 2333 ZA, Leiden or 52.16,4.49"}],
    )


def _board_unit(
    r: RowMapping,
    level: Freshness,
    known: bool,
    rank: int,
    place: Place | None,
    now: datetime,
    ttls: dict[str, timedelta],
) -> BoardUnit:
    held = r["held"] or 0
    closed = is_closed(r["closed_reason"], r["closed_until"], now)
    return BoardUnit(
        unit_id=r["unit_id"],
        unit_name=r["unit_name"],
        care_type=CareType(r["care_type"]),
        label=r["label"],
        target_groups=codes_of(r["target_group_mask"], TargetGroup),
        sex_policy=r["sex_policy"],
        features=codes_of(r["feature_mask"], Feature),
        staffed_capacity=r["staffed_capacity"],
        free=r["free"] if known else None,
        held=held,
        available=max(0, r["free"] - held) if known else None,
        expected_free_24h=r["expected_free_24h"] if known else None,
        reported_at=r["reported_at"],
        age_minutes=(
            None if r["reported_at"] is None else ranking.age_minutes(r["reported_at"], now)
        ),
        freshness=level,
        stale_after_minutes=int(ttls[r["care_type"]].total_seconds() // 60),
        organisation_id=r["organisation_id"],
        organisation_name=r["organisation_name"],
        location_name=r["location_name"],
        address=r["address"],
        postcode=r["postcode"],
        municipality=r["municipality"],
        phone=r["phone"],
        subregion_id=r["subregion_id"],
        subregion_code=r["subregion_code"],
        subregion_name=r["subregion_name"],
        escalation_rank=rank,
        distance_km=(
            None
            if place is None
            else round(
                ranking.haversine_km(
                    place.latitude, place.longitude, r["latitude"], r["longitude"]
                ),
                1,
            )
        ),
        accepting=not closed,
        not_accepting_reason=NotAcceptingReason(r["closed_reason"]) if closed else None,
        not_accepting_detail=r["closed_detail"] if closed else None,
        not_accepting_until=r["closed_until"] if closed else None,
    )


async def board_units(
    db: Database,
    principal: Principal,
    q: BoardQuery,
    *,
    now: datetime,
    settings: Settings,
    scopes: ScopeResolver | None = None,
    unit_id: uuid.UUID | None = None,
) -> BoardUnits:
    """The units of the principal's region (admin: all) that match the filters: those with
    places first, then the full ones, then those whose count is unknown, then those closed to
    admissions; within each group own
    subregion first, neighbours in escalation order, nearest, freshest. ``unit_id``: only that
    unit (the live refresh of one row), still under the same filters."""
    _require(principal)
    resolver = scopes or ScopeResolver(db, ttl=0)
    scope = await resolver.resolve(q.subregion, q.escalate)
    place = None if q.near is None or not q.near.strip() else await locate(db, q.near)
    f = board_queries.BoardFilter(
        region_id=principal.region_id,
        care_types=tuple(c.value for c in q.care_types),
        target_group_mask=mask_of(q.target_groups, TargetGroup),
        feature_mask=mask_of(q.features, Feature),
        sex_policies=None if q.sex is None else ROOM_POLICIES[q.sex],
        subregion_ids=None if scope is None else scope.subregion_ids,
        unit_id=unit_id,
    )
    async with db.read() as conn:
        rows = await board_queries.board_rows(conn, f)
    ttls = ttl_of(settings)
    # Order every matching row by its key, then build the shown ones only (a region's board
    # matches hundreds of units; a page shows ``q.limit``).
    keyed = []
    for r in rows:
        level = freshness(r["reported_at"], now, ttls[r["care_type"]])
        known = is_known(level) and r["free"] is not None
        available = max(0, r["free"] - (r["held"] or 0)) if known else 0
        rank = 0 if scope is None else scope.rank_of(r["subregion_id"])
        distance2 = (
            None
            if place is None
            else ranking.planar_distance2(
                place.latitude, place.longitude, r["latitude"], r["longitude"]
            )
        )
        closed = is_closed(r["closed_reason"], r["closed_until"], now)
        key = (
            closed,
            *board_order(
                level=level if known else Freshness.NONE,
                available=available,
                escalation_rank=rank,
                distance2=distance2,
                reported_at=r["reported_at"],
                unit_id=r["unit_id"],
            ),
        )
        keyed.append((key, r, level, known, rank))
    keyed.sort(key=lambda entry: entry[0])
    items = [
        _board_unit(r, level, known, rank, place, now, ttls)
        for _, r, level, known, rank in keyed[: q.limit]
    ]
    return BoardUnits(
        items=items,
        total=len(keyed),
        escalated=scope is not None and scope.escalated,
        searched_subregions=[] if scope is None else list(scope.subregion_ids),
        near=place,
        generated_at=now,
    )
