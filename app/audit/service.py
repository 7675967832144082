"""NEN 7513 access log (docs/audit.md): append in the audited transaction, list, verify.

Rows go into one chain per object (``app.audit.chain``). An append locks the heads of the chains
it extends (``audit_chain_head`` rows, in chain order, so appends cannot deadlock each other),
reads their last position and hash, and inserts its rows with HMACs computed here; the key
never reaches the database. Writes about different placements touch different heads and do not
wait on each other. On SQLite every write transaction is ``BEGIN IMMEDIATE`` anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Select,
    Table,
    Uuid,
    bindparam,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit.chain import (
    GENESIS,
    HASHED_FIELDS,
    LEGACY_CHAIN,
    chain_of,
    checkpoint_signature,
    key_fingerprint,
    matches,
    row_hash,
    row_mac,
)
from app.audit.models import AuditChainHead, AuditCheckpoint, AuditCheckpointHead, AuditLog
from app.audit.schemas import AuditEntryRead, AuditVerifyResult, CheckpointRead
from app.config import Settings, get_settings
from app.db import Database, UTCDateTime, driver_args, driver_connection, utcnow
from app.enums import Role
from app.pagination import Keyset
from app.principal import Principal, format_roles

SOURCE = "juisteplek-api"
# Anyone can read this; with it the log is only as good as an unkeyed hash chain.
DEVELOPMENT_SIGNING_KEY = b"juisteplek development audit key: not secret, not for production"
# Serialises checkpoint writers (instances, the CLI); audited writes never take it.
_CHECKPOINT_LOCK = text("SELECT pg_try_advisory_xact_lock(75130002)")
_TABLE = cast(Table, AuditLog.__table__)
_HEAD = cast(Table, AuditChainHead.__table__)
_CHECKPOINT = cast(Table, AuditCheckpoint.__table__)
_CHECKPOINT_HEAD = cast(Table, AuditCheckpointHead.__table__)
_INSERT = insert(_TABLE)
_UPDATE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.chain == bindparam("h_chain"))
    .values(seq=bindparam("h_seq"), hash=bindparam("h_hash"))
)
_ROW_COLUMNS = ("id", *HASHED_FIELDS, "chain", "chain_seq", "prev_hash", "hash")


def _insert_with_head_sql() -> str:
    casts = {"occurred_at": "timestamptz", "user_id": "uuid", "organisation_id": "uuid"}
    values = ", ".join(f"CAST(:{c} AS {casts[c]})" if c in casts else f":{c}" for c in _ROW_COLUMNS)
    head = "UPDATE audit_chain_head SET seq = :chain_seq, hash = :hash WHERE chain = :chain"
    columns = ", ".join(_ROW_COLUMNS)
    return f"WITH h AS ({head}) INSERT INTO audit_log ({columns}) VALUES ({values})"  # noqa: S608


# PostgreSQL, one entry (the hot path): the row and its chain's new head in one statement.
_INSERT_WITH_HEAD = text(_insert_with_head_sql()).bindparams(
    bindparam("id", type_=BigInteger()),
    bindparam("chain_seq", type_=BigInteger()),
    bindparam("occurred_at", type_=UTCDateTime()),
    bindparam("user_id", type_=Uuid()),
    bindparam("organisation_id", type_=Uuid()),
)


# PostgreSQL, one entry: lock (or create) the chain's head, read it, and take the row's id.
_LOCK_ONE = text(
    "INSERT INTO audit_chain_head (chain, seq, hash, checkpointed_seq) "
    "VALUES (:chain, 0, :genesis, 0) "
    "ON CONFLICT (chain) DO UPDATE SET seq = audit_chain_head.seq "
    "RETURNING seq, hash, nextval('audit_log_id_seq')"
)


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """The HMAC key new rows and checkpoints are signed with, and earlier keys that verify."""

    current: bytes
    previous: tuple[bytes, ...] = ()
    development: bool = False

    @property
    def all(self) -> tuple[bytes, ...]:
        return (self.current, *self.previous)


def signing_keys(settings: Settings | None = None) -> SigningKeys:
    """From ``JUISTEPLEK_AUDIT_SIGNING_KEY`` (+ ``…_PREVIOUS_SIGNING_KEYS``); outside production
    a missing key falls back to a public development key (``verify`` says so)."""
    s = settings or get_settings()
    previous: tuple[bytes, ...] = ()
    if s.audit_previous_signing_keys is not None:
        previous = tuple(
            k.strip().encode() for k in s.audit_previous_signing_keys.get_secret_value().split(",")
        )
        previous = tuple(k for k in previous if k)
    if s.audit_signing_key is None:
        return SigningKeys(DEVELOPMENT_SIGNING_KEY, previous, development=True)
    return SigningKeys(s.audit_signing_key.get_secret_value().encode(), previous)


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


async def _lock_heads(conn: AsyncConnection, chains: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Lock the heads of ``chains`` (sorted: a fixed order, so no deadlock between appends),
    creating missing ones, and return each chain's (last position, last hash)."""
    ins = pg_insert(_HEAD) if conn.dialect.name == "postgresql" else sqlite_insert(_HEAD)
    stmt = (
        ins.values([{"chain": c, "seq": 0, "hash": GENESIS, "checkpointed_seq": 0} for c in chains])
        .on_conflict_do_update(index_elements=[_HEAD.c.chain], set_={"seq": _HEAD.c.seq})
        .returning(_HEAD.c.chain, _HEAD.c.seq, _HEAD.c.hash)
    )
    return {r[0]: (int(r[1]), r[2]) for r in await conn.execute(stmt)}


