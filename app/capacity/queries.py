"""Availability search SQL, hand-written for the hot path.

One row per unit from ``unit_capacity`` (latest report and held places), filtered and ordered in
the database by the same key as ``capacity.ranking.rank_key``. LIMIT is a literal so PostgreSQL
plans for the real value instead of a generic plan; the statement text is cached per shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import BindParameter, TextualSelect, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Uuid

from app.db import DriverConnection, UTCDateTime


@dataclass(frozen=True)
class SearchFilter:
    care_types: tuple[str, ...]
    target_group_mask: int
    feature_mask: int
    sex_policies: tuple[str, ...] | None
    subregion_ids: tuple[uuid.UUID, ...] | None
    fresh_bed_after: datetime | None
    fresh_district_nursing_after: datetime | None
    near: tuple[float, float, float] | None  # lat, lon, lon_scale
    limit: int
    now: datetime  # a unit closed to admissions until after ``now`` is not accepting
    include_not_accepting: bool = False


_COLUMNS = """
SELECT u.id AS unit_id, u.name AS unit_name, u.care_type, u.label, u.target_group_mask,
       u.feature_mask, u.sex_policy, u.staffed_capacity,
       c.free, c.held, c.expected_free_24h, c.reported_at,
       o.id AS organisation_id, o.name AS organisation_name,
       l.id AS location_id, l.name AS location_name, l.address, l.postcode, l.municipality,
       l.latitude, l.longitude, l.phone,
       s.id AS subregion_id, s.code AS subregion_code, s.name AS subregion_name,
       c.closed_reason, c.closed_detail, c.closed_until, u.admission_hours
FROM unit_capacity c
JOIN unit u ON u.id = c.unit_id
JOIN location l ON l.id = u.location_id
JOIN organisation o ON o.id = l.organisation_id
JOIN subregion s ON s.id = l.subregion_id
WHERE u.active AND l.active AND o.active AND c.reported_at IS NOT NULL
  AND u.care_type IN :care_types
  AND (u.target_group_mask & :tg_mask) >= :tg_mask
  AND (u.feature_mask & :feature_mask) >= :feature_mask
