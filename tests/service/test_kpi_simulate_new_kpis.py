"""The simulator gives the new KPIs data (docs/domain.md §6.7, §6.8): referrals with patient
groups and advance-care-planning answers, and Wlz-crisis requests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from app.config import Settings
from app.db import Database
from app.flows import simulate
from app.flows.demo import load_demo
from app.kpi import formulas as f
from app.kpi import queries as q
from app.placement.models import Placement
from tests.conftest import truncate_all

END = datetime(2026, 1, 15, 12, tzinfo=UTC)


async def test_simulated_referrals_carry_patient_group_and_acp(
    db: Database, settings: Settings
) -> None:
    await truncate_all(db)
    async with db.sessionmaker() as session:
        await load_demo(session, simulate.SIMULATOR, now=END - timedelta(days=3), settings=settings)
        await session.commit()
    await simulate.simulate(db, settings, days=3, seed=5, end=END)
    async with db.engine.begin() as conn:  # the calendar the KPI service keeps (SQLite ages)
        await q.ensure_calendar(conn, date(2026, 1, 1), date(2026, 2, 1))
    async with db.read() as conn:
        counts = dict(
            (
                await conn.execute(
                    select(Placement.advance_care_planning, func.count()).group_by(
                        Placement.advance_care_planning
                    )
                )
            ).all()
        )
        groups = set((await conn.execute(select(Placement.patient_group).distinct())).scalars())
        period = f.Period(f.local_date(END) - timedelta(days=3), f.local_date(END) + timedelta(1))
        acp = await q.advance_care_planning(conn, period)
        lead = await q.lead_times(conn, period, group_by="patient_group")
        cracks = await q.between_the_cracks(conn, period, now=END, group_by="care_type")
    assert counts.get("recorded", 0) > 0
    assert counts.get("not_recorded", 0) > 0
    assert {"frail_elderly", "dementia"} <= groups
    assert len(acp) == 1
    assert acp[0].recorded > 0
    assert acp[0].referrals >= acp[0].recorded + acp[0].not_recorded
    assert len({r.group for r in lead}) >= 3
    assert sum(r.re_referrals for r in cracks) > 0
    assert sum(r.requests for r in cracks) == sum(r.requests for r in lead)
