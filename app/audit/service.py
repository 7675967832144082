"""NEN 7513 access log (docs/domain.md §10.1): append in the audited transaction, list, verify.

Appends are serialised so the rows form one hash chain in id order: on PostgreSQL by a
transaction-scoped advisory lock taken just before the append (the last lock any transaction
takes, so it cannot deadlock with row locks), on SQLite by ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import LargeBinary, Select, Table, Uuid, bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.chain import GENESIS, HASHED_FIELDS, fields_json, row_hash
from app.audit.models import AuditLog
from app.audit.schemas import AuditEntryRead, AuditVerifyResult
from app.auth.principal import Principal, format_roles
from app.db import Database, UTCDateTime, utcnow
from app.enums import Role
from app.pagination import cursor_int
from app.schemas import encode_cursor

SOURCE = "juisteplek-api"
# Any constant works; it only has to be the same in every app instance.
_CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(75130001)")
_LAST_HASH = text("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
_TABLE = cast(Table, AuditLog.__table__)
_INSERT = insert(_TABLE)


def _chained_insert_sql() -> str:
    casts = {"occurred_at": "timestamptz", "user_id": "uuid", "organisation_id": "uuid"}
    values = ", ".join(
        f"CAST(:{f} AS {casts[f]})" if f in casts else f":{f}" for f in HASHED_FIELDS
    )
    # row_hash hashes orjson.dumps([prev, fields]); prev is a hex digest (or GENESIS), which JSON
    # needs no escape for, so those bytes are '["' + prev + '",' + orjson.dumps(fields) + ']'.
    # Python sends the part after prev (``tail``); PostgreSQL adds the head it just read.
    hash_expr = ", h.prev, encode(sha256(convert_to('[\"' || h.prev || '\",', 'UTF8') || :tail),"
    last = "(SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1)"
    return "".join(
        (
            "INSERT INTO audit_log (",
            ", ".join(HASHED_FIELDS),
            ", prev_hash, hash) SELECT ",
            values,
            hash_expr,
            " 'hex') FROM (SELECT coalesce(",
            last,
            ", :genesis) AS prev) AS h",
        )
    )


# PostgreSQL, one entry: the last-hash read and the insert as one statement, after the lock.
# Under READ COMMITTED the statement's snapshot is taken after the lock is granted, so it sees the
# row the previous holder committed, exactly as the separate read did.
_INSERT_CHAINED = text(_chained_insert_sql()).bindparams(
    bindparam("occurred_at", type_=UTCDateTime()),
    bindparam("user_id", type_=Uuid()),
    bindparam("organisation_id", type_=Uuid()),
    bindparam("tail", type_=LargeBinary()),
)


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who is acting, from where and why: the user and access-point fields of a log entry."""

    principal: Principal
    on_behalf_of: str | None = None
    access_point: str | None = None
    purpose: str | None = None
    request_id: str | None = None

    @property
    def effective_purpose(self) -> str:
        if self.purpose:
            return self.purpose
        return "operations" if self.principal.is_admin else "treatment"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened to which object (the event and participant-object fields)."""

    event_code: str
    action: str  # C R U D E
    object_type: str = "placement"
    object_id: str | None = None
    patient_key: str | None = None
    outcome: str = "success"
    detail: dict[str, Any] = field(default_factory=dict)


def _row(ctx: AuditContext, entry: AuditEntry, now: datetime) -> dict[str, Any]:
    p = ctx.principal
    return {
        "event_code": entry.event_code,
        "action": entry.action,
        "occurred_at": now,
        "outcome": entry.outcome,
        "user_id": p.key_id,
        # A person is named with their email, so the log identifies them even after a rename.
        "user_display": (f"{p.name} <{p.user_email}>" if p.user_email else p.name)[:200],
        "on_behalf_of": ctx.on_behalf_of,
        "role": format_roles(p.roles),
        "organisation_id": p.organisation_id,
        "access_point": ctx.access_point,
        "source": SOURCE,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "patient_key": entry.patient_key,
        "purpose": ctx.effective_purpose,
        "request_id": ctx.request_id,
        "detail": orjson.dumps(entry.detail, option=orjson.OPT_SORT_KEYS, default=str).decode(),
    }


async def append(
    session: AsyncSession,
    ctx: AuditContext,
    entries: Sequence[AuditEntry],
    *,
    now: datetime | None = None,
) -> None:
    """Chain ``entries`` onto the log in the caller's transaction; call it last before commit."""
    if not entries:
        return
    conn = await session.connection()
    at = now or utcnow()
    if conn.dialect.name == "postgresql":
        await conn.execute(_CHAIN_LOCK)
        if len(entries) == 1:
            row = _row(ctx, entries[0], at)
            tail = fields_json(row) + b"]"
            await conn.execute(_INSERT_CHAINED, {**row, "tail": tail, "genesis": GENESIS})
            return
    prev = (await conn.execute(_LAST_HASH)).scalar() or GENESIS
    rows = []
    for entry in entries:
        row = _row(ctx, entry, at)
        row["prev_hash"] = prev
        row["hash"] = prev = row_hash(prev, row)
        rows.append(row)
    # One row (every request but a few) as a single execute, not the executemany path.
    await conn.execute(_INSERT, rows[0] if len(rows) == 1 else rows)


