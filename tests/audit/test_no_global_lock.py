"""Audited writes about different placements do not wait on each other (PostgreSQL): a write
whose transaction is still open blocks only writes to the same placement's chain; verifying
while rows are appended sees one consistent log."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.auth.service import KeyResolver
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.placement import service as placement_service
from app.placement.errors import ConcurrentChange
from app.placement.schemas import EventIn, PlacementCreate
from app.principal import Principal
from tests.factories import Seed, placement_body


@pytest.mark.postgres_only
async def test_writes_on_different_placements_proceed_while_one_is_open(
    db: Database, seed: Seed, settings: Settings
) -> None:
    principal = await KeyResolver(db, ttl=0).resolve(f"Bearer {seed.keys['referrer']}")
    ctx = audit_service.AuditContext(principal=principal, access_point="127.0.0.1")

    async def create() -> uuid.UUID:
        async with db.sessionmaker() as session:
            made = await placement_service.create_placement(
                session,
                ctx,
                PlacementCreate.model_validate(placement_body()),
                now=utcnow(),
                settings=settings,
            )
            await session.commit()
            return made.id

    first, second = await create(), await create()

    async def event(session: AsyncSession, pid: uuid.UUID) -> None:
        await placement_service.record_event(
            session,
            ctx,
            pid,
            EventIn(type="consent_given"),
            now=utcnow(),
            settings=settings,
        )

    async with db.sessionmaker() as held:
        await event(held, first)  # its audit row is appended; the transaction stays open

        async def other(pid: uuid.UUID) -> None:
            async with db.sessionmaker() as session:
                await event(session, pid)
                await session.commit()

        # Another placement: done while the first transaction is still open.
        await asyncio.wait_for(other(second), timeout=5)
        # A brand-new placement (a new chain) too.
        await asyncio.wait_for(create(), timeout=5)
        # The same placement does wait (its row and its chain head are locked): the check above
        # would have failed with one lock for every audited write.
        same = asyncio.create_task(other(first))
        await asyncio.sleep(0.5)
        assert not same.done()
        await held.commit()
    with pytest.raises(ConcurrentChange):  # it read the placement before the first committed
        await asyncio.wait_for(same, timeout=5)
    result = await audit_service.verify(db)
    assert result.ok, result
    assert result.chains == 3


async def test_verify_during_appends_sees_one_consistent_log(db: Database) -> None:
    """Rows appended while ``verify`` walks the log never look like a removed tail."""
    principal = Principal(
        key_id=uuid.uuid4(),
        name="load",
        roles=frozenset({Role.ADMIN}),
        organisation_id=None,
        region_id=None,
    )
    ctx = audit_service.AuditContext(principal=principal)
    chains = [str(uuid.uuid4()) for _ in range(5)]

    async def appends() -> None:
        for i in range(60):
            async with db.sessionmaker() as session:
                entry = audit_service.AuditEntry(
                    event_code="test.load", action="R", object_id=chains[i % 5]
                )
                await audit_service.append(session, ctx, [entry])
                await session.commit()

    async def verifies() -> list[bool]:
        results = []
        for n in range(8):
            results.append((await audit_service.verify(db, batch=7)).ok)
            if n % 3 == 0:
                await audit_service.checkpoint(db)
        return results

    _, results = await asyncio.gather(appends(), verifies())
    assert all(results), results
    final = await audit_service.verify(db)
    assert final.ok, final
    assert (final.rows, final.chains) == (60, 5)


@pytest.mark.postgres_only
async def test_checkpoints_skip_heads_of_appends_in_progress(db: Database) -> None:
    principal = Principal(
        key_id=uuid.uuid4(),
        name="load",
        roles=frozenset({Role.ADMIN}),
        organisation_id=None,
        region_id=None,
    )
    ctx = audit_service.AuditContext(principal=principal)
    a, b, c = (str(uuid.uuid4()) for _ in range(3))

    def entry(object_id: str) -> audit_service.AuditEntry:
        return audit_service.AuditEntry(event_code="test.cp", action="R", object_id=object_id)

    async with db.sessionmaker() as session:
        await audit_service.append(session, ctx, [entry(a), entry(b), entry(c)])
        await session.commit()
    async with db.sessionmaker() as held:
        await audit_service.append(held, ctx, [entry(a)])  # a's head stays locked
        signed = await asyncio.wait_for(audit_service.checkpoint_all(db, batch=1), timeout=5)
        assert [s.heads for s in signed] == [1, 1]  # b and c, one per checkpoint; a skipped
        await held.commit()
    signed = await audit_service.checkpoint_all(db)
    assert [s.heads for s in signed] == [1]
    result = await audit_service.verify(db)
    assert result.ok, result
    assert (result.checkpoints, result.unsigned_rows) == (3, 0)
