"""Seed data for the holds benchmark (bench/run_holds.py): registry, key, triaged placements.

* :func:`seed_registry` (PostgreSQL or SQLite): the national registry of ``bench.seed_national``
  with ``units`` units, plus one triagist API key of the RAP organisation (region 0).
* :func:`set_capacity`: give units a fixed ``free`` and ``held = 0`` (huge ``free`` for the timed
  phase, ``free = N`` on the hot unit of the overbooking check).
* :func:`seed_placements` (PostgreSQL): ``count`` triaged placements with consent, ready for one
  hold each. One placement is made through the service layer (``create_placement`` with an
  embedded triage, as ``POST /v1/placements`` does); every row that call wrote is then copied with
  COPY under new ids, so the seeded placements carry the same transfer log (request_created,
  triaged) and a valid NEN 7513 hash chain (``placement.create`` rows, hashes recomputed) as one
  made over HTTP. Outbox rows are not copied: the outbox is a delivery queue, and thousands of
  stale rows would only make the relay of the measured service busy.

Placement ids are ``placement_id(i)`` (a fixed pattern), so the wrk script can derive the id of
request ``i`` without a file.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import Table, func, select, text

from app.audit.chain import GENESIS, row_mac
from app.audit.service import AuditContext, signing_keys
from app.auth.schemas import ApiKeyCreate
from app.auth.service import KeyResolver, issue_key
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.placement import service as placement_service
from app.placement.schemas import PlacementCreate
from app.placement.suitability import hold_misfits
from app.registry.models import Region
from bench.seed_national import build

# The tables one ``create_placement`` call may write to, and how each is copied.
_SKIPPED = {"outbox_event"}  # delivery queue, see the module docstring


def placement_id(i: int) -> uuid.UUID:
    """Id of seeded placement ``i``; bench/holds.lua builds the same string."""
    return uuid.UUID(f"00000000-0000-4000-8000-{i:012x}")


def placement_body() -> dict[str, Any]:
    """A ``POST /v1/placements`` body: hospital in-patient with consent, triaged at once."""
    return {
        "origin_setting": "hospital_ward",
        "patient_identifier": f"bench-{uuid.uuid4().hex[:16]}",
        "birth_year": 1941,
        "sex": "female",
        "target_group": "somatic",
        "care_type": "elv_high",
        "features": [],
        "urgency": {"system": "nts", "code": "U3"},
        "consent_given_at": utcnow().replace(microsecond=0).isoformat(),
        "triage": {"care_type": "elv_high", "rule_set": "bench-2026.1"},
    }


async def seed_registry(url: str, *, units: int, seed: int) -> dict[str, Any]:
    """Registry rows + a triagist key; returns the key, the active unit ids and counts."""
    data = build(units, seed, datetime.now(UTC))
    db = Database.from_url(url, pool_size=2, max_overflow=0)
    try:
        async with db.engine.begin() as conn:
            if await conn.scalar(select(func.count()).select_from(Region.__table__)):
                raise SystemExit("database already holds regions; seed a fresh database")
            tables: list[tuple[Table, list[dict[str, Any]]]] = data["tables"]
            for table, rows in tables:
                await conn.execute(table.insert(), rows)
            # The national seed gives some units held places without hold rows (the search
            # benchmark needs only the numbers); here every held place is an active hold.
            await conn.execute(text("UPDATE unit_capacity SET held = 0"))
            if db.dialect == "postgresql":
                await conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence('capacity_report', 'id'), "
                        "(SELECT max(id) FROM capacity_report))"
                    )
                )
        async with db.sessionmaker() as session:
            issued = await issue_key(
                session,
                ApiKeyCreate(
                    name="bench triagist", organisation_id=data["rap_id"], roles=[Role.TRIAGIST]
                ),
            )
            await session.commit()
    finally:
        await db.dispose()
    unit_rows = next(rows for table, rows in data["tables"] if table.name == "unit")
    # The units a hold may go to: active ones that can take placement_body()'s patient.
    body = placement_body()
    active = [
        str(u["id"])
        for u in unit_rows
        if u["active"]
        and not hold_misfits(
            care_type=body["care_type"],
            sex=body["sex"],
            unit_care_type=u["care_type"],
            unit_sex_policy=u["sex_policy"],
        )
    ]
    return {
        "key": issued.key,
        "units": active,
        "counts": {table.name: len(rows) for table, rows in data["tables"]},
    }


async def set_capacity(url: str, unit_ids: list[str], *, free: int) -> None:
    """``free`` places and no holds on each of ``unit_ids``."""
    db = Database.from_url(url, pool_size=2, max_overflow=0)
    sqlite = db.dialect == "sqlite"
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text("UPDATE unit_capacity SET free = :free, held = 0 WHERE unit_id = :u"),
                [
                    {"free": free, "u": uuid.UUID(u).hex if sqlite else uuid.UUID(u)}
                    for u in unit_ids
                ],
            )
    finally:
        await db.dispose()


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    names = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> "
        "'alembic_version'"
    )
    return {
        r["tablename"]: int(await conn.fetchval(f'SELECT count(*) FROM "{r["tablename"]}"'))
        for r in names
    }


async def seed_placements(url: str, key: str, *, first: int, count: int) -> dict[str, Any]:
    """Placements ``first .. first + count - 1`` (ids ``placement_id(i)``), triaged with consent.

    PostgreSQL only (COPY). Refuses if ``create_placement`` wrote to a table it cannot copy.
    """
    dsn = url.replace("+asyncpg", "")
    raw = await asyncpg.connect(dsn)
    db = Database.from_url(url, pool_size=2, max_overflow=0)
    try:
        before = await _counts(raw)
        principal = await KeyResolver(db, ttl=0).resolve(f"Bearer {key}")
        ctx = AuditContext(principal=principal, access_point="127.0.0.1")
        async with db.sessionmaker() as session:
            made = await placement_service.create_placement(
                session,
                ctx,
                PlacementCreate.model_validate(placement_body()),
                now=utcnow(),
                settings=Settings(database_url=url),
            )
            await session.commit()
        grown = {t for t, n in (await _counts(raw)).items() if n != before.get(t, 0)}
        template = made.id
        copied: dict[str, int] = {}
        async with raw.transaction():
            for table in sorted(grown - _SKIPPED - {"audit_log", "audit_chain_head"}):
                cols = [
                    r["column_name"]
                    for r in await raw.fetch(
                        "SELECT column_name, column_default FROM information_schema.columns"
                        " WHERE table_name = $1 AND NOT (column_name = 'id'"
                        " AND coalesce(column_default, '') LIKE 'nextval%')"
                        " AND is_identity = 'NO' ORDER BY ordinal_position",
                        table,
                    )
                ]
                link = "id" if table == "placement" else "placement_id"
                if link not in cols:
                    raise SystemExit(f"create_placement wrote to {table}, which cannot be copied")
                rows = await raw.fetch(
                    f'SELECT {", ".join(cols)} FROM "{table}" WHERE {link} = $1', template
                )
                out = []
                for i in range(first, first + count):
                    pid = placement_id(i)
                    for row in rows:
                        rec = dict(row)
                        rec[link] = pid
                        if table != "placement" and isinstance(rec.get("id"), uuid.UUID):
                            rec["id"] = uuid.uuid4()
                        if "patient_key" in rec:
                            rec["patient_key"] = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
                        out.append(tuple(rec[c] for c in cols))
                await raw.copy_records_to_table(table, records=out, columns=cols)
                copied[table] = len(out)
            # The access log: the template's chain copied as each placement's own chain, with
            # ids from the sequence and HMACs under the service's key, and the chain heads.
            chain = f"placement:{template}"
            audit = await raw.fetch(
                "SELECT * FROM audit_log WHERE chain = $1 ORDER BY chain_seq", chain
            )
            cols = list(audit[0].keys()) if audit else []
            audit_key = signing_keys().current
            ids = iter(
                await raw.fetchval(
                    "SELECT array_agg(nextval('audit_log_id_seq')) FROM generate_series(1, $1)",
                    len(audit) * count,
                )
                or []
            )
            out, heads = [], []
            for i in range(first, first + count):
                pid, pkey = placement_id(i), hashlib.sha256(f"bench-{i}".encode()).hexdigest()
                prev, own = GENESIS, f"placement:{pid}"
                for row in audit:
                    rec = dict(row)
                    rec |= {"object_id": str(pid), "patient_key": pkey, "chain": own}
                    rec["id"], rec["prev_hash"] = next(ids), prev
                    rec["hash"] = prev = row_mac(
                        audit_key,
                        row_id=rec["id"],
                        chain=own,
                        seq=rec["chain_seq"],
                        prev=prev,
                        row=rec,
                    )
                    out.append(tuple(rec[c] for c in cols))
                if audit:
                    heads.append((own, audit[-1]["chain_seq"], prev, 0))
            if out:
                await raw.copy_records_to_table("audit_log", records=out, columns=cols)
                await raw.copy_records_to_table(
                    "audit_chain_head",
                    records=heads,
                    columns=["chain", "seq", "hash", "checkpointed_seq"],
                )
            copied["audit_log"] = len(out)
        await raw.execute("ANALYZE")
        return {"template": str(template), "grown_tables": sorted(grown), "copied": copied}
    finally:
        await db.dispose()
        await raw.close()
