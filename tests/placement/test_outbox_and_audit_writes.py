"""The lean write paths the hold uses: the Core outbox insert (with its NOTIFY in the statement
on PostgreSQL) and the one-statement audit append (last-hash read and insert together).

They must keep what the ORM flush and the three-statement append gave: every committed outbox
row reaches ``local_bus`` and, on PostgreSQL, a LISTEN connection, a rolled-back one reaches
neither; every appended audit row chains onto the previous one exactly as ``row_hash`` says,
also under concurrent appends.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import text

from app.audit import service as audit_service
from app.audit.chain import GENESIS, HASHED_FIELDS, fields_json, row_hash
from app.audit.service import AuditContext, AuditEntry
from app.db import Database
from app.enums import Role
from app.principal import Principal
from app.realtime import notifier
from app.realtime.bus import NOTIFY_CHANNEL, local_bus, parse_notify_payload
from app.realtime.listener import asyncpg_dsn
from app.realtime.outbox import publish


def test_fields_json_is_what_row_hash_hashes_after_the_previous_hash() -> None:
    row: dict[str, object] = dict.fromkeys(HASHED_FIELDS)
    row |= {
        "event_code": "placement.hold",
        "occurred_at": datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC),
        "user_id": uuid.uuid4(),
        "user_display": 'naïve "quoted" \u2028 \x01',
        "detail": '{"unit_id":"x","é":"\\n"}',
    }
    for prev in (GENESIS, hashlib.sha256(b"x").hexdigest()):
        body = b'["' + prev.encode() + b'",' + fields_json(row) + b"]"
        assert hashlib.sha256(body).hexdigest() == row_hash(prev, row)


def _ctx(name: str = "Tester") -> AuditContext:
    principal = Principal(
        key_id=uuid.uuid4(),
        name=name,
        roles=frozenset({Role.ADMIN}),
        organisation_id=uuid.uuid4(),
        region_id=None,
    )
    return AuditContext(principal=principal, access_point="127.0.0.1", request_id="r-1")


async def test_audit_appends_chain_and_verify(db: Database) -> None:
    ctx = _ctx('Name with "quotes" and ü')
    for n in (1, 3, 1, 1):
        entries = [
            AuditEntry(
                event_code="test.append",
                action="U",
                object_id=str(uuid.uuid4()),
                patient_key=f"pk-{i}",
                detail={"i": i, "text": 'é\n"x"'},
            )
            for i in range(n)
        ]
        async with db.sessionmaker() as session:
            await audit_service.append(session, ctx, entries)
            await session.commit()
    result = await audit_service.verify(db)
    assert result.ok, result
    assert result.rows >= 6


@pytest.mark.postgres_only
async def test_concurrent_audit_appends_keep_one_chain(db: Database) -> None:
    ctx = _ctx()

    async def one(i: int) -> None:
        async with db.sessionmaker() as session:
            entry = AuditEntry(event_code="test.concurrent", action="U", object_id=str(i))
            await audit_service.append(session, ctx, [entry])
            await session.commit()

    await asyncio.gather(*(one(i) for i in range(40)))
    result = await audit_service.verify(db)
    assert result.ok, result
    async with db.engine.connect() as conn:
        count: int = (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
    assert result.rows == count


async def test_committed_outbox_rows_reach_the_bus_and_rolled_back_ones_do_not(
    db: Database, database_url: str
) -> None:
    seen: list[int] = []
    unsubscribe = local_bus.subscribe(seen.extend)
    notified: asyncio.Queue[list[int]] = asyncio.Queue()
    listener = None
    if db.dialect == "postgresql":
        listener = await asyncpg.connect(asyncpg_dsn(database_url))
        await listener.add_listener(
            NOTIFY_CHANNEL, lambda *args: notified.put_nowait(parse_notify_payload(args[3]))
        )
    try:
        # The NOTIFY to other instances goes out after the commit, from the notifier.
        async with notifier.running(db):
            async with db.sessionmaker() as session:
                await publish(session, topic="capacity", event_type="t.x", payload={"n": 0})
                await session.rollback()
            assert seen == []
            async with db.sessionmaker() as session:
                first = await publish(session, topic="capacity", event_type="t.x", payload={"n": 1})
                second = await publish(
                    session, topic="capacity", event_type="t.x", payload={"n": 2}
                )
                third = await publish(session, topic="capacity", event_type="t.x", payload={"n": 3})
                await session.commit()
            ids = {first.id, second.id, third.id}
            assert seen == sorted(ids)
            if listener is not None:
                got: set[int] = set()
                async with asyncio.timeout(5):
                    while got != ids:
                        got |= set(await notified.get())
                await asyncio.sleep(0.1)
                while not notified.empty():
                    got |= set(notified.get_nowait())
                assert got == ids  # the rolled-back row was never announced
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id, payload, webhooks_fanned_out_at FROM outbox_event")
            )
            stored = {r.id: r for r in rows}
        assert set(stored) == ids
        assert stored[second.id].payload == '{"n":2}'
        assert stored[second.id].webhooks_fanned_out_at is None
    finally:
        unsubscribe()
        if listener is not None:
            await listener.close()
