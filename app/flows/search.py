"""Searching free places: this region's units (``app.capacity``), partner regions' units
(``app.exchange.federation``), the shortage count of a search without result (``app.kpi``), and
the search for one placement's patient (``app.placement``)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditContext
from app.capacity.service import ScopeResolver, SearchQuery, search_local
from app.config import Settings
from app.db import Database
from app.exchange import federation
from app.kpi import queries as kpi_queries
from app.placement import service as placement_service
from app.placement import views as placement_views
from app.placement.schemas import PlacementRead
from app.principal import Principal

log = structlog.get_logger("juisteplek.capacity")


async def search_availability(
    db: Database,
    principal: Principal,
    q: SearchQuery,
    *,
    now: datetime,
    settings: Settings,
    scopes: ScopeResolver | None = None,
    session: AsyncSession | None = None,
) -> dict[str, Any]:
    """Free places matching the query, ranked as docs/domain.md §8 describes; with
    ``include_partners`` partner regions' units follow the own ones.

    Returns the ``AvailabilityResult`` document as plain data: this is the hot read path, and
    building models only to serialise them again would double its CPU cost. A search without
    result is counted (docs/domain.md §6.10): in its own transaction, or within ``session``'s
    when the search is part of a write (triage), which then commits it.
    """
    local = await search_local(db, principal, q, now=now, settings=settings, scopes=scopes)
    scope, items = local.scope, local.items
    partners: list[dict[str, Any]] = []
    if q.include_partners:  # beyond the own region: partner regions' units, after the own ones
        found, partners = await federation.partner_hits(
            db,
            care_types=local.care_types,
            target_groups=[g.value for g in q.target_groups],
            sex=None if q.sex is None else q.sex.value,
            features=[x.value for x in q.features],
            near=local.near,
            include_stale=q.include_stale,
            include_not_accepting=q.include_not_accepting,
            limit=q.limit,
            rank=1 if scope is None else len(scope.subregion_ids),
            now=now,
        )
        items += found
    if not items:  # a shortage moment: one insert, only when it happens
        home = None if scope is None or not scope.subregion_ids else str(scope.subregion_ids[0])
        region = None if principal.region_id is None else str(principal.region_id)
        rows = [("search_empty", region, home, c, now) for c in local.care_types]
        try:
            if session is None:
                async with db.engine.begin() as conn:
                    await kpi_queries.record_shortage(conn, rows)
            else:
                async with session.begin_nested():
                    await kpi_queries.record_shortage(await session.connection(), rows)
        except Exception as exc:  # a KPI count must never fail the search itself
            log.warning("shortage_not_recorded", error=repr(exc)[:200])
    return {
        "items": items,
        "count": len(items),
        "escalated": (scope is not None and scope.escalated) or q.include_partners,
        "searched_subregions": [] if scope is None else [str(s) for s in scope.subregion_ids],
        "generated_at": now,
        "partners": partners,
    }


def for_placement(q: SearchQuery, placement: PlacementRead) -> SearchQuery:
    """The search for one placement's patient: its care type, subregion, sex and target group
    where the query leaves them out, and its needed features added to the query's."""
    subregion = q.subregion
    if subregion is None and placement.subregion_id is not None:
        subregion = str(placement.subregion_id)
    return replace(
        q,
        care_types=q.care_types or (placement.care_type,),
        target_groups=q.target_groups or (placement.target_group,),
        sex=q.sex or placement.sex,
        features=q.features + tuple(f for f in placement.features if f not in q.features),
        subregion=subregion,
    )


async def search_for_placement(
    db: Database,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    q: SearchQuery,
    *,
    now: datetime,
    settings: Settings,
    scopes: ScopeResolver | None = None,
) -> dict[str, Any]:
    """Free places for one placement's patient (``for_placement``), each hit with
    ``earlier_hold``: how this placement's last hold on that unit ended (declined, expired), so a
    triagist looking again after a decline sees which providers were asked. The placement read
    is logged (NEN 7513)."""
    async with db.sessionmaker() as session:
        placement = await placement_service.get_placement(session, ctx, placement_id, now=now)
        earlier = await placement_views.ended_holds(session, placement_id)
    # The session is closed before searching: on SQLite the search reads on its own connection.
    found = await search_availability(
        db, ctx.principal, for_placement(q, placement), now=now, settings=settings, scopes=scopes
    )
    for hit in found["items"]:
        hit["earlier_hold"] = earlier.get(uuid.UUID(str(hit["unit_id"])))
    return found
