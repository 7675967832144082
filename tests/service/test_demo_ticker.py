"""The demo ticker keeps the providers reporting, so searches do not dry up after 240 minutes."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select, update

from app.capacity.models import CapacityReport, UnitCapacity
from app.capacity.service import SearchQuery
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType
from app.flows import demo_ticker
from app.flows import search as search_flow
from app.registry.models import Unit
from tests.factories import ADMIN, Seed


async def _search(db: Database, settings: Settings, when: object) -> int:
    result = await search_flow.search_availability(
        db,
        ADMIN,
        SearchQuery(care_types=(CareType.ELV_HIGH, CareType.GRZ)),
        now=when,  # type: ignore[arg-type]
        settings=settings,
    )
    return int(result["count"])


async def test_a_tick_reports_for_every_due_unit_and_keeps_search_results_fresh(
    db: Database, settings: Settings, seed: Seed
) -> None:
    later = utcnow() + timedelta(minutes=settings.stale_after_bed_minutes + 60)
    assert await _search(db, settings, later) == 0, "without new reports everything is stale"
    idle = seed.units["gouda-elv-high"]
    async with db.sessionmaker() as session:
        await session.execute(update(Unit).where(Unit.id == idle).values(active=False))
        await session.commit()
    async with db.read() as conn:
        before = dict((await conn.execute(select(UnitCapacity.unit_id, UnitCapacity.free))).all())

    written = await demo_ticker.tick(
        db, settings, region_code="west", now=later, rng=random.Random(7)
    )

    active = [u for u in seed.units.values() if u != idle]
    assert written == len(active)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(UnitCapacity.unit_id, UnitCapacity.free, UnitCapacity.reported_at)
            )
        ).all()
        sources = (
            await conn.scalars(
                select(CapacityReport.source).where(CapacityReport.reported_at == later)
            )
        ).all()
    now_of = {unit: (free, reported_at) for unit, free, reported_at in rows}
    for unit in active:
        free, reported_at = now_of[unit]
        assert reported_at == later
        assert abs(free - before[unit]) <= 1, "a report drifts at most one place"
        assert 0 <= free <= 10
    idle_reported_at = now_of[idle][1]
    assert idle_reported_at is not None
    assert idle_reported_at < later, "a deactivated unit is not reported for"
    assert sources == ["demo"] * len(active)
    assert await _search(db, settings, later) > 0

    # Nothing is due a minute later; an hour and more later everything is due again.
    again = await demo_ticker.tick(
        db, settings, region_code="west", now=later + timedelta(minutes=1), rng=random.Random(7)
    )
    assert again == 0
    hour = await demo_ticker.tick(
        db, settings, region_code="west", now=later + timedelta(minutes=61), rng=random.Random(7)
    )
    assert hour == len(active)


async def test_a_tick_ignores_other_regions(db: Database, settings: Settings, seed: Seed) -> None:
    later = utcnow() + timedelta(hours=5)
    written = await demo_ticker.tick(
        db, settings, region_code="nowhere", now=later, rng=random.Random(1)
    )
    assert written == 0


def test_next_counts_stay_within_the_staffed_capacity() -> None:
    rng = random.Random(1)
    for free in (0, 1, 5):
        due = demo_ticker.Due(
            unit_id=ADMIN.key_id,
            staffed_capacity=1 if free < 2 else 5,
            free=free,
            expected_free_24h=0,
        )
        for _ in range(50):
            got, expected = demo_ticker.next_counts(due, rng)
            assert 0 <= got <= due.staffed_capacity
            assert expected is not None
            assert 0 <= expected <= due.staffed_capacity
