"""The report-now KPI in SQL (``queries.report_responses``) agrees exactly with the reference
(``formulas.report_responses``) on random requests and capacity reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert

from app.capacity.models import CapacityReport
from app.db import Database
from app.kpi import formulas as f
from app.kpi import queries as q
from app.registry.models import Organisation, Unit
from app.reportnow.models import ReportRequest, ReportRequestUnit
from tests.service.test_kpi_sql_properties import (
    LOCATIONS,
    PROPS,
    REGION,
    VVT,
    LoopThread,
    _clear,
    _setup,
    instants,
    periods,
)

ORGS = [VVT, uuid.UUID(int=0xF1)]
UNITS = [uuid.UUID(int=0x2000 + i) for i in range(6)]
UNIT_ORG = {u: ORGS[i % 2] for i, u in enumerate(UNITS)}


@pytest.fixture(scope="module")
def rdb(database_url: str) -> Iterator[tuple[LoopThread, Database]]:
    runner = LoopThread()
    db = Database.from_url(database_url, pool_size=2, max_overflow=0)

    async def setup() -> None:
        await _setup(db)
        now = f.local_midnight(f.date_of(9000))
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(Organisation),
                [
                    {
                        "id": ORGS[1],
                        "region_id": REGION,
                        "name": "O-second",
                        "kind": "vvt",
                        "active": True,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                ],
            )
            await conn.execute(
                insert(Unit),
                [
                    {
                        "id": u,
                        "location_id": LOCATIONS[0],
                        "name": "u",
                        "care_type": "elv_high",
                        "target_group_mask": 1,
                        "feature_mask": 0,
                        "sex_policy": "any",
                        "staffed_capacity": 5,
                        "active": True,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for u in UNITS
                ],
            )

    runner.run(setup())
    yield runner, db
    runner.run(db.dispose())
    runner.close()


@st.composite
def cases(
    draw: st.DrawFn,
) -> tuple[f.Period, list[f.ReportTarget], list[f.ReceivedReport]]:
    period = draw(periods())
    targets = []
    reports = []
    steps = st.sampled_from([0, 1, 59, 60, 61, 600, 1440, 3000])
    micro = st.sampled_from([0, 0, 1, 999_999])
    for i in range(draw(st.integers(0, 5))):
        created = draw(instants) + timedelta(microseconds=draw(micro))
        within = draw(st.sampled_from([1, 30, 60, 240]))
        for unit in draw(st.lists(st.sampled_from(UNITS), min_size=1, max_size=6, unique=True)):
            targets.append(
                f.ReportTarget(
                    request_id=str(uuid.UUID(int=0x3000 + i)),
                    organisation_id=str(UNIT_ORG[unit]),
                    unit_id=str(unit),
                    created_at=created,
                    deadline_at=created + timedelta(minutes=within),
                )
            )
            # Reports before, at and after the request, some exactly at the deadline.
            for _ in range(draw(st.integers(0, 3))):
                offset = timedelta(
                    minutes=draw(steps) * draw(st.sampled_from([1, -1])),
                    microseconds=draw(micro),
                )
                at = draw(st.sampled_from([created + offset, created + timedelta(minutes=within)]))
                reports.append(f.ReceivedReport(str(unit), at))
    return period, targets, reports


@PROPS
@given(case=cases())
def test_report_responses_agree_with_the_reference(
    rdb: tuple[LoopThread, Database],
    case: tuple[f.Period, list[f.ReportTarget], list[f.ReceivedReport]],
) -> None:
    runner, db = rdb
    period, targets, reports = case

    async def run() -> list[f.ReportResponseSummary]:
        await _clear(db, ["report_request_unit", "report_request", "capacity_report"])
        requests = {t.request_id: t for t in targets}
        async with db.engine.begin() as conn:
            if requests:
                await conn.execute(
                    insert(ReportRequest),
                    [
                        {
                            "id": uuid.UUID(t.request_id),
                            "region_id": REGION,
                            "care_types": "",
                            "subregion_ids": "",
                            "within_minutes": 1,
                            "created_at": t.created_at,
                            "deadline_at": t.deadline_at,
                        }
                        for t in requests.values()
                    ],
                )
                await conn.execute(
                    insert(ReportRequestUnit),
                    [
                        {
                            "request_id": uuid.UUID(t.request_id),
                            "unit_id": uuid.UUID(t.unit_id),
                            "organisation_id": uuid.UUID(t.organisation_id),
                        }
                        for t in targets
                    ],
                )
            if reports:
                await conn.execute(
                    insert(CapacityReport),
                    [
                        {
                            "id": n,
                            "unit_id": uuid.UUID(r.unit_id),
                            "free": 1,
                            "reported_at": r.recorded_at,
                            "recorded_at": r.recorded_at,
                            "source": "test",
                        }
                        for n, r in enumerate(reports, start=1)
                    ],
                )
        async with db.read() as conn:
            return await q.report_responses(conn, period)

    assert runner.run(run()) == f.report_responses(targets, reports, period)


def test_the_reference_on_a_worked_example() -> None:
    t0 = f.local_midnight(f.date_of(9500)) + timedelta(hours=9)
    period = f.Period(f.date_of(9500), f.date_of(9501))
    a, b = str(ORGS[0]), str(ORGS[1])
    targets = [
        f.ReportTarget("r", a, "u1", t0, t0 + timedelta(minutes=30)),
        f.ReportTarget("r", a, "u2", t0, t0 + timedelta(minutes=30)),
        f.ReportTarget("r", a, "u3", t0, t0 + timedelta(minutes=30)),
        f.ReportTarget("r", b, "u4", t0, t0 + timedelta(minutes=30)),
    ]
    reports = [
        f.ReceivedReport("u1", t0 - timedelta(minutes=1)),  # before the request: no answer
        f.ReceivedReport("u1", t0 + timedelta(minutes=10)),
        f.ReceivedReport("u1", t0 + timedelta(minutes=5)),  # the first after it answers
        f.ReceivedReport("u2", t0 + timedelta(minutes=45)),  # late
    ]
    minute = 60_000_000
    assert f.report_responses(targets, reports, period) == [
        f.ReportResponseSummary(
            a, targeted=3, answered=2, within_deadline=1, median_us=25 * minute
        ),
        f.ReportResponseSummary(b, targeted=1, answered=0, within_deadline=0, median_us=None),
    ]
    assert f.report_responses(targets, reports, period)[0].share_within_deadline == 1 / 3
