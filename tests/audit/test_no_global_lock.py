"""Audited writes about different placements do not wait on each other (PostgreSQL): a write
whose transaction is still open blocks only writes to the same placement's chain."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.auth.service import KeyResolver
from app.config import Settings
from app.db import Database, utcnow
from app.placement import service as placement_service
from app.placement.errors import ConcurrentChange
from app.placement.schemas import EventIn, PlacementCreate
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
