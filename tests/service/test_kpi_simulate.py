"""The simulator writes through the services and is deterministic for a seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.flows import simulate
from app.flows.demo import load_demo
from app.placement.models import TransferEvent
from app.registry.models import Location, Unit
from tests.conftest import truncate_all

END = datetime(2026, 1, 15, 12, tzinfo=UTC)


Run = tuple[int, dict[str, int], int, int, list[tuple[object, ...]]]


async def _run(db: Database, settings: Settings) -> Run:
    await truncate_all(db)
    async with db.sessionmaker() as session:
        await load_demo(session, simulate.SIMULATOR, now=END - timedelta(days=2), settings=settings)
        await session.commit()
    summary = await simulate.simulate(db, settings, days=2, seed=3, end=END)
    return (
        summary.placements,
        dict(summary.actions),
        summary.capacity_reports,
        summary.inflow_lines,
        await _transfer_log(db),
    )


async def _transfer_log(db: Database) -> list[tuple[object, ...]]:
    """The whole transfer log with units by name: ids are random per run, the rest is not."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    TransferEvent.occurred_at,
                    TransferEvent.event_type,
                    TransferEvent.to_state,
                    TransferEvent.reason,
                    Location.name,
                    Unit.name,
                )
                .outerjoin(Unit, Unit.id == TransferEvent.unit_id)
                .outerjoin(Location, Location.id == Unit.location_id)
                .order_by(TransferEvent.occurred_at, TransferEvent.id)
            )
        ).all()
    return [tuple(row) for row in rows]


@pytest.mark.slow
async def test_same_seed_same_days(db: Database, settings: Settings) -> None:
    first = await _run(db, settings)
    placements, actions, reports, inflow, log = first
    assert placements > 20
    assert actions["create"] == placements
    assert actions["hold"] >= actions["accept"] > 0
    assert reports > 0
    assert inflow > 0
    assert len(log) > placements
    assert await _run(db, settings) == first
    lines = await simulate.digest(
        db, settings, simulate.SimSummary(start=END - timedelta(days=2), end=END)
    )
    assert lines[0].startswith("KPIs 2026-01-14 .. 2026-01-15")
