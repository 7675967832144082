"""What-if variants of the service, to measure candidate hot-path fixes with the same benchmark.

Not product code: each factory patches the app at start-up (it edits no file), so a fix can be
measured before it is made, e.g.

    .venv/bin/python -m bench.run_search --service-app bench.variants:async_deps --name search-v1

- ``async_deps``: ``get_db`` and ``get_settings_dep`` as ``async def``; FastAPI runs plain ``def``
  dependencies in the thread pool, two thread hops per request.
- ``scope_read``: the search scope (subregion, neighbours, region) read with Core on an
  AUTOCOMMIT connection instead of an ORM session (no BEGIN/ROLLBACK, no entity loading).
- ``scope_cached``: the scope memoised for 60 s (the subregion graph is reference data).
- ``lean_rows``: ``search_rows`` returns ``RowMapping`` s and ``_hit`` reads ``m["x"]`` (about
  50 ns) instead of ``row.x`` (about 300 ns on SQLAlchemy 2.1); otherwise the same code.
- ``all_fixes``: ``async_deps`` + ``scope_cached`` + ``lean_rows``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from fastapi import FastAPI, Request
from sqlalchemy import select

from app import deps
from app.capacity import queries, ranking
from app.capacity import service as capacity_service
from app.config import Settings
from app.db import Database
from app.enums import Feature, TargetGroup, codes_of
from app.main import create_app
from app.registry.models import Subregion, SubregionNeighbour

Patch = Callable[[FastAPI], None]
_original_scope = capacity_service._scope


async def _get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _async_deps(_: FastAPI) -> None:
    """Make the two sync dependencies coroutines, keeping their identity (routes reference them;
    FastAPI's ``dependency_overrides`` would re-inspect overridden dependencies on every request).
    Equivalent to writing ``async def`` in app/deps.py."""
    deps.get_db.__code__ = _get_db.__code__
    deps.get_settings_dep.__code__ = _get_settings_dep.__code__


async def _scope_read(db: Database, ref: str | None, escalate: bool) -> ranking.Scope | None:
    if ref is None:
        return None
    async with db.read() as conn:
        own = (
            await conn.execute(
                select(Subregion.id, Subregion.region_id).where(Subregion.code == ref)
            )
        ).first()
        if own is None:  # unknown code or an id: the service's own path raises the right error
            return await _original_scope(db, ref, escalate)
        neighbours = (
            await conn.scalars(
                select(SubregionNeighbour.neighbour_id)
                .where(SubregionNeighbour.subregion_id == own.id)
                .order_by(SubregionNeighbour.rank)
            )
        ).all()
        region_subs = (
            await conn.scalars(select(Subregion.id).where(Subregion.region_id == own.region_id))
        ).all()
    return ranking.search_scope(own.id, neighbours, region_subs, escalate=escalate)


_CACHE: dict[tuple[str, bool], tuple[float, Any]] = {}


async def _scope_cached(db: Database, ref: str | None, escalate: bool) -> ranking.Scope | None:
    if ref is None:
        return None
    now = time.monotonic()
    hit = _CACHE.get((ref, escalate))
    if hit is not None and hit[0] > now:
        scope: ranking.Scope | None = hit[1]
        return scope
    scope = await _original_scope(db, ref, escalate)
    _CACHE[(ref, escalate)] = (now + 60.0, scope)
    return scope


class _MappingConn:
    """Lets the unchanged ``search_rows`` return RowMappings (``.mappings().all()``)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return (await self._conn.execute(*args, **kwargs)).mappings()


_original_search_rows = queries.search_rows


async def _search_rows_mappings(conn: Any, f: Any) -> Any:
    return await _original_search_rows(cast(Any, _MappingConn(conn)), f)


def _lean_hit(
    m: Any,
    q: capacity_service.SearchQuery,
    scope: ranking.Scope | None,
    near: tuple[float, float] | None,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    """The service's ``_hit`` reading a RowMapping (same output, checked by the probes)."""
    rank = 0 if scope is None else scope.rank_of(m["subregion_id"])
    reported_at, care_type, lat, lon = (
        m["reported_at"],
        m["care_type"],
        m["latitude"],
        m["longitude"],
    )
    stale = ranking.is_stale(reported_at, now, settings.stale_after(care_type))
    return {
        "unit_id": m["unit_id"],
        "unit_name": m["unit_name"],
        "care_type": care_type,
        "label": m["label"],
        "target_groups": codes_of(m["target_group_mask"], TargetGroup),
        "sex_policy": m["sex_policy"],
        "features": codes_of(m["feature_mask"], Feature),
        "staffed_capacity": m["staffed_capacity"],
        "available": max(0, m["free"] - m["held"]),
        "reported_free": m["free"],
        "held": m["held"],
        "expected_free_24h": m["expected_free_24h"],
        "organisation": {"id": m["organisation_id"], "name": m["organisation_name"]},
        "location": {
            "id": m["location_id"],
            "name": m["location_name"],
            "address": m["address"],
            "postcode": m["postcode"],
            "municipality": m["municipality"],
            "latitude": lat,
            "longitude": lon,
            "phone": m["phone"],
        },
        "subregion": {
            "id": m["subregion_id"],
            "code": m["subregion_code"],
            "name": m["subregion_name"],
        },
        "escalation_level": "subregion" if rank == 0 and scope is not None else "region",
        "escalation_rank": rank,
        "distance_km": None
        if near is None
        else round(ranking.haversine_km(near[0], near[1], lat, lon), 2),
        "reported_at": reported_at,
        "age_minutes": ranking.age_minutes(reported_at, now),
        "stale": stale,
        "matched_because": ranking.match_reasons(
            care_type=care_type,
            wanted_target_groups=[g.value for g in q.target_groups],
            sex=None if q.sex is None else q.sex.value,
            sex_policy=m["sex_policy"],
            wanted_features=[x.value for x in q.features],
            subregion_code=m["subregion_code"],
            escalation_rank=None if scope is None else rank,
            stale=stale,
        ),
    }


def _lean_rows(_: FastAPI) -> None:
    setattr(capacity_service, "search_rows", _search_rows_mappings)  # noqa: B010
    capacity_service._hit = cast(Any, _lean_hit)


def _patch_scope(fn: Any) -> Patch:
    def patch(_: FastAPI) -> None:
        capacity_service._scope = fn

    return patch


def _app(*patches: Patch) -> FastAPI:
    app = create_app()
    for patch in patches:
        patch(app)
    return app


def async_deps() -> FastAPI:
    return _app(_async_deps)


def scope_read() -> FastAPI:
    return _app(_patch_scope(_scope_read))


def scope_cached() -> FastAPI:
    return _app(_patch_scope(_scope_cached))


def lean_rows() -> FastAPI:
    return _app(_lean_rows)


def all_fixes() -> FastAPI:
    return _app(_async_deps, _patch_scope(_scope_cached), _lean_rows)
