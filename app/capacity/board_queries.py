"""SQL of the triagist's board: every active unit of a scope with its latest figures.

Unlike the availability search (``capacity.queries``) the board also lists full units, units with
a stale count and units that never reported: a triagist must see that a place is full or that its
count is unknown, not only the free ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import RowMapping, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.capacity.models import UnitCapacity
from app.registry.models import Location, Municipality, Organisation, Subregion, Unit


@dataclass(frozen=True)
class BoardFilter:
    region_id: uuid.UUID | None
    care_types: tuple[str, ...] = ()
    target_group_mask: int = 0
    feature_mask: int = 0
    sex_policies: tuple[str, ...] | None = None
    subregion_ids: tuple[uuid.UUID, ...] | None = None
    unit_id: uuid.UUID | None = None


def _unit_rows(f: BoardFilter) -> Select[Any]:
    stmt = cast(
        "Select[Any]",
        select(
            Unit.id.label("unit_id"),
            Unit.name.label("unit_name"),
            Unit.care_type,
            Unit.label,
            Unit.target_group_mask,
            Unit.feature_mask,
            Unit.sex_policy,
            Unit.staffed_capacity,
            UnitCapacity.free,
            UnitCapacity.held,
            UnitCapacity.expected_free_24h,
            UnitCapacity.reported_at,
            UnitCapacity.closed_reason,
            UnitCapacity.closed_detail,
            UnitCapacity.closed_until,
            Organisation.id.label("organisation_id"),
            Organisation.name.label("organisation_name"),
            Location.id.label("location_id"),
            Location.name.label("location_name"),
            Location.address,
            Location.postcode,
            Location.municipality,
            Location.latitude,
            Location.longitude,
            Location.phone,
            Subregion.id.label("subregion_id"),
            Subregion.code.label("subregion_code"),
            Subregion.name.label("subregion_name"),
        )
        .select_from(Unit)
        .join(Location, Location.id == Unit.location_id)
        .join(Organisation, Organisation.id == Location.organisation_id)
        .join(Subregion, Subregion.id == Location.subregion_id)
        .outerjoin(UnitCapacity, UnitCapacity.unit_id == Unit.id)
        .where(Unit.active, Location.active, Organisation.active),
    )
    if f.region_id is not None:
        stmt = stmt.where(Subregion.region_id == f.region_id)
    if f.unit_id is not None:
        stmt = stmt.where(Unit.id == f.unit_id)
    if f.care_types:
        stmt = stmt.where(Unit.care_type.in_(f.care_types))
    if f.target_group_mask:
        stmt = stmt.where(
            Unit.target_group_mask.op("&")(f.target_group_mask) >= f.target_group_mask
        )
    if f.feature_mask:
        stmt = stmt.where(Unit.feature_mask.op("&")(f.feature_mask) >= f.feature_mask)
    if f.sex_policies is not None:
        stmt = stmt.where(Unit.sex_policy.in_(f.sex_policies))
    if f.subregion_ids is not None:
        stmt = stmt.where(Location.subregion_id.in_(f.subregion_ids))
    return stmt


async def board_rows(conn: AsyncConnection, f: BoardFilter) -> Sequence[RowMapping]:
    rows: Sequence[RowMapping] = (await conn.execute(_unit_rows(f))).mappings().all()
    return rows


async def summary_rows(conn: AsyncConnection, region_id: uuid.UUID | None) -> Sequence[RowMapping]:
    """Care type, subregion and latest figures of every active unit of the region (or all)."""
    stmt = (
        select(
            Unit.care_type,
            Location.subregion_id,
            UnitCapacity.free,
            UnitCapacity.held,
            UnitCapacity.reported_at,
            UnitCapacity.closed_reason,
            UnitCapacity.closed_until,
        )
        .select_from(Unit)
        .join(Location, Location.id == Unit.location_id)
        .join(Organisation, Organisation.id == Location.organisation_id)
        .outerjoin(UnitCapacity, UnitCapacity.unit_id == Unit.id)
        .where(Unit.active, Location.active, Organisation.active)
    )
    if region_id is not None:
        stmt = stmt.join(Subregion, Subregion.id == Location.subregion_id).where(
            Subregion.region_id == region_id
        )
    return (await conn.execute(stmt)).mappings().all()


async def subregions(conn: AsyncConnection, region_id: uuid.UUID | None) -> Sequence[RowMapping]:
    stmt = select(Subregion.id, Subregion.code, Subregion.name, Subregion.region_id)
    if region_id is not None:
        stmt = stmt.where(Subregion.region_id == region_id)
    return (await conn.execute(stmt.order_by(Subregion.name))).mappings().all()


async def own_subregion(conn: AsyncConnection, organisation_id: uuid.UUID) -> uuid.UUID | None:
    """The subregion where the organisation has most active locations (its home), if any."""
    row = (
        await conn.execute(
            select(Location.subregion_id, func.count().label("n"))
            .where(Location.organisation_id == organisation_id, Location.active)
            .group_by(Location.subregion_id)
            .order_by(func.count().desc(), Location.subregion_id)
            .limit(1)
        )
    ).first()
    return None if row is None else row.subregion_id


async def points_by_postcode(conn: AsyncConnection) -> Sequence[RowMapping]:
    """Every active location's postcode and coordinates (to place a postcode on the map)."""
    return (
        (
            await conn.execute(
                select(Location.postcode, Location.latitude, Location.longitude).where(
                    Location.active
                )
            )
        )
        .mappings()
        .all()
    )


async def points_of_municipality(conn: AsyncConnection, name: str) -> Sequence[RowMapping]:
    """Coordinates of the locations in a municipality, else of its subregion's locations."""
    wanted = name.strip().lower()
    rows = (
        (
            await conn.execute(
                select(Location.municipality, Location.latitude, Location.longitude).where(
                    Location.active, func.lower(Location.municipality) == wanted
                )
            )
        )
        .mappings()
        .all()
    )
    if rows:
        return rows
    return (
        (
            await conn.execute(
                select(
                    Municipality.name.label("municipality"), Location.latitude, Location.longitude
                )
                .join(Location, Location.subregion_id == Municipality.subregion_id)
                .where(Location.active, func.lower(Municipality.name) == wanted)
            )
        )
        .mappings()
        .all()
    )
