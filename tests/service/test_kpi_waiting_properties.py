"""The Wlz-crisis waiting KPI in SQL (app.kpi.queries) agrees exactly with its reference
(app.kpi.formulas), on random transfer logs, on SQLite and PostgreSQL (docs/domain.md §6.7)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.db import Database
from app.kpi import formulas as f
from app.kpi import queries as q
from tests.service.test_kpi_sql_properties import (
    PROPS,
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


@st.composite
def wlz_stays(draw: st.DrawFn) -> list[f.Stay]:
    """Random logs in which most placements await a Wlz-crisis bed."""
    return [
        dataclasses.replace(
            s, care_type=draw(st.sampled_from(["wlz_crisis", "wlz_crisis", "elv_high"]))
        )
        for s in draw(stays())
    ]


@pytest.mark.slow
@PROPS
@given(
    data=wlz_stays(),
    period=periods(),
    now=instants,
    flt=stay_filters(),
    incremental=st.booleans(),
)
def test_wlz_crisis_waiting_agrees_with_the_reference(
    kdb: tuple[LoopThread, Database],
    data: list[f.Stay],
    period: f.Period,
    now: datetime,
    flt: f.StayFilter,
    incremental: bool,
) -> None:
    runner, db = kdb
    runner.run(
        _clear(db, ["kpi_ready_interval", "kpi_placement_decline", "transfer_event", "placement"])
    )
    runner.run(_insert_stays(db, data, incremental))

    async def compute() -> list[f.WaitingDay]:
        async with db.read() as conn:
            return await q.wlz_crisis_waiting(conn, period, now=now, flt=flt)

    got = runner.run(compute())
    assert got == f.wlz_crisis_waiting(data, period, now=now, flt=flt)
    # one row per day from the period's start up to now, none after
    assert [r.day for r in got] == [
        f.date_of(n)
        for n in range(f.day_no(period.start), f.day_no(period.end))
        if f.local_midnight(f.date_of(n)) <= now
    ]


def test_wlz_crisis_waiting_reference_by_example() -> None:
    """Waiting from the request until the place is promised or the request cancelled, counted
    at each local midnight; one patient with two open requests counts once."""
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 local

    def stay(n: int, key: str, care_type: str, *tail: tuple[str, timedelta]) -> f.Stay:
        log = [("request_created", timedelta()), *tail]
        return f.Stay(
            id=str(uuid.UUID(int=n)),
            patient_key=key,
            birth_year=1940,
            care_type=care_type,
            hospital_id=None,
            subregion_id=None,
            origin_setting="home",
            urgency_level=1,
            events=tuple(
                f.Event(seq=i, type=k, occurred_at=t0 + d, recorded_at=t0 + d)
                for i, (k, d) in enumerate(log, start=1)
            ),
        )

    day = timedelta(days=1)
    logs = [
        stay(1, "a", "wlz_crisis", ("offer_accepted", 2 * day)),  # waits 3 and 4 March
        stay(2, "b", "wlz_crisis", ("cancelled", timedelta(hours=3))),  # never at a midnight
        stay(3, "c", "wlz_crisis"),  # still waiting
        stay(4, "c", "wlz_crisis"),  # the same patient again: counted once
        stay(5, "d", "elv_high"),  # another care type
    ]
    period = f.Period(date(2026, 3, 1), date(2026, 3, 8))
    got = f.wlz_crisis_waiting(logs, period, now=t0 + 3 * day)
    assert [(r.day.day, r.waiting) for r in got] == [(1, 0), (2, 0), (3, 2), (4, 2), (5, 1)]