async def _new_ids(conn: AsyncConnection, n: int) -> list[int]:
    """Ids for ``n`` rows, taken while their chains' heads are locked (so ids grow in a chain)."""
    if conn.dialect.name == "postgresql":
        rows = await conn.execute(
            text("SELECT nextval('audit_log_id_seq') FROM generate_series(1, :n)"), {"n": n}
        )
        return sorted(int(r[0]) for r in rows)
    # SQLite: the one writer holds the database lock (BEGIN IMMEDIATE).
    last: int = (await conn.execute(select(func.coalesce(func.max(_TABLE.c.id), 0)))).scalar_one()
    return [int(last) + i for i in range(1, n + 1)]


def _driver_args(conn: AsyncConnection, stmt: Any, params: dict[str, Any]) -> list[Any]:
    args = driver_args(conn, stmt, params)
    if args is None:  # both statements take exactly the values given
        raise RuntimeError(f"not a statement for the driver: {stmt}")
    return args


async def append(
    session: AsyncSession,
    ctx: AuditContext,
    entries: Sequence[AuditEntry],
    *,
    now: datetime | None = None,
) -> None:
    """Chain ``entries`` onto the log in the caller's transaction; call it last before commit
    (its head locks are then held for the shortest time)."""
    if not entries:
        return
    conn = await session.connection()
    at = now or utcnow()
    key = signing_keys().current
    by_chain: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        row = _row(ctx, entry, at)
        by_chain.setdefault(
            chain_of(row["object_type"], row["object_id"], row["user_id"]), []
        ).append(row)
    chains = sorted(by_chain)
    if len(entries) == 1 and conn.dialect.name == "postgresql":
        # The hot path: two statements, as with the single chain's advisory lock before.
        # Straight to the driver (``app.db.driver_args``), as the rest of the hot path.
        driver = await driver_connection(conn)
        lock = {"chain": chains[0], "genesis": GENESIS}
        head = await driver.fetchrow(*_driver_args(conn, _LOCK_ONE, lock))
        seq, prev, row_id = int(head[0]), str(head[1]), int(head[2])
        row = by_chain[chains[0]][0]
        mac = row_mac(key, row_id=row_id, chain=chains[0], seq=seq + 1, prev=prev, row=row)
        row |= {"id": row_id, "chain": chains[0], "chain_seq": seq + 1, "prev_hash": prev}
        await driver.execute(*_driver_args(conn, _INSERT_WITH_HEAD, row | {"hash": mac}))
        return
    heads = await _lock_heads(conn, chains)
    ids = iter(await _new_ids(conn, len(entries)))
    rows: list[dict[str, Any]] = []
    new_heads: list[dict[str, Any]] = []
    for chain in chains:
        seq, prev = heads[chain]
        for row in by_chain[chain]:
            seq += 1
            row_id = next(ids)
            mac = row_mac(key, row_id=row_id, chain=chain, seq=seq, prev=prev, row=row)
            row |= {"id": row_id, "chain": chain, "chain_seq": seq, "prev_hash": prev, "hash": mac}
            prev = mac
            rows.append(row)
        new_heads.append({"h_chain": chain, "h_seq": seq, "h_hash": prev})
    await conn.execute(_UPDATE_HEAD, new_heads[0] if len(new_heads) == 1 else new_heads)
    # One row (every request but a few) as a single execute, not the executemany path.
    await conn.execute(_INSERT, rows[0] if len(rows) == 1 else rows)


# The placement package resolves patient keys for the log: placement id -> patient key (absent ids
# are left out). The access log stays below the domains whose reads it records.
PatientKeys = Callable[[AsyncSession, Sequence[uuid.UUID]], Awaitable[Mapping[uuid.UUID, str]]]


