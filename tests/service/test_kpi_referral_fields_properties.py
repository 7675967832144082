"""Advance care planning of referrals aged 65+ and lead times by patient group (docs/domain.md
§6.8): the SQL (app.kpi.queries) agrees exactly with the reference (app.kpi.formulas) on random
transfer logs, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import delete, insert, update

from app.db import Database
from app.kpi import formulas as f
from app.kpi import queries as q
from app.placement.models import Placement
from app.registry.models import RegionNorm
from tests.service.test_kpi_sql_properties import (
    PROPS,
    REGION,
    STAY_GROUPS,
    LoopThread,
    _clear,
    _insert_stays,
    instants,
    kdb,
    periods,
    stay_filters,
    stays,
)

__all__ = ["kdb"]  # the module-scoped database fixture, shared with the other KPI properties

GROUPS = [*STAY_GROUPS, "patient_group"]


@st.composite
def referral_stays(draw: st.DrawFn) -> list[f.Stay]:
    """Random logs whose referrals carry (or lack) a patient group and an ACP answer."""
    return [
        dataclasses.replace(
            s,
            patient_group=draw(st.sampled_from([None, "frail_elderly", "dementia", "other"])),
            advance_care_planning=draw(st.sampled_from([None, "recorded", "not_recorded"])),
        )
        for s in draw(stays())
    ]


async def _insert(db: Database, data: list[f.Stay], incremental: bool) -> None:
    await _clear(db, ["kpi_ready_interval", "kpi_placement_decline", "transfer_event", "placement"])
    await _insert_stays(db, data, incremental)
    async with db.engine.begin() as conn:
        for s in data:
            await conn.execute(
                update(Placement)
                .where(Placement.id == uuid.UUID(s.id))
                .values(
                    patient_group=s.patient_group, advance_care_planning=s.advance_care_planning
                )
            )


@pytest.mark.slow
@PROPS
@given(
    data=referral_stays(),
    period=periods(),
    flt=stay_filters(),
    group_by=st.sampled_from(GROUPS),
    incremental=st.booleans(),
)
def test_referral_field_kpis_agree_with_the_reference(
    kdb: tuple[LoopThread, Database],
    data: list[f.Stay],
    period: f.Period,
    flt: f.StayFilter,
    group_by: str | None,
    incremental: bool,
) -> None:
    runner, db = kdb
    runner.run(_insert(db, data, incremental))

    async def compute() -> tuple[list[f.AcpRow], list[f.LeadTimeSummary]]:
        async with db.read() as conn:
            acp = await q.advance_care_planning(conn, period, flt=flt, group_by=group_by)
            lead = await q.lead_times(conn, period, flt=flt, group_by=group_by)
            return acp, lead

    acp, lead = runner.run(compute())
    assert acp == f.advance_care_planning(data, period, flt=flt, group_by=group_by)
    want = f.lead_times(data, period, flt=flt, group_by=group_by)
    assert lead == [r.summary() for r in want]
    for row in acp:  # every referral has exactly one answer
        assert row.recorded + row.not_recorded + row.unknown == row.referrals


def test_advance_care_planning_reference_by_example() -> None:
    """Only patients of 65 and over at the request count; unknown counts against the share."""
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def stay(n: int, birth_year: int, acp: str | None, group: str | None) -> f.Stay:
        return f.Stay(
            id=str(uuid.UUID(int=n)),
            patient_key=f"pk{n}",
            birth_year=birth_year,
            care_type="elv_high",
            hospital_id=None,
            subregion_id=None,
            origin_setting="home",
            urgency_level=3,
            events=(f.Event(1, "request_created", t0, t0),),
            patient_group=group,
            advance_care_planning=acp,
        )

    logs = [
        stay(1, 1940, "recorded", "dementia"),
        stay(2, 1950, "not_recorded", "frail_elderly"),
        stay(3, 1961, None, None),  # 65 in 2026
        stay(4, 1962, "recorded", "dementia"),  # 64: not counted
    ]
    period = f.Period(date(2026, 3, 1), date(2026, 4, 1))
    (total,) = f.advance_care_planning(logs, period)
    assert (total.referrals, total.recorded, total.not_recorded, total.unknown) == (3, 1, 1, 1)
    assert (total.share, total.share_known) == (1 / 3, 0.5)
    by_group = f.advance_care_planning(logs, period, group_by="patient_group")
    assert [(r.group, r.referrals, r.recorded) for r in by_group] == [
        ("dementia", 1, 1),
        ("frail_elderly", 1, 0),
        ("unknown", 1, 0),
    ]


@st.composite
def repeat_stays(draw: st.DrawFn) -> list[f.Stay]:
    """Random logs of few patients (re-referrals), most care types, with patient groups."""
    return [
        dataclasses.replace(
            s,
            patient_key=f"pk{draw(st.integers(0, 2))}",
            care_type=draw(
                st.sampled_from(["elv_high", "grz", "district_nursing_acute", "wlz_crisis"])
            ),
            patient_group=draw(st.sampled_from([None, "dementia", "palliative"])),
        )
        for s in draw(stays())
    ]


async def _set_norms(db: Database, norms: dict[str, int]) -> None:
    """The region's own norms (docs/domain.md §6.9), as the region import writes them."""
    async with db.engine.begin() as conn:
        await conn.execute(delete(RegionNorm))
        if norms:
            await conn.execute(
                insert(RegionNorm),
                [{"region_id": REGION, "care_type": k, "hours": v} for k, v in norms.items()],
            )


