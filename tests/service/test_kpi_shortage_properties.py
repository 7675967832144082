"""The shortage KPI in SQL (app.kpi.queries) agrees exactly with its reference (app.kpi.formulas)
on random shortage moments, on SQLite and PostgreSQL (docs/domain.md §6.10)."""

from __future__ import annotations

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
    REGION,
    SUBREGIONS,
    LoopThread,
    _clear,
    instants,
    kdb,
    periods,
)

__all__ = ["kdb"]  # the module-scoped database fixture, shared with the other KPI properties

OTHER_REGION = uuid.UUID(int=0xF1)

shortages = st.lists(
    st.tuples(
        st.builds(
            f.Shortage,
            kind=st.sampled_from([f.HOLD_REFUSED, f.SEARCH_EMPTY]),
            care_type=st.sampled_from(["elv_high", "grz", "wlz_crisis"]),
            subregion_id=st.sampled_from([*(str(s) for s in SUBREGIONS), None]),
            occurred_at=instants,
        ),
        st.sampled_from([REGION, REGION, REGION, OTHER_REGION]),
    ),
    max_size=30,
)


async def _insert(db: Database, data: list[tuple[f.Shortage, uuid.UUID]]) -> None:
    await _clear(db, ["shortage_event"])
    if not data:
        return
    async with db.engine.begin() as conn:
        await q.record_shortage(
            conn,
            [
                (e.kind, str(region), e.subregion_id, e.care_type, e.occurred_at)
                for e, region in data
            ],
        )


@pytest.mark.slow
@PROPS
@given(
    data=shortages,
    period=periods(),
    sub=st.sampled_from([None, None, str(SUBREGIONS[0])]),
    care=st.sampled_from([None, None, "grz"]),
    scoped=st.booleans(),
)
def test_shortage_agrees_with_the_reference(
    kdb: tuple[LoopThread, Database],
    data: list[tuple[f.Shortage, uuid.UUID]],
    period: f.Period,
    sub: str | None,
    care: str | None,
    scoped: bool,
) -> None:
    runner, db = kdb
    runner.run(_insert(db, data))

    async def compute() -> list[f.ShortageRow]:
        async with db.read() as conn:
            return await q.shortage(
                conn,
                period,
                region_id=str(REGION) if scoped else None,
                subregion_id=sub,
                care_type=care,
            )

    got = runner.run(compute())
    events = [e for e, region in data if not scoped or region == REGION]
    assert got == f.shortage(events, period, subregion_id=sub, care_type=care)


def test_shortage_reference_by_example() -> None:
    """Moments count on their local date (a refusal at 23:30 UTC in winter is the next day)."""
    t = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)  # 00:30 on 6 January in Amsterdam
    events = [
        f.Shortage(f.HOLD_REFUSED, "grz", "s1", t),
        f.Shortage(f.SEARCH_EMPTY, "grz", "s1", t + timedelta(hours=1)),
        f.Shortage(f.SEARCH_EMPTY, "grz", None, t),
        f.Shortage(f.SEARCH_EMPTY, "elv_high", "s1", t - timedelta(hours=2)),
    ]
    rows = f.shortage(events, f.Period(date(2026, 1, 1), date(2026, 2, 1)))
    assert [
        (r.day.day, r.care_type, r.subregion, r.holds_refused, r.searches_empty) for r in rows
    ] == [
        (5, "elv_high", "s1", 0, 1),
        (6, "grz", "s1", 1, 1),
        (6, "grz", "unknown", 0, 1),
    ]