async def _patient_key(
    session: AsyncSession, object_id: str | None, patient_keys: PatientKeys
) -> str | None:
    """The patient key of the placement ``object_id`` names, if it names one."""
    if object_id is None:
        return None
    try:
        pid = uuid.UUID(object_id)
    except ValueError:
        return None
    return (await patient_keys(session, [pid])).get(pid)


async def log_replay(
    session: AsyncSession,
    ctx: AuditContext,
    *,
    event_code: str,
    action: str,
    object_id: str | None,
    status: int,
    patient_keys: PatientKeys,
) -> None:
    """Log an idempotent replay (the first response sent again, which may carry patient data)
    and commit it: the replayed request's own write was done by the first request."""
    await append(
        session,
        ctx,
        [
            AuditEntry(
                event_code=event_code,
                action=action,
                object_id=object_id,
                patient_key=await _patient_key(session, object_id, patient_keys),
                outcome="success" if status < 400 else "failure",
                detail={"replay": True, "status": status},
            )
        ],
    )
    await session.commit()


async def log_stream_replay(
    db: Database,
    ctx: AuditContext,
    events: dict[uuid.UUID, list[int]],
    patient_keys: PatientKeys,
) -> None:
    """One row per placement whose events a stream replays after ``Last-Event-ID``."""
    if not events:
        return
    async with db.sessionmaker() as session:
        keys = await patient_keys(session, list(events))
        await append(
            session,
            ctx,
            [
                AuditEntry(
                    event_code="placement.stream.replay",
                    action="R",
                    object_id=str(pid),
                    patient_key=keys.get(pid),
                    detail={"event_ids": ids},
                )
                for pid, ids in sorted(events.items())
            ],
        )
        await session.commit()


async def log_denied(
    db: Database,
    ctx: AuditContext,
    *,
    event_code: str,
    action: str,
    object_id: str | None,
    detail: dict[str, Any],
    patient_keys: PatientKeys,
) -> None:
    """Log a refused attempt (403) in its own transaction: the request's own one rolled back."""
    async with db.sessionmaker() as session:
        patient_key = await _patient_key(session, object_id, patient_keys)
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
    return AuditEntryRead.model_validate(row, from_attributes=True)


_ORDER = Keyset(AuditLog.id)


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
    rows, nxt = await _ORDER.scalars(session, stmt, q.cursor, q.limit)
    items = [_read(r) for r in rows]
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


# --- checkpoints and verification ----------------------------------------------------------


CHECKPOINT_BATCH = 1_000


