"""The simulator writes through the services and is deterministic for a seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.db import Database
from app.kpi import simulate
from app.registry.demo import load_demo
from tests.conftest import truncate_all

END = datetime(2026, 1, 15, 12, tzinfo=UTC)


async def _run(db: Database, settings: Settings) -> tuple[int, dict[str, int], int, int]:
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
    )


@pytest.mark.slow
async def test_same_seed_same_days(db: Database, settings: Settings) -> None:
    first = await _run(db, settings)
    placements, actions, reports, inflow = first
    assert placements > 20
    assert actions["create"] == placements
    assert actions["hold"] >= actions["accept"] > 0
    assert reports > 0
    assert inflow > 0
    assert await _run(db, settings) == first
    lines = await simulate.digest(
        db, settings, simulate.SimSummary(start=END - timedelta(days=2), end=END)
    )
    assert lines[0].startswith("KPIs 2026-01-14 .. 2026-01-15")