async def log_denied(
    db: Database,
    ctx: AuditContext,
    *,
    event_code: str,
    action: str,
    object_id: str | None,
    detail: dict[str, Any],
) -> None:
    """Log a refused attempt (403) in its own transaction: the request's own one rolled back."""
    async with db.sessionmaker() as session:
        patient_key = None
        if object_id is not None:
            try:
                pid = uuid.UUID(object_id)
            except ValueError:
                pid = None
            if pid is not None:
                from app.placement.models import Placement

                patient_key = await session.scalar(
                    select(Placement.patient_key).where(Placement.id == pid)
                )
        await append(
            session,
            ctx,
            [
                AuditEntry(
                    event_code=event_code,
                    action=action,
                    object_id=object_id,
                    patient_key=patient_key,
                    outcome="failure",
                    detail=detail,
                )
            ],
        )
        await session.commit()


def _read(row: AuditLog) -> AuditEntryRead:
    return AuditEntryRead(
        id=row.id,
        event_code=row.event_code,
        action=row.action,
        occurred_at=row.occurred_at,
        outcome=row.outcome,
        user_id=row.user_id,
        user_display=row.user_display,
        on_behalf_of=row.on_behalf_of,
        role=row.role,
        organisation_id=row.organisation_id,
        access_point=row.access_point,
        source=row.source,
        object_type=row.object_type,
        object_id=row.object_id,
        patient_key=row.patient_key,
        purpose=row.purpose,
        request_id=row.request_id,
        detail=orjson.loads(row.detail),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@dataclass(frozen=True)
class AuditQuery:
    patient_key: str | None = None
    object_id: str | None = None
    key_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None
    action: str | None = None  # C R U D E
    cursor: str | None = None
    limit: int = 100


async def list_entries(
    session: AsyncSession, ctx: AuditContext, q: AuditQuery
) -> tuple[list[AuditEntryRead], str | None]:
    """Admin view of the log, oldest first: per patient key, who accessed it (NEN 7513 ch. 9).

    Reading the log is itself logged, in the same transaction, which this function commits.
    """
    ctx.principal.require(Role.ADMIN)
    stmt: Select[Any] = select(AuditLog)
    if q.patient_key is not None:
        stmt = stmt.where(AuditLog.patient_key == q.patient_key)
    if q.object_id is not None:
        stmt = stmt.where(AuditLog.object_id == q.object_id)
    if q.key_id is not None:
        stmt = stmt.where(AuditLog.user_id == q.key_id)
    if q.since is not None:
        stmt = stmt.where(AuditLog.occurred_at >= q.since)
    if q.until is not None:
        stmt = stmt.where(AuditLog.occurred_at < q.until)
    if q.outcome is not None:
        stmt = stmt.where(AuditLog.outcome == q.outcome)
    if q.action is not None:
        stmt = stmt.where(AuditLog.action == q.action)
    if q.cursor is not None:
        stmt = stmt.where(AuditLog.id > cursor_int(q.cursor))
    rows = (await session.scalars(stmt.order_by(AuditLog.id).limit(q.limit + 1))).all()
    nxt = encode_cursor(str(rows[q.limit - 1].id)) if len(rows) > q.limit else None
    items = [_read(r) for r in rows[: q.limit]]
    filters = {
        "patient_key": q.patient_key,
        "object_id": q.object_id,
        "key_id": q.key_id,
        "from": q.since,
        "to": q.until,
        "outcome": q.outcome,
        "action": q.action,
    }
    await append(
        session,
        ctx,
        [
            AuditEntry(
                event_code="audit.search",
                action="E",
                object_type="audit_log",
                patient_key=q.patient_key,
                detail={
                    "filters": {k: v for k, v in filters.items() if v is not None},
                    "returned": len(items),
                },
            )
        ],
    )
    await session.commit()
    return items, nxt


async def verify(db: Database, *, batch: int = 5_000) -> AuditVerifyResult:
    """Walk the chain in id order; report the first row whose links or hash do not match."""
    prev = GENESIS
    count = 0
    last_id = 0
    columns = [c.name for c in _TABLE.columns]
    async with db.read() as conn:
        while True:
            rows = (
                await conn.execute(
                    select(_TABLE).where(_TABLE.c.id > last_id).order_by(_TABLE.c.id).limit(batch)
                )
            ).all()
            if not rows:
                return AuditVerifyResult(rows=count, ok=True)
            for raw in rows:
                row: dict[str, Any] = dict(zip(columns, raw, strict=True))
                if row["prev_hash"] != prev:
                    return AuditVerifyResult(
                        rows=count,
                        ok=False,
                        first_bad_id=row["id"],
                        problem="prev_hash does not match the previous row (row removed or moved)",
                    )
                if row_hash(prev, row) != row["hash"]:
                    return AuditVerifyResult(
                        rows=count,
                        ok=False,
                        first_bad_id=row["id"],
                        problem="hash does not match the row's content (row altered)",
                    )
                prev = row["hash"]
                count += 1
                last_id = row["id"]
