"""Bare baseline for GET /v1/availability: Starlette + asyncpg pool + orjson.

Sends the exact SQL text the service sends (compiled once per query shape from
``app.capacity.queries``) and does the same per-row shaping, so its JSON equals the service's.
No auth, no validation, and the (static) subregion graph is loaded once at start-up.
    BENCH_DATABASE_URL=postgresql://... uvicorn bench.baseline_app:app --workers 2
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.capacity import admission, ranking
from app.capacity.queries import _statement
from app.config import Settings
from app.enums import Feature, TargetGroup, codes_of, is_closed, mask_of

SETTINGS = Settings()
SEX = {"male": ("any", "male"), "female": ("any", "female"), "other": ("any",), "unknown": ("any",)}
DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
G: dict[str, Any] = {}  # pool and subregion graph, per worker
_SQL: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}
SAME: tuple[str, ...] = (
    "unit_id",
    "unit_name",
    "care_type",
    "label",
    "sex_policy",
    "staffed_capacity",
    "held",
)
SAME += ("expected_free_24h", "reported_at")
LOC = ("address", "postcode", "municipality", "latitude", "longitude", "phone")


def _sql(shape: tuple[Any, ...], p: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The service's statement text for this shape, rendered once, and its parameter order."""
    key = (*shape, len(p["care_types"]), len(p.get("sex_policies", ())))
    if (hit := _SQL.get(key)) is None:
        compiled = (
            _statement(*shape)
            .params(**p)
            .compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
        )
        hit = _SQL[key] = (compiled.string, tuple(compiled.positiontup or ()))
    return hit


def _arg(name: str, p: dict[str, Any]) -> Any:  # "care_types_2" -> p["care_types"][1]
    if name in p:
        return p[name]
    base, _, i = name.rpartition("_")
    return p[base][int(i) - 1]


def _hit(
    r: Any, scope: Any, near: Any, now: datetime, tgs: Any, sex: Any, feats: Any, at: datetime
) -> Any:
    rank = 0 if scope is None else scope.rank_of(r["subregion_id"])
    admits_now, next_admission_at = admission.admission_fields(r["admission_hours"], at)
    stale = ranking.is_stale(r["reported_at"], now, SETTINGS.stale_after(r["care_type"]))
    closed = is_closed(r["closed_reason"], r["closed_until"], now)
    lat, lon = r["latitude"], r["longitude"]
    return {
        **{k: r[k] for k in SAME},
        "target_groups": codes_of(r["target_group_mask"], TargetGroup),
        "features": codes_of(r["feature_mask"], Feature),
        "available": max(0, r["free"] - r["held"]),
        "reported_free": r["free"],
        "organisation": {"id": r["organisation_id"], "name": r["organisation_name"]},
        "location": {"id": r["location_id"], "name": r["location_name"], **{k: r[k] for k in LOC}},
        "subregion": {
            "id": r["subregion_id"],
            "code": r["subregion_code"],
            "name": r["subregion_name"],
        },
        "escalation_level": "subregion" if rank == 0 and scope is not None else "region",
        "escalation_rank": rank,
        "distance_km": None
        if near is None
        else round(ranking.haversine_km(near[0], near[1], lat, lon), 2),
        "age_minutes": ranking.age_minutes(r["reported_at"], now),
        "stale": stale,
        "accepting": not closed,
        "not_accepting_reason": r["closed_reason"] if closed else None,
        "not_accepting_detail": r["closed_detail"] if closed else None,
        "not_accepting_until": r["closed_until"] if closed else None,
        "admits_now": admits_now,
        "next_admission_at": next_admission_at,
        "source": None,  # a unit of this region (the service adds partner units only when asked)
        "matched_because": ranking.match_reasons(
            care_type=r["care_type"],
            wanted_target_groups=tgs,
            sex=sex,
            sex_policy=r["sex_policy"],
            wanted_features=feats,
            subregion_code=r["subregion_code"],
            escalation_rank=None if scope is None else rank,
            stale=stale,
        ),
    }


async def availability(request: Request) -> Response:
    q = request.query_params
    tgs, feats, sex, near_s = q.getlist("target_group"), q.getlist("features"), q.get("sex"), None
    scope, now, ref = None, datetime.now(UTC), q.get("subregion")
    if ref is not None:
        own, region = G["subs"][ref]
        nbs, region_subs = G["neighbours"].get(own, []), G["regions"][region]
        scope = ranking.search_scope(own, nbs, region_subs, escalate=q.get("escalate") == "true")
    near = tuple(map(float, near_s.split(","))) if (near_s := q.get("near")) else None
    p: dict[str, Any] = {"care_types": q.getlist("care_type"), "tg_mask": mask_of(tgs, TargetGroup)}
    p["feature_mask"] = mask_of(feats, Feature)
    p["now"] = now
    if sex is not None:
        p["sex_policies"] = list(SEX[sex])
    if scope is not None:
        p["subregions"] = list(scope.subregion_ids)
        p.update({f"sub_{i}": s for i, s in enumerate(scope.subregion_ids)})
    if fresh := q.get("include_stale") != "true":
        p["fresh_bed"] = now - SETTINGS.stale_after("elv_low")
        p["fresh_dn"] = now - SETTINGS.stale_after("district_nursing")
    if near is not None:
        p["lat"], p["lon"], p["lon_scale"] = near[0], near[1], ranking.lon_scale(near[0])
    n_subs = None if scope is None else len(scope.subregion_ids)
    shape = (n_subs, sex is not None, fresh, near is not None, int(q.get("limit", 50)))
    sql, names = _sql(shape, p)
    async with G["pool"].acquire() as conn:
        rows = await conn.fetch(sql, *[_arg(n, p) for n in names])
    at = datetime.fromisoformat(a) if (a := q.get("admitting_at")) else now
    items = admission.order_hits([_hit(r, scope, near, now, tgs, sex, feats, at) for r in rows])
    body = {
        "items": items,
        "count": len(items),
        "escalated": scope is not None and scope.escalated,
        "searched_subregions": [] if scope is None else [str(s) for s in scope.subregion_ids],
        "generated_at": now,
        "partners": [],
    }
    data = orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z)
    return Response(data, media_type="application/json")


async def _no_reset(_: asyncpg.Connection) -> None:
    """Skip the default reset round trip on release: the baseline leaves no session state,
    and SQLAlchemy's pool sends nothing on check-in of an AUTOCOMMIT connection either."""


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    dsn = os.environ["BENCH_DATABASE_URL"].replace("+asyncpg", "")
    size = int(os.environ.get("BENCH_POOL_SIZE", "16"))
    G["pool"] = pool = await asyncpg.create_pool(
        dsn,
        min_size=size,
        max_size=size,
        reset=_no_reset,
        server_settings={"application_name": "bench-baseline"},
    )
    subs = await pool.fetch("SELECT id, code, region_id FROM subregion")
    G["subs"] = {k: (s["id"], s["region_id"]) for s in subs for k in (s["code"], str(s["id"]))}
    G["regions"] = {}
    for s in subs:
        G["regions"].setdefault(s["region_id"], []).append(s["id"])
    G["neighbours"] = {}
    for n in await pool.fetch("SELECT * FROM subregion_neighbour ORDER BY subregion_id, rank"):
        G["neighbours"].setdefault(n["subregion_id"], []).append(n["neighbour_id"])
    yield
    await pool.close()


app = Starlette(routes=[Route("/v1/availability", availability)], lifespan=lifespan)