@pytest.mark.slow
@PROPS
@given(
    data=repeat_stays(),
    period=periods(),
    now=instants,
    flt=stay_filters(),
    group_by=st.sampled_from(GROUPS),
    incremental=st.booleans(),
    norms=st.dictionaries(
        st.sampled_from(["elv_high", "grz", "district_nursing_acute", "observation"]),
        st.integers(1, 96),
        max_size=3,
    ),
)
def test_between_the_cracks_agrees_with_the_reference(
    kdb: tuple[LoopThread, Database],
    data: list[f.Stay],
    period: f.Period,
    now: datetime,
    flt: f.StayFilter,
    group_by: str | None,
    incremental: bool,
    norms: dict[str, int],
) -> None:
    runner, db = kdb
    runner.run(_insert(db, data, incremental))
    runner.run(_set_norms(db, norms))

    async def compute() -> list[f.CracksRow]:
        async with db.read() as conn:
            return await q.between_the_cracks(conn, period, now=now, flt=flt, group_by=group_by)

    got = runner.run(compute())
    assert got == f.between_the_cracks(
        data, period, now=now, flt=flt, group_by=group_by, region_norms=norms
    )
    for row in got:
        assert row.over_norm + row.cancelled_without_place <= row.requests
        assert row.re_referrals <= row.requests


def test_between_the_cracks_reference_by_example() -> None:
    """Over the norm placed or still open, cancelled without a place, and a second request of
    the same patient within 30 days (not after 31)."""
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    hour = timedelta(hours=1)

    def stay(n: int, key: str, care: str, start: timedelta, *tail: tuple[str, timedelta]) -> f.Stay:
        log = [("request_created", start), *tail]
        return f.Stay(
            id=str(uuid.UUID(int=n)),
            patient_key=key,
            birth_year=1940,
            care_type=care,
            hospital_id=None,
            subregion_id=None,
            origin_setting="home",
            urgency_level=3,
            events=tuple(
                f.Event(seq=i, type=k, occurred_at=t0 + d, recorded_at=t0 + d)
                for i, (k, d) in enumerate(log, start=1)
            ),
        )

    day = 24 * hour
    logs = [
        stay(1, "a", "elv_high", timedelta(), ("offer_accepted", day)),  # exactly the norm
        stay(2, "b", "elv_high", timedelta(), ("offer_accepted", day + hour)),  # over
        stay(3, "c", "district_nursing_acute", timedelta()),  # open: 4 h norm, over at now
        stay(4, "d", "grz", timedelta(), ("cancelled", hour)),  # cancelled without a place
        stay(5, "a", "grz", 20 * day),  # a's second request within 30 days
        stay(6, "b", "grz", 31 * day),  # b's second request after 31 days: not counted
    ]
    period = f.Period(date(2026, 3, 1), date(2026, 5, 1))
    (total,) = f.between_the_cracks(logs, period, now=t0 + 5 * hour)
    assert (total.requests, total.over_norm, total.cancelled_without_place) == (6, 2, 1)
    assert total.re_referrals == 1
    # The region's own norms replace the defaults of the care types they name, no others:
    # ELV high 23 h puts the first one over; acute district nursing 6 h keeps the open one
    # (5 h old) within it.
    own = {"elv_high": 23, "district_nursing_acute": 6}

    def over(norms: dict[str, int] | None) -> dict[str | None, int]:
        rows = f.between_the_cracks(
            logs, period, now=t0 + 5 * hour, group_by="care_type", region_norms=norms
        )
        return {r.group: r.over_norm for r in rows}

    assert over(None) == {"district_nursing_acute": 1, "elv_high": 1, "grz": 0}
    assert over(own) == {"district_nursing_acute": 0, "elv_high": 2, "grz": 0}
    assert f.norm_us("grz", own) == f.norm_us("grz") == 72 * 3_600_000_000
    assert f.norm_us("elv_high", own) == 23 * 3_600_000_000
