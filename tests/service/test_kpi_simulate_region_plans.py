"""A simulated stretch gives every part of the region plans data (docs/domain.md §6, §15), so
the demo shows them: shortage moments recorded through the live hold and search code, case
owners and notes, night holds that respect admission hours, report-now requests answered by the
next capacity round, and non-zero figures for every new KPI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import and_, func, select

from app.capacity import admission
from app.capacity.models import CapacityReport
from app.config import Settings
from app.db import Database
from app.flows import simulate
from app.flows.demo import load_demo
from app.kpi import formulas as f
from app.kpi import queries as q
from app.placement.models import Placement, PlacementHold, PlacementNote, TransferEvent
from app.registry.models import Unit
from app.reportnow.models import ReportRequest, ReportRequestUnit
from tests.conftest import truncate_all

END = datetime(2026, 1, 15, 12, tzinfo=UTC)
DAYS = 6


async def _simulated(db: Database, settings: Settings) -> simulate.SimSummary:
    await truncate_all(db)
    async with db.sessionmaker() as session:
        start = END - timedelta(days=DAYS)
        await load_demo(session, simulate.SIMULATOR, now=start, settings=settings)
        await session.commit()
    summary = await simulate.simulate(db, settings, days=DAYS, seed=11, end=END)
    async with db.engine.begin() as conn:  # the calendar the KPI service keeps
        await q.ensure_calendar(conn, date(2025, 12, 1), date(2026, 2, 1))
    return summary


@pytest.mark.slow
async def test_a_simulated_period_has_data_for_every_region_plan_item(
    db: Database, settings: Settings
) -> None:
    simulated = await _simulated(db, settings)
    assert simulated.shortage_windows >= 1
    period = f.Period(f.local_date(END) - timedelta(days=DAYS), f.local_date(END) + timedelta(1))
    async with db.read() as conn:
        shortage = await q.shortage(conn, period)
        cracks = await q.between_the_cracks(conn, period, now=END)
        waiting = await q.wlz_crisis_waiting(conn, period, now=END)
        guarantee = await q.admission_guarantee(conn, period, now=END, group_by="care_type")
        inflow = await q.inflow(conn, period)
        by_origin = await q.wrong_bed_days(conn, period, now=END, group_by="source")
        groups = await q.lead_times(conn, period, group_by="patient_group")
        acp = await q.advance_care_planning(conn, period)
    # shortage (§6.10): holds refused for no capacity and searches without result
    assert sum(r.holds_refused for r in shortage) > 0
    assert sum(r.searches_empty for r in shortage) > 0
    assert len({r.care_type for r in shortage}) >= 2
    # between the cracks (§6.9): over the norm and re-referred
    assert sum(r.over_norm for r in cracks) > 0
    assert sum(r.re_referrals for r in cracks) > 0
    # Wlz-crisis waiting (§6.7): patients waiting at some midnight
    assert sum(d.waiting for d in waiting) > 0
    # respite and observation (§6.5): requests of both care types
    assert {r.group for r in guarantee if r.requests} == {"respite", "observation"}
    # inflow (§6.2): acute VVT and ambulance rides of all ages
    totals = {r.source: r.count for r in inflow}
    assert totals.get("vvt_acute", 0) > 0
    assert totals.get("rav", 0) > 0
    # wrong-bed days of GGZ clinics counted apart (§6.1)
    assert {r.group: r.days for r in by_origin}.get("ggz_clinic", 0) > 0
    # patient groups and advance care planning (§6.8)
    assert len({r.group for r in groups if r.requests}) >= 3
    assert acp[0].recorded > 0
    await _case_work(db)


async def _case_work(db: Database) -> None:
    async with db.read() as conn:
        kinds = dict(
            (
                await conn.execute(
                    select(TransferEvent.event_type, func.count())
                    .where(TransferEvent.event_type.in_(("owner_taken", "owner_handed_over")))
                    .group_by(TransferEvent.event_type)
                )
            ).all()
        )
        owners = (
            (await conn.execute(select(Placement.care_type).where(Placement.owner_id.is_not(None))))
            .scalars()
            .all()
        )
        notes = (await conn.execute(select(func.count()).select_from(PlacementNote))).scalar_one()
        requests = (
            await conn.execute(select(func.count()).select_from(ReportRequest))
        ).scalar_one()
        answered = (
            await conn.execute(
                select(func.count(func.distinct(ReportRequestUnit.unit_id)))
                .select_from(ReportRequestUnit)
                .join(ReportRequest, ReportRequest.id == ReportRequestUnit.request_id)
                .join(
                    CapacityReport,
                    and_(
                        CapacityReport.unit_id == ReportRequestUnit.unit_id,
                        CapacityReport.recorded_at >= ReportRequest.created_at,
                    ),
                )
            )
        ).scalar_one()
        night_holds = (
            await conn.execute(
                select(PlacementHold.created_at, Unit.admission_hours)
                .join(Unit, Unit.id == PlacementHold.unit_id)
                .where(Unit.care_type == "district_nursing_acute")
            )
        ).all()
    # case owners (§15.1): crisis cases taken by the triagist, handed back once placed
    assert kinds.get("owner_taken", 0) > 0
    assert kinds.get("owner_handed_over", 0) > 0
    assert set(owners) <= {"wlz_crisis", "ggz_crisis"}
    # case notes (§15.2)
    assert notes > kinds["owner_taken"]  # one per take, and one per case left without a place
    # report-now requests, answered by the next capacity round
    assert requests > 0
    assert answered > 0
    # admission hours (§15.3): acute district nursing held at night, never with a day team
    at_night = [
        (at, hours)
        for at, hours in night_holds
        if at.astimezone(f.TZ).hour in (23, 0, 1, 2, 3, 4, 5, 6)
    ]
    assert at_night
    assert all(admission.admission_fields(hours, at)[0] for at, hours in night_holds)
    assert any(hours is not None for _, hours in night_holds)  # the day teams had holds by day
