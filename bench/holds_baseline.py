"""Bare baseline for POST /v1/placements/{id}/holds: Starlette + asyncpg pool + orjson.

The raw one-statement reservation of perf-notes.md §4 (autocommit, one round trip): a CTE whose
conditional ``UPDATE unit_capacity SET held = held + 1 ... WHERE free - held > 0 RETURNING`` feeds
the ``INSERT INTO placement_hold``; no row reserved -> 409. It answers with the same JSON fields
as the service (``HoldRead``).

What it does NOT do, and the service does (the price of the service's guarantees):
no auth or access check, no request validation beyond parsing the two ids, no placement load, no
state-machine check or ``triaged -> offered`` update (version check, consent check), no transfer
event, no outbox row or ``pg_notify``, no NEN 7513 audit row (advisory lock + hash chain), no
idempotency handling, and no BEGIN/COMMIT round trips. ``expires_at`` uses the hold expiry of the
seeded placements' urgency (U3) instead of reading the placement.

    BENCH_DATABASE_URL=postgresql://... uvicorn bench.holds_baseline:app --workers 2
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.triage.urgency import hold_expiry

EXPIRY = hold_expiry(3)  # the seeded placements are all urgency U3 (level 3)
SQL = (
    "WITH r AS (UPDATE unit_capacity SET held = held + 1"
    " WHERE unit_id = $2 AND free - held > 0 RETURNING unit_id)"
    " INSERT INTO placement_hold"
    " (id, placement_id, unit_id, organisation_id, status, created_at, expires_at)"
    " SELECT $3, $1, r.unit_id, l.organisation_id, 'active', $4, $5"
    " FROM r JOIN unit u ON u.id = r.unit_id JOIN location l ON l.id = u.location_id"
    " RETURNING organisation_id"
)
NO_CAPACITY = orjson.dumps({"type": "/problems/no-capacity", "title": "No capacity", "status": 409})
G: dict[str, Any] = {}


async def hold(request: Request) -> Response:
    placement = uuid.UUID(request.path_params["placement_id"])
    unit = uuid.UUID(orjson.loads(await request.body())["unit_id"])
    hold_id, now = uuid.uuid4(), datetime.now(UTC)
    expires = now + EXPIRY
    async with G["pool"].acquire() as conn:
        org = await conn.fetchval(SQL, placement, unit, hold_id, now, expires)
    if org is None:
        return Response(NO_CAPACITY, status_code=409, media_type="application/problem+json")
    body = {
        "id": hold_id,
        "placement_id": placement,
        "unit_id": unit,
        "organisation_id": org,
        "status": "active",
        "created_at": now,
        "expires_at": expires,
        "accepted_at": None,
        "admitted_at": None,
        "released_at": None,
        "release_reason": None,
    }
    data = orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z)
    return Response(data, status_code=201, media_type="application/json")


async def ready(_: Request) -> Response:
    async with G["pool"].acquire() as conn:
        await conn.fetchval("SELECT 1")
    return Response(b"{}", media_type="application/json")


async def _no_reset(_: asyncpg.Connection) -> None:
    """Skip the reset round trip on release: the baseline leaves no session state."""


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    dsn = os.environ["BENCH_DATABASE_URL"].replace("+asyncpg", "")
    size = int(os.environ.get("BENCH_POOL_SIZE", "16"))
    G["pool"] = pool = await asyncpg.create_pool(
        dsn,
        min_size=size,
        max_size=size,
        reset=_no_reset,
        server_settings={"application_name": "bench-holds-baseline"},
    )
    yield
    await pool.close()


app = Starlette(
    routes=[
        Route("/v1/placements/{placement_id}/holds", hold, methods=["POST"]),
        Route("/readyz", ready),
    ],
    lifespan=lifespan,
)