"""
# ``(mask & :m) >= :m`` means ``(mask & :m) = :m`` for non-negative masks (``mask & m`` never
# exceeds ``m``), but PostgreSQL estimates it at 1/3 instead of 1/200 per predicate; with ``=``
# it expects ~1 unit, picks nested loops over every unit of the care type and runs 1.7-2x slower
# (bench/results.md, "Search").
_CLOSED = "(c.closed_reason IS NOT NULL AND (c.closed_until IS NULL OR c.closed_until > :now))"


@lru_cache(maxsize=256)
def _statement(
    n_subregions: int | None,
    with_sex: bool,
    with_fresh: bool,
    with_near: bool,
    limit: int,
    with_closed: bool = False,
) -> TextualSelect:
    sql = _COLUMNS
    params: list[BindParameter[Any]] = [
        bindparam("care_types", expanding=True),
        bindparam("tg_mask"),
        bindparam("feature_mask"),
        bindparam("now", type_=UTCDateTime()),
    ]
    if with_closed:
        # Units closed to admissions are listed (after the open ones) whatever their count.
        sql += f"  AND (c.free > c.held OR {_CLOSED})\n"
    else:
        sql += "  AND c.free > c.held AND (c.closed_reason IS NULL OR c.closed_until <= :now)\n"
    if with_sex:
        sql += "  AND u.sex_policy IN :sex_policies\n"
        params.append(bindparam("sex_policies", expanding=True))
    if n_subregions is not None:
        sql += "  AND l.subregion_id IN :subregions\n"
        params.append(bindparam("subregions", expanding=True, type_=Uuid()))
    if with_fresh:
        sql += (
            "  AND c.reported_at >= CASE WHEN u.care_type LIKE 'district_nursing%' "
            "THEN :fresh_dn ELSE :fresh_bed END\n"
        )
        params += [
            bindparam("fresh_dn", type_=UTCDateTime()),
            bindparam("fresh_bed", type_=UTCDateTime()),
        ]
    order = [f"CASE WHEN {_CLOSED} THEN 1 ELSE 0 END"] if with_closed else []
    if n_subregions is not None and n_subregions > 1:
        whens = " ".join(f"WHEN :sub_{i} THEN {i}" for i in range(n_subregions))
        order.append(f"CASE l.subregion_id {whens} END")
        params += [bindparam(f"sub_{i}", type_=Uuid()) for i in range(n_subregions)]
    if with_near:
        order.append(
            "((l.latitude - :lat) * (l.latitude - :lat)"
            " + (l.longitude - :lon) * (l.longitude - :lon) * :lon_scale)"
        )
        params += [bindparam("lat"), bindparam("lon"), bindparam("lon_scale")]
    order += ["c.reported_at DESC", "u.id"]
    sql += "ORDER BY " + ", ".join(order) + f"\nLIMIT {int(limit)}"
    return (
        text(sql)
        .bindparams(*params)
        .columns(
            unit_id=Uuid(),
            organisation_id=Uuid(),
            location_id=Uuid(),
            subregion_id=Uuid(),
            reported_at=UTCDateTime(),
            closed_until=UTCDateTime(),
        )
    )


async def search_rows(conn: AsyncConnection, f: SearchFilter) -> Sequence[Mapping[str, Any]]:
    """The matching rows as mappings: ``m["x"]`` costs a sixth of ``row.x`` on the hot path.

    On PostgreSQL the statement goes straight to the driver (``_driver_fetch``); SQLite runs it
    through SQLAlchemy.
    """
    with_fresh = f.fresh_bed_after is not None
    shape = (
        None if f.subregion_ids is None else len(f.subregion_ids),
        f.sex_policies is not None,
        with_fresh,
        f.near is not None,
        f.limit,
        f.include_not_accepting,
    )
    stmt = _statement(*shape)
    params: dict[str, Any] = {
        "care_types": list(f.care_types),
        "tg_mask": f.target_group_mask,
        "feature_mask": f.feature_mask,
        "now": f.now,
    }
    if f.sex_policies is not None:
        params["sex_policies"] = list(f.sex_policies)
    if f.subregion_ids is not None:
        params["subregions"] = list(f.subregion_ids)
        if len(f.subregion_ids) > 1:
            params.update({f"sub_{i}": s for i, s in enumerate(f.subregion_ids)})
    if with_fresh:
        params["fresh_bed"] = f.fresh_bed_after
        params["fresh_dn"] = f.fresh_district_nursing_after
    if f.near is not None:
        params["lat"], params["lon"], params["lon_scale"] = f.near
    if conn.dialect.name == "postgresql":
        return await _driver_fetch(conn, shape, stmt, params)
    rows = (await conn.execute(stmt, params)).mappings().all()
    return cast(Sequence[Mapping[str, Any]], rows)


# Compiled search text per shape and list lengths: (``$n`` SQL, the parameter name of each ``$n``).
_DRIVER_SQL: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}


async def _driver_fetch(
    conn: AsyncConnection, shape: tuple[Any, ...], stmt: TextualSelect, params: dict[str, Any]
) -> Sequence[Mapping[str, Any]]:
    """Run the search on the asyncpg connection under ``conn`` (an AUTOCOMMIT read): the same
    SQL text SQLAlchemy sends, rendered once per shape, without SQLAlchemy's per-execute work
    (parameter and result processing, cursor adaptation), which cost about as much as the
    driver call itself (bench/results.md, "Search"). asyncpg's records are mappings and
    already give UUIDs and UTC-aware datetimes, as the typed columns do.
    """
    key = (*shape, len(params["care_types"]), len(params.get("sex_policies", ())))
    compiled = _DRIVER_SQL.get(key)
    if compiled is None:
        rendered = stmt.params(**params).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        compiled = (rendered.string, tuple(rendered.positiontup or ()))
        if len(_DRIVER_SQL) > 1_000:
            _DRIVER_SQL.clear()
        _DRIVER_SQL[key] = compiled
    sql, names = compiled
    raw = await conn.get_raw_connection()
    driver = DriverConnection(conn, raw.driver_connection)  # AUTOCOMMIT: no BEGIN to send
    return cast(Sequence[Mapping[str, Any]], await driver.fetch(sql, *_args(names, params)))


def _args(names: tuple[str, ...], params: dict[str, Any]) -> list[Any]:
    """The value of each ``$n``: an expanded list's ``name_3`` is ``params[name][2]``."""
    out = []
    for name in names:
        if name in params:
            out.append(params[name])
        else:
            base, _, index = name.rpartition("_")
            out.append(params[base][int(index) - 1])
    return out