async def checkpoint(
    db: Database,
    *,
    keys: SigningKeys | None = None,
    now: datetime | None = None,
    batch: int = CHECKPOINT_BATCH,
) -> CheckpointRead | None:
    """Sign the heads of up to ``batch`` chains that grew since they were last signed (None:
    none did, or another instance is writing a checkpoint right now).

    Never waits for an audited write: heads locked by an append in progress are skipped (the
    next checkpoint signs them), and a small batch keeps its own locks short."""
    keys = keys or signing_keys()
    at = now or utcnow()
    async with db.sessionmaker() as session:
        conn = await session.connection()
        if (
            conn.dialect.name == "postgresql"
            and not (await conn.execute(_CHECKPOINT_LOCK)).scalar()
        ):
            return None
        last = (
            await conn.execute(
                select(_CHECKPOINT.c.number, _CHECKPOINT.c.signature)
                .order_by(_CHECKPOINT.c.number.desc())
                .limit(1)
            )
        ).first()
        heads = (
            await conn.execute(
                select(_HEAD.c.chain, _HEAD.c.seq, _HEAD.c.hash)
                .where(_HEAD.c.seq > _HEAD.c.checkpointed_seq)
                .order_by(_HEAD.c.chain)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not heads:
            return None
        number = 1 if last is None else int(last[0]) + 1
        prev = GENESIS if last is None else str(last[1])
        entries = [(str(c), int(cast(int, q)), str(h)) for c, q, h in heads]
        signature = checkpoint_signature(
            keys.current, number=number, created_at=at, prev_signature=prev, entries=entries
        )
        await conn.execute(
            update(_HEAD)
            .where(_HEAD.c.chain == bindparam("h_chain"))
            .values(checkpointed_seq=bindparam("h_seq")),
            [{"h_chain": c, "h_seq": q} for c, q, _ in entries],
        )
        await conn.execute(
            insert(_CHECKPOINT).values(
                number=number,
                created_at=at,
                heads=len(entries),
                key_id=key_fingerprint(keys.current),
                prev_signature=prev,
                signature=signature,
            )
        )
        await conn.execute(
            insert(_CHECKPOINT_HEAD),
            [{"checkpoint": number, "chain": c, "seq": q, "hash": h} for c, q, h in entries],
        )
        await session.commit()
        return CheckpointRead(number=number, created_at=at, heads=len(entries), signature=signature)


async def checkpoint_all(
    db: Database,
    *,
    keys: SigningKeys | None = None,
    now: datetime | None = None,
    batch: int = CHECKPOINT_BATCH,
) -> list[CheckpointRead]:
    """Checkpoints of ``batch`` heads each until every grown head is signed (or skipped)."""
    done: list[CheckpointRead] = []
    while True:
        signed = await checkpoint(db, keys=keys, now=now, batch=batch)
        if signed is None:
            return done
        done.append(signed)
        if signed.heads < batch:
            return done


@dataclass
class _Problem:
    chain: str | None
    position: int | None
    row_id: int | None
    text: str

    def sort_key(self) -> tuple[int, str, int]:
        return (self.row_id or 0, self.chain or "", self.position or 0)


@dataclass
class _Walk:
    keys: SigningKeys
    signed: dict[tuple[str, int], tuple[str, int]]  # (chain, seq) -> (hash, checkpoint number)
    rows: int = 0
    chain: str | None = None
    seq: int = 0
    prev: str = GENESIS
    last_id: int = 0
    broken: bool = False
    last: dict[str, tuple[int, str, int]] = field(default_factory=dict)  # chain -> seq, hash, id
    problems: list[_Problem] = field(default_factory=list)

    def _bad(self, row: dict[str, Any], position: int, text_: str) -> None:
        self.problems.append(_Problem(row["chain"], position, row["id"], text_))
        self.broken = True

    def feed(self, row: dict[str, Any]) -> None:
        self.rows += 1
        if row["chain"] != self.chain:
            self.chain, self.seq, self.prev, self.last_id, self.broken = (
                row["chain"],
                0,
                GENESIS,
                0,
                False,
            )
        if self.broken:
            return
        chain, seq = row["chain"], int(row["chain_seq"])
        if seq != self.seq + 1:
            missing = f"{self.seq + 1}" if seq == self.seq + 2 else f"{self.seq + 1}..{seq - 1}"
            self._bad(
                row,
                self.seq + 1,
                f"position {missing} missing before row {row['id']} (row deleted)",
            )
            return
        if row["prev_hash"] != self.prev:
            self._bad(
                row,
                seq,
                "prev_hash does not match the previous row's hash "
                "(a row was removed, inserted or moved)",
            )
            return
        if chain == LEGACY_CHAIN:
            good = row_hash(self.prev, row) == row["hash"]
        else:
            prev = self.prev
            good = matches(
                self.keys.all,
                row["hash"],
                lambda k: row_mac(k, row_id=row["id"], chain=chain, seq=seq, prev=prev, row=row),
            )
        if not good:
            self._bad(row, seq, "hash does not match the row (row altered, moved or re-chained)")
            return
        if row["id"] <= self.last_id:
            self._bad(row, seq, "row ids run backwards in the chain (rows reordered)")
            return
        signed = self.signed.pop((chain, seq), None)
        if signed is not None and signed[0] != row["hash"]:
            self._bad(
                row,
                seq,
                f"hash differs from the one checkpoint #{signed[1]} signed (rows re-chained)",
            )
            return
        self.seq, self.prev, self.last_id = seq, row["hash"], row["id"]
        self.last[chain] = (seq, row["hash"], row["id"])


async def _checkpoints(
    conn: AsyncConnection, keys: SigningKeys, problems: list[_Problem]
) -> tuple[dict[tuple[str, int], tuple[str, int]], int]:
    """The signed heads of every checkpoint whose signature verifies: (chain, seq) -> (hash, n)."""
    signed: dict[tuple[str, int], tuple[str, int]] = {}
    checkpoints = (await conn.execute(select(_CHECKPOINT).order_by(_CHECKPOINT.c.number))).all()
    heads: dict[int, list[tuple[str, int, str]]] = {}
    for n, c, q, h in await conn.execute(
        select(
            _CHECKPOINT_HEAD.c.checkpoint,
            _CHECKPOINT_HEAD.c.chain,
            _CHECKPOINT_HEAD.c.seq,
            _CHECKPOINT_HEAD.c.hash,
        )
    ):
        heads.setdefault(int(cast(int, n)), []).append((str(c), int(cast(int, q)), str(h)))
    prev, expected = GENESIS, 1
    for cp in checkpoints:
        number = int(cp.number)
        entries = heads.get(number, [])
        if number != expected:
            problems.append(_Problem(None, None, None, f"checkpoint #{expected} is missing"))
        elif cp.prev_signature != prev or not matches(
            keys.all,
            cp.signature,
            lambda k, cp=cp, entries=entries, number=number: checkpoint_signature(
                k,
                number=number,
                created_at=cp.created_at,
                prev_signature=cp.prev_signature,
                entries=entries,
            ),
        ):
            problems.append(
                _Problem(None, None, None, f"checkpoint #{number} does not verify (altered)")
            )
        for c, q, h in entries:
            # Later checkpoints of one chain sign later positions; keep every one.
            signed[(c, q)] = (h, number)
        prev, expected = cp.signature, number + 1
    return signed, len(checkpoints)


async def verify(
    db: Database, *, keys: SigningKeys | None = None, batch: int = 5_000
) -> AuditVerifyResult:
    """Walk every chain in position order and check it against its head and the checkpoints.

    Finds: altered rows, re-chained rows (the HMAC needs the key), deleted rows (a gap, a
    broken link), reordered rows (the HMAC covers id and position), a removed tail (the head
    is ahead, or a checkpoint signed a position that is gone), removed or altered checkpoints.
    """
    keys = keys or signing_keys()
    problems: list[_Problem] = []
    columns = [c.name for c in _TABLE.columns]
    async with db.read() as conn:
        if conn.dialect.name == "postgresql":
            # One snapshot for checkpoints, rows and heads, so appends meanwhile do not look
            # like a removed tail (SQLite's read transaction is one snapshot already).
            await conn.execution_options(isolation_level="REPEATABLE READ")
        signed, n_checkpoints = await _checkpoints(conn, keys, problems)
        walk = _Walk(keys, signed)
        after: tuple[str, int] | None = None
        while True:
            stmt = select(_TABLE).order_by(_TABLE.c.chain, _TABLE.c.chain_seq).limit(batch)
            if after is not None:
                stmt = stmt.where(tuple_(_TABLE.c.chain, _TABLE.c.chain_seq) > after)
            rows = (await conn.execute(stmt)).all()
            for raw in rows:
                walk.feed(dict(zip(columns, raw, strict=True)))
            if len(rows) < batch:
                break
            after = (rows[-1].chain, int(rows[-1].chain_seq))
        heads = {
            str(c): (int(cast(int, q)), str(h), int(cast(int, cq)))
            for c, q, h, cq in await conn.execute(
                select(_HEAD.c.chain, _HEAD.c.seq, _HEAD.c.hash, _HEAD.c.checkpointed_seq)
            )
        }
    problems.extend(walk.problems)
    broken = {p.chain for p in problems}
    for chain, (seq, last_hash, row_id) in walk.last.items():
        if chain in broken:
            continue
        head = heads.get(chain)
        if head is None:
            problems.append(_Problem(chain, seq, row_id, "the chain has no head (head removed)"))
        elif head[0] > seq:
            problems.append(
                _Problem(
                    chain,
                    seq + 1,
                    row_id,
                    f"positions {seq + 1}..{head[0]} missing at the end of the chain "
                    "(tail removed)",
                )
            )
        elif head[0] < seq or head[1] != last_hash:
            problems.append(
                _Problem(chain, head[0], row_id, "the chain head does not match its last row")
            )
    for chain, (seq, _, _) in heads.items():
        if chain not in walk.last and chain not in broken and seq > 0:
            problems.append(
                _Problem(chain, 1, None, f"positions 1..{seq} missing: the whole chain is gone")
            )
    for (chain, seq), (_, number) in sorted(walk.signed.items()):
        if chain in broken or chain in {p.chain for p in problems}:
            continue
        if seq > walk.last.get(chain, (0, "", 0))[0]:
            found = walk.last.get(chain)
            problems.append(
                _Problem(
                    chain,
                    seq,
                    None if found is None else found[2],
                    f"position {seq}, signed by checkpoint #{number}, is missing (tail removed)",
                )
            )
    unsigned = sum(
        max(0, seq - heads.get(chain, (0, "", 0))[2]) for chain, (seq, _, _) in walk.last.items()
    )
    result = AuditVerifyResult(
        rows=walk.rows,
        ok=not problems,
        chains=len(walk.last),
        checkpoints=n_checkpoints,
        unsigned_rows=unsigned,
        development_key=keys.development,
        problems=len(problems),
    )
    if problems:
        first = min(problems, key=_Problem.sort_key)
        result.first_bad_id = first.row_id
        result.chain = first.chain
        result.position = first.position
        result.problem = first.text
    return result
