"""Bare baselines for POST /v1/placements/{id}/holds: Starlette + asyncpg pool + orjson.

``HOLDS_BASELINE_MODE`` picks one (default ``one``):

* ``one``: the target of bench/README.md, described first below.
* ``full``: a diagnostic, described after it: the service's writes, same statements, one
  transaction.

``one``: the raw one-statement reservation (autocommit, one round trip): a
CTE whose conditional ``UPDATE unit_capacity SET held = held + 1 ... WHERE free - held > 0
RETURNING`` feeds the ``INSERT INTO placement_hold``; no row reserved -> 409. It answers with the
same JSON fields as the service (``HoldRead``).

What it does NOT do, and the service does (the price of the service's guarantees):
no auth or access check, no request validation beyond parsing the two ids, no placement load, no
state-machine check or ``triaged -> offered`` update (version check, consent check), no transfer
event, no outbox row or ``pg_notify``, no NEN 7513 audit row (chain head lock + HMAC chain), no
idempotency handling, and no BEGIN/COMMIT round trips. ``expires_at`` uses the hold expiry of the
seeded placements' urgency (U3) instead of reading the placement.

``full``: per request, in one transaction (BEGIN ... COMMIT, as asyncpg's ``transaction()``
sends them), the same 7 statements the service sends on PostgreSQL, in the same order. Their SQL
is compiled once, at start-up, from the service's own constants with SQLAlchemy's asyncpg dialect
(so the text, ``$n`` numbering and bind casts are the ones the service's engine sends):

1. the placement load + ``triaged -> offered`` CTE (``app.placement.holds._LOAD_OFFER``);
2. the reserve + hold insert CTE (``_RESERVE_HOLD``);
3. the ``offer_sent`` transfer-event insert (``app.placement.events._INSERT``, with its implicit
   ``RETURNING id``); ``offer_sent`` has no KPI summary statement, as in the service;
4. the outbox insert (``app.realtime.outbox``), with the service's payload (the service sends its
   ``pg_notify`` after the commit, batched on a connection of its own; the baseline sends none),
   and the second outbox insert, the Task notification (``app.placement.task_events``);
5. the lock of the placement's audit chain head, which also reads it and takes the row id
   (``app.audit.service._LOCK_ONE``);
6. the audit insert with the head update (``_INSERT_WITH_HEAD``), the row built by the service's
   ``_row`` and signed by ``row_mac`` with the service's key, so the chain verifies.

It checks what the SQL returns in the service's order (404 no placement, 409 not triaged, 409 no
consent, 422 inactive unit, 409 concurrent change, 409 no capacity) and rolls back on a refusal.
It does NOT do: auth or the access check (it acts as the first API key in ``api_key``, read once
at start-up, which is the benchmark's triagist); pydantic validation; the ``occurred_at``
skew/order checks beyond the default (``now``, or the previous event if later); idempotency;
the state-machine table lookup; the NOTIFY after the commit. One value differs from the service,
not the statements: ``webhooks_fanned_out_at`` is set at insert (so the service's webhook
dispatcher never fans the baseline's rows out).

    BENCH_DATABASE_URL=postgresql://... uvicorn bench.holds_baseline:app --workers 2
    HOLDS_BASELINE_MODE=full BENCH_DATABASE_URL=... uvicorn bench.holds_baseline:app ...
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
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.audit import service as audit
from app.audit.chain import GENESIS, row_mac
from app.audit.service import AuditContext, AuditEntry, _row, signing_keys
from app.config import Settings
from app.placement import events, holds, task_events
from app.principal import Principal, parse_roles
from app.realtime import outbox
from app.triage.urgency import hold_expiry

MODE = os.environ.get("HOLDS_BASELINE_MODE", "one")
if MODE not in ("one", "full"):
    raise SystemExit(f"HOLDS_BASELINE_MODE must be one or full, not {MODE!r}")
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
    return _created(hold_id, placement, unit, org, now, expires)


def _created(
    hold_id: uuid.UUID,
    placement: uuid.UUID,
    unit: uuid.UUID,
    org: uuid.UUID,
    now: datetime,
    expires: datetime,
) -> Response:
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


# --- HOLDS_BASELINE_MODE=full: the service's writes, same statements, one transaction -----------

PG_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


class Statement:
    """One of the service's SQLAlchemy constants, compiled once for asyncpg: ``$n`` text and the
    order of its bind names (a repeated name reuses its ``$n``)."""

    def __init__(self, stmt: Any, keys: list[str] | None = None) -> None:
        compiled = stmt.compile(dialect=PG_DIALECT, column_keys=keys)
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())

    def args(self, values: dict[str, Any]) -> list[Any]:
        return [values[n] for n in self.names]


def _statements() -> dict[str, Statement]:
    event_cols = [c.name for c in events._TABLE.columns if c.name != "id"]
    outbox_cols = [c.name for c in outbox._TABLE.columns if c.name != "id"]
    return {
        "load_offer": Statement(holds._LOAD_OFFER),
        "reserve_hold": Statement(holds._RESERVE_HOLD),
        "event": Statement(events._INSERT, event_cols),
        "outbox": Statement(outbox._INSERT, outbox_cols),
        "lock": Statement(audit._LOCK_ONE),
        "audit": Statement(audit._INSERT_WITH_HEAD),
    }


class Refused(Exception):
    def __init__(self, status: int, problem: str) -> None:
        self.status, self.problem = status, problem


def _refusal(exc: Refused) -> Response:
    body = {"type": f"/problems/{exc.problem}", "title": exc.problem, "status": exc.status}
    return Response(
        orjson.dumps(body), status_code=exc.status, media_type="application/problem+json"
    )


async def hold_full(request: Request) -> Response:
    st: dict[str, Statement] = G["statements"]
    placement = uuid.UUID(request.path_params["placement_id"])
    raw = orjson.loads(await request.body())
    unit = uuid.UUID(raw["unit_id"])
    given = datetime.fromisoformat(raw["occurred_at"]) if raw.get("occurred_at") else None
    hold_id, now = uuid.uuid4(), datetime.now(UTC)
    host = request.client.host if request.client is not None else None
    try:
        async with G["pool"].acquire() as conn, conn.transaction():
            p = await conn.fetchrow(
                st["load_offer"].sql,
                *st["load_offer"].args(
                    {
                        "placement_id": placement,
                        "unit_id": unit,
                        "hold_id": hold_id,
                        "given": given,
                        "now": now,
                    }
                ),
            )
            if p is None:
                raise Refused(404, "not-found")
            if p["state"] != "triaged":
                raise Refused(409, "invalid-transition")
            if p["consent_given_at"] is None:
                raise Refused(409, "consent-required")
            if p["unit_org"] is None:
                raise Refused(422, "invalid-input")
            previous = p["last_event_at"]
            at = given or (now if previous is None or previous <= now else previous)
            if p["moved"] != 1:
                raise Refused(409, "concurrent-change")
            org = p["unit_org"]
            expires = now + hold_expiry(p["urgency_level"])
            hold = {
                "id": hold_id,
                "placement_id": placement,
                "unit_id": unit,
                "org": org,
                "now": now,
                "expires_at": expires,
            }
            status = await conn.execute(st["reserve_hold"].sql, *st["reserve_hold"].args(hold))
            if status != "INSERT 0 1":
                raise Refused(409, "no-capacity")
            principal = G["principal"]
            seq = p["event_seq"] + 1
            event = {
                "placement_id": placement,
                "seq": seq,
                "event_type": "offer_sent",
                "occurred_at": at,
                "recorded_at": now,
                "actor_key_id": principal.key_id,
                "actor_organisation_id": principal.organisation_id,
                "from_state": p["state"],
                "to_state": "offered",
                "unit_id": unit,
                "hold_id": hold_id,
                "reason": None,
                "level": None,
                "payload": orjson.dumps({"expires_at": expires}, default=str).decode(),
            }
            await conn.fetchval(st["event"].sql, *st["event"].args(event))
            payload = {
                "placement_id": placement,
                "state": "offered",
                "event": "offer_sent",
                "seq": seq,
                "unit_id": unit,
                "hold_id": hold_id,
                "expires_at": expires,
            }
            created = datetime.now(UTC)
            row = {
                "event_id": uuid.uuid4(),
                "topic": "placement",
                "event_type": "placement.offer_sent",
                "payload": orjson.dumps(payload, default=str).decode(),
                "region_id": p["region_id"],
                "organisation_ids": ",".join(
                    sorted({str(p["referrer_organisation_id"]), str(org)})
                ),
                "created_at": created,
                "webhooks_fanned_out_at": created,
            }
            await conn.fetchrow(st["outbox"].sql, *st["outbox"].args(row))
            task = {"task": task_events.task_reference(G["public_url"], hold_id)}
            row |= {
                "event_id": uuid.uuid4(),
                "topic": "task",
                "event_type": "task.requested",
                "payload": orjson.dumps(task).decode(),
                "created_at": datetime.now(UTC),
            }
            row["webhooks_fanned_out_at"] = row["created_at"]
            await conn.fetchrow(st["outbox"].sql, *st["outbox"].args(row))
            chain = f"placement:{placement}"
            head = await conn.fetchrow(
                st["lock"].sql, *st["lock"].args({"chain": chain, "genesis": GENESIS})
            )
            ctx = AuditContext(principal=principal, access_point=host, request_id=uuid.uuid4().hex)
            entry = AuditEntry(
                event_code="placement.hold",
                action="U",
                object_id=str(placement),
                patient_key=p["patient_key"],
                detail={"unit_id": unit, "hold_id": hold_id},
            )
            audit = _row(ctx, entry, now)
            seq, prev, row_id = head[0] + 1, head[1], head[2]
            mac = row_mac(G["audit_key"], row_id=row_id, chain=chain, seq=seq, prev=prev, row=audit)
            audit |= {"id": row_id, "chain": chain, "chain_seq": seq, "prev_hash": prev}
            audit["hash"] = mac
            await conn.execute(st["audit"].sql, *st["audit"].args(audit))
    except Refused as exc:
        return _refusal(exc)
    return _created(hold_id, placement, unit, org, now, expires)


async def _principal(conn: asyncpg.Connection) -> Principal:
    key = await conn.fetchrow(
        "SELECT id, name, roles, organisation_id FROM api_key WHERE revoked_at IS NULL"
        " ORDER BY created_at LIMIT 1"
    )
    if key is None:
        raise SystemExit("full baseline: no API key to act as")
    return Principal(
        key_id=key["id"],
        name=key["name"],
        roles=parse_roles(key["roles"]),
        organisation_id=key["organisation_id"],
        region_id=None,
    )


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
        server_settings={"application_name": f"bench-holds-baseline-{MODE}"},
    )
    if MODE == "full":
        G["statements"] = _statements()
        G["audit_key"] = signing_keys().current
        G["public_url"] = Settings().public_url  # the Task address, as the service builds it
        async with pool.acquire() as conn:
            G["principal"] = await _principal(conn)
    yield
    await pool.close()


app = Starlette(
    routes=[
        Route(
            "/v1/placements/{placement_id}/holds",
            hold_full if MODE == "full" else hold,
            methods=["POST"],
        ),
        Route("/readyz", ready),
    ],
    lifespan=lifespan,
)
