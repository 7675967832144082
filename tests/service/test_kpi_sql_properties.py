"""SQL KPIs (app.kpi.queries) agree exactly with the reference (app.kpi.formulas).

Random transfer logs are inserted in bulk, in one transaction, straight into the tables (the
service would refuse many of these logs; the definitions must still agree on them), the tables
are emptied between examples, and every KPI is computed both ways. The KPI summaries the SQL
reads (``app.kpi.episodes``) are then filled either as the services do, one event or report at a
time in ``seq`` / id order, or by the rebuild from the logs (migration 0006's backfill); on the
incremental path the summaries must also equal a rebuild, column for column. Each example checks all
placement-based KPIs on the same log. ``JUISTEPLEK_KPI_EXAMPLES`` sets the number of examples
per test (CI: 200); the default keeps this file short on a laptop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text

from app.capacity.models import CapacityReport, UnitStatus
from app.db import Database
from app.kpi import episodes
from app.kpi import formulas as f
from app.kpi import queries as q
from app.kpi.models import InflowCount, KpiCapacityDay, KpiPlacementDecline, KpiReadyInterval
from app.placement.models import Placement, TransferEvent
from app.registry.models import Location, Organisation, Region, Subregion, Unit
from tests.conftest import truncate_all

T = TypeVar("T")
EXAMPLES = int(os.environ.get("JUISTEPLEK_KPI_EXAMPLES", "60"))
PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    derandomize=os.environ.get("JUISTEPLEK_KPI_DERANDOMIZE", "1") == "1",
)

REGION = uuid.UUID(int=0xE1)
SUBREGIONS = [uuid.UUID(int=0xE2), uuid.UUID(int=0xE3)]
HOSPITALS = [uuid.UUID(int=0xE4), uuid.UUID(int=0xE5)]
VVT = uuid.UUID(int=0xE6)
LOCATIONS = [uuid.UUID(int=0xE7), uuid.UUID(int=0xE8)]
# Spans a new year and both DST changes (2025-10-26, 2026-03-29).
WINDOW_START = datetime(2025, 10, 20, tzinfo=UTC)
WINDOW_MINUTES = 60 * 24 * 170
EVENT_TYPES = [
    "medically_ready",
    "ready_revoked",
    "hospital_admitted",
    "transferred",
    "cancelled",
    "request_created",
    "triaged",
    "offer_sent",
    "offer_accepted",
    "offer_declined",
    "hold_expired",
    "escalated",
]
CARE_TYPES = ["elv_high", "wlz_crisis", "ggz_crisis", "grz"]


class LoopThread:
    """An event loop on its own thread: hypothesis drives sync code, the engine stays async."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


async def _setup(db: Database) -> None:
    await truncate_all(db)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    async with db.engine.begin() as conn:
        await conn.execute(insert(Region), [{"id": REGION, "code": "kpi-t", "name": "KPI test"}])
        await conn.execute(
            insert(Subregion),
            [
                {"id": s, "region_id": REGION, "code": f"kpi-{i}", "name": f"S{i}"}
                for i, s in enumerate(SUBREGIONS)
            ],
        )
        await conn.execute(
            insert(Organisation),
            [
                {
                    "id": o,
                    "region_id": REGION,
                    "name": f"O{i}",
                    "kind": "hospital" if o in HOSPITALS else "vvt",
                    "active": True,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, o in enumerate([*HOSPITALS, VVT])
            ],
        )
        await conn.execute(
            insert(Location),
            [
                {
                    "id": loc,
                    "organisation_id": VVT,
                    "subregion_id": SUBREGIONS[i],
                    "name": f"L{i}",
                    "address": "x",
                    "postcode": "2300 AA",
                    "municipality": "Leiden",
                    "latitude": 52.0,
                    "longitude": 4.5,
                    "active": True,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, loc in enumerate(LOCATIONS)
            ],
        )
        await q.ensure_calendar(conn, date(2015, 1, 1), date(2041, 1, 1))


@pytest.fixture(scope="module")
def kdb(database_url: str) -> Iterator[tuple[LoopThread, Database]]:
    runner = LoopThread()
    db = Database.from_url(database_url, pool_size=2, max_overflow=0)
    runner.run(_setup(db))
    yield runner, db
    runner.run(truncate_all(db))
    runner.run(db.dispose())
    runner.close()


async def _clear(db: Database, tables: list[str]) -> None:
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))


# --- strategies ---------------------------------------------------------------------------------

instants = st.integers(0, WINDOW_MINUTES).map(lambda m: WINDOW_START + timedelta(minutes=m))


@st.composite
def events(draw: st.DrawFn, start: datetime) -> list[f.Event]:
    out = []
    t = start
    types = draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=0, max_size=9))
    if draw(st.integers(0, 9)) > 0:
        types = ["request_created", *types]
    for seq, kind in enumerate(types, start=1):
        # Mostly forward; sometimes back-dated before the previous event; µs now and then.
        t += timedelta(
            minutes=draw(st.sampled_from([0, 1, 30, 59, 60, 61, 300, 600, 1440, 2000, 4000, -900])),
            microseconds=draw(st.sampled_from([0, 0, 0, 1, 999_999])),
        )
        lag = draw(st.sampled_from([0, 0, 60, 48 * 60, 48 * 60 + 1, 72 * 60]))
        reason = None
        level = None
        if kind == "cancelled":
            reason = draw(st.sampled_from(["died", "recovered", "other"]))
        elif kind == "offer_declined":
            reason = draw(st.sampled_from(["no_place_after_all", "staff_shortage", None]))
        elif kind == "escalated":
            level = draw(st.sampled_from(["region", "national", None]))
        out.append(
            f.Event(
                seq=seq,
                type=kind,
                occurred_at=t,
                recorded_at=t + timedelta(minutes=lag),
                reason=reason,
                level=level,
            )
        )
    return out


@st.composite
def stays(draw: st.DrawFn) -> list[f.Stay]:
    out = []
    for _ in range(draw(st.integers(0, 8))):
        sub = draw(st.sampled_from([*SUBREGIONS, None]))
        out.append(
            f.Stay(
                id=str(uuid.UUID(int=draw(st.integers(1, 2**60)))),
                patient_key=f"pk{draw(st.integers(0, 5))}",
                birth_year=draw(st.sampled_from([1930, 1950, 1951, 1955, 1975, 2010])),
                care_type=draw(st.sampled_from(CARE_TYPES)),
                hospital_id=str(draw(st.sampled_from(HOSPITALS))),
                subregion_id=None if sub is None else str(sub),
                origin_setting=draw(st.sampled_from(["hospital_ward", "seh", "hap"])),
                urgency_level=draw(st.integers(0, 5)),
                events=tuple(draw(events(draw(instants)))),
            )
        )
    # distinct ids
    return list({s.id: s for s in out}.values())


@st.composite
def periods(draw: st.DrawFn) -> f.Period:
    start = (WINDOW_START + timedelta(days=draw(st.integers(0, 160)))).date()
    return f.Period(start, start + timedelta(days=draw(st.integers(1, 75))))


_KPI_COLUMNS = [
    Placement.id,
    Placement.kpi_requested_at,
    Placement.kpi_triaged_at,
    Placement.kpi_accepted_at,
    Placement.kpi_ready_at,
    Placement.kpi_cancelled_at,
    Placement.kpi_escalated,
    Placement.kpi_expired_holds,
]

_DECLINE_COLUMNS = [
    KpiPlacementDecline.placement_id,
    KpiPlacementDecline.reason,
    KpiPlacementDecline.declines,
]


_INTERVAL_COLUMNS = [
    KpiReadyInterval.placement_id,
    KpiReadyInterval.start_seq,
    KpiReadyInterval.start_at,
    KpiReadyInterval.start_day,
    KpiReadyInterval.start_year,
    KpiReadyInterval.end_at,
    KpiReadyInterval.end_day,
    KpiReadyInterval.end_kind,
    KpiReadyInterval.backdated,
]


def _intervals(items: list[f.Stay]) -> list[tuple[Any, ...]]:
    """The rows ``kpi_ready_interval`` must hold: the reference's intervals, with the seq of
    the event that opened each (the first ``medically_ready`` of the run)."""
    out = []
    for s in items:
        for seq, iv in zip(_opening_seqs(s), f.ready_intervals(s), strict=True):
            out.append(
                (
                    uuid.UUID(s.id),
                    seq,
                    iv.start,
                    f.local_day(iv.start),
                    f.local_date(iv.start).year,
                    iv.end,
                    None if iv.end is None else f.local_day(iv.end),
                    iv.end_kind,
                    int(iv.backdated),
                )
            )
    return sorted(out)


def _opening_seqs(stay: f.Stay) -> list[int]:
    """Seqs of the ``medically_ready`` events that open an interval (formulas.ready_intervals)."""
    seqs: list[int] = []
    open_ = False
    for e in stay.ordered():
        if e.type == f.MEDICALLY_READY:
            if not open_:
                seqs.append(e.seq)
            open_ = True
        elif e.type in episodes.READY_CLOSING:
            open_ = False
            if e.type in f.FINAL_EVENTS:
                break
    return seqs


async def _rows(conn: Any, *columns: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in await conn.execute(select(*columns)))


async def _insert_stays(db: Database, items: list[f.Stay], incremental: bool) -> None:
    placements = []
    rows = []
    for s in items:
        first = min((e.occurred_at for e in s.events), default=WINDOW_START)
        placements.append(
            {
                "id": uuid.UUID(s.id),
                "region_id": REGION,
                "referrer_organisation_id": uuid.UUID(s.hospital_id or str(HOSPITALS[0])),
                "subregion_id": None if s.subregion_id is None else uuid.UUID(s.subregion_id),
                "origin_setting": s.origin_setting,
                "patient_key": s.patient_key,
                "birth_year": s.birth_year,
                "sex": "female",
                "target_group": "somatic",
                "care_type": s.care_type,
                "feature_mask": 0,
                "urgency_system": "uul",
                "urgency_code": str(s.urgency_level),
                "urgency_level": s.urgency_level,
                "state": "requested",
                "version": 1,
                "event_seq": len(s.events),
                "last_event_at": first,
                "escalation_level": "subregion",
                "created_at": first,
                "updated_at": first,
            }
        )
        for e in s.events:
            rows.append(
                {
                    "placement_id": uuid.UUID(s.id),
                    "seq": e.seq,
                    "event_type": e.type,
                    "occurred_at": e.occurred_at,
                    "recorded_at": e.recorded_at,
                    "from_state": None,
                    "to_state": "requested",
                    "reason": e.reason,
                    "level": e.level,
                    "payload": "{}",
                }
            )
    async with db.engine.begin() as conn:
        if placements:
            await conn.execute(insert(Placement), placements)
        if rows:
            await conn.execute(insert(TransferEvent), rows)
        if not incremental:
            await episodes.rebuild_placements(conn)
            assert await _rows(conn, *_INTERVAL_COLUMNS) == _intervals(items)
            return
        for s in items:
            for e in s.ordered():
                await episodes.track_event(
                    conn,
                    placement_id=uuid.UUID(s.id),
                    seq=e.seq,
                    event_type=e.type,
                    occurred_at=e.occurred_at,
                    recorded_at=e.recorded_at,
                    reason=e.reason,
                    level=e.level,
                )
        columns = (_KPI_COLUMNS, _DECLINE_COLUMNS, _INTERVAL_COLUMNS)
        kept = [await _rows(conn, *c) for c in columns]
        assert kept[2] == _intervals(items)
        await episodes.rebuild_placements(conn)
        assert [await _rows(conn, *c) for c in columns] == kept


STAY_GROUPS = [None, "month", "week", "hospital", "subregion", "age_band", "care_type", "source"]


@st.composite
def stay_filters(draw: st.DrawFn) -> f.StayFilter:
    return f.StayFilter(
        age_min=draw(st.sampled_from([None, 75])),
        definition=draw(st.sampled_from(["broad", "narrow"])),
        hospital_id=draw(st.sampled_from([None, None, str(HOSPITALS[0])])),
        subregion_id=draw(st.sampled_from([None, None, str(SUBREGIONS[1])])),
    )


@pytest.mark.slow
@PROPS
@given(
    data=stays(),
    period=periods(),
    now=instants,
    flt=stay_filters(),
    groups=st.tuples(*[st.sampled_from(STAY_GROUPS) for _ in range(4)]),
    incremental=st.booleans(),
)
def test_placement_kpis_agree_with_the_reference(
    kdb: tuple[LoopThread, Database],
    data: list[f.Stay],
    period: f.Period,
    now: datetime,
    flt: f.StayFilter,
    groups: tuple[str | None, str | None, str | None, str | None],
    incremental: bool,
) -> None:
    runner, db = kdb
    runner.run(
        _clear(db, ["kpi_ready_interval", "kpi_placement_decline", "transfer_event", "placement"])
    )
    runner.run(_insert_stays(db, data, incremental))
    g_vbd, g_lead, g_esc, g_ggz = groups

    async def compute() -> tuple[Any, ...]:
        async with db.read() as conn:
            return (
                await q.wrong_bed_days(conn, period, now=now, flt=flt, group_by=g_vbd),
                await q.lead_times(conn, period, flt=flt, group_by=g_lead),
                await q.escalations(conn, period, flt=flt, group_by=g_esc),
                await q.ggz_crisis_within_norm(
                    conn, period, now=now, subregion_id=flt.subregion_id, group_by=g_ggz
                ),
            )

    vbd, lead, esc, ggz = runner.run(compute())
    assert vbd == f.wrong_bed_days(data, period, now=now, flt=flt, group_by=g_vbd)
    assert lead == [r.summary() for r in f.lead_times(data, period, flt=flt, group_by=g_lead)]
    assert esc == f.escalations(data, period, flt=flt, group_by=g_esc)
    assert ggz == f.ggz_crisis_within_norm(
        data, period, now=now, subregion_id=flt.subregion_id, group_by=g_ggz
    )


# --- inflow -------------------------------------------------------------------------------------


@st.composite
def inflow_lines(draw: st.DrawFn) -> list[f.InflowLine]:
    out: dict[tuple[Any, ...], f.InflowLine] = {}
    for _ in range(draw(st.integers(0, 12))):
        source = draw(st.sampled_from(f.INFLOW_SOURCES))
        start = (WINDOW_START + timedelta(days=draw(st.integers(0, 165)))).date()
        sub = draw(st.sampled_from([*SUBREGIONS, None]))
        line = f.InflowLine(
            source=source,
            organisation_id=str(draw(st.sampled_from(HOSPITALS))),
            subregion_id=None if sub is None else str(sub),
            period_start=start,
            period_end=start + timedelta(days=draw(st.sampled_from([1, 7]))),
            age_band=draw(st.sampled_from([b for b, _, _ in f.AGE_BANDS])),
            urgency_native=draw(st.sampled_from(f.URGENCY_CODES[source])),
            contact_type=draw(st.sampled_from(f.CONTACT_TYPES[source])),
            count=draw(st.integers(0, 500)),
        )
        key = (
            line.source,
            line.organisation_id,
            line.period_start,
            line.period_end,
            line.age_band,
            line.urgency_native,
            line.contact_type,
        )
        out[key] = line
    return list(out.values())


@PROPS
@given(
    lines=inflow_lines(),
    period=periods(),
    age_min=st.sampled_from([None, 65, 75, 85, 90]),
    sub=st.sampled_from([None, str(SUBREGIONS[0])]),
    group_by=st.sampled_from([None, "month", "week", "subregion", "age_band", "source"]),
)
def test_inflow_agrees_with_the_reference(
    kdb: tuple[LoopThread, Database],
    lines: list[f.InflowLine],
    period: f.Period,
    age_min: int | None,
    sub: str | None,
    group_by: str | None,
) -> None:
    runner, db = kdb

    async def run() -> list[f.InflowRow]:
        await _clear(db, ["inflow_count"])
        async with db.engine.begin() as conn:
            if lines:
                await conn.execute(
                    insert(InflowCount),
                    [
                        {
                            "source": x.source,
                            "organisation_id": uuid.UUID(x.organisation_id),
                            "subregion_id": None
                            if x.subregion_id is None
                            else uuid.UUID(x.subregion_id),
                            "period_start": x.period_start,
                            "period_end": x.period_end,
                            "age_band": x.age_band,
                            "urgency_native": x.urgency_native,
                            "contact_type": x.contact_type,
                            "count": x.count,
                        }
                        for x in lines
                    ],
                )
        async with db.read() as conn:
            return await q.inflow(
                conn, period, age_min=age_min, subregion_id=sub, group_by=group_by
            )

    got = runner.run(run())
    assert got == f.inflow(lines, period, age_min=age_min, subregion_id=sub, group_by=group_by)


# --- capacity -----------------------------------------------------------------------------------

TTL_BED = timedelta(hours=4)
TTL_DN = timedelta(hours=24)


def _ttl(care_type: str) -> timedelta:
    return TTL_DN if care_type.startswith("district_nursing") else TTL_BED


REASONS = ["staff_shortage", "outbreak", "renovation", "full", "other"]
CapacityData = tuple[list[f.UnitInfo], list[f.Report], list[f.StatusChange]]


@st.composite
def capacity_data(draw: st.DrawFn, around: datetime | None = None) -> CapacityData:
    """Units, their reports and status changes; the changes start up to three days before
    ``around`` (the period's start), so closures overlap the period."""
    units = []
    reports = []
    statuses = []
    rid = 0
    sid = 0
    for i in range(draw(st.integers(0, 5))):
        unit = f.UnitInfo(
            id=str(uuid.UUID(int=0x1000 + i)),
            care_type=draw(st.sampled_from(["elv_high", "district_nursing", "grz"])),
            subregion_id=str(SUBREGIONS[draw(st.integers(0, 1))]),
            staffed_capacity=draw(st.integers(0, 12)),
            created_at=draw(instants),
            active=draw(st.booleans()),
        )
        units.append(unit)
        t = draw(instants)
        for _ in range(draw(st.integers(0, 8))):
            rid += 1
            t += timedelta(minutes=draw(st.sampled_from([0, 10, 239, 240, 241, 1440, 1441, 3000])))
            reports.append(f.Report(rid, unit.id, draw(st.integers(0, 15)), t))
        t = (
            draw(instants)
            if around is None
            else around + timedelta(minutes=draw(st.integers(-3 * 1440, 10 * 1440)))
        )
        # Changes a day or more apart, the same instant (ties), and ends at, before and after
        # local midnights.
        steps = [0, 1, 60, 1439, 1440, 1441, 2880, 10_000]
        for _ in range(draw(st.integers(0, 6))):
            sid += 1
            t += timedelta(minutes=draw(st.sampled_from(steps)))
            accepting = draw(st.booleans())
            until = draw(st.none() | st.sampled_from(steps[1:]))
            statuses.append(
                f.StatusChange(
                    id=sid,
                    unit_id=unit.id,
                    accepting=accepting,
                    reason=None if accepting else draw(st.sampled_from(REASONS)),
                    changed_at=t,
                    until=None if accepting or until is None else t + timedelta(minutes=until),
                )
            )
    return units, reports, statuses


@st.composite
def capacity_case(draw: st.DrawFn) -> tuple[f.Period, CapacityData]:
    period = draw(periods())
    start = datetime(period.start.year, period.start.month, period.start.day, tzinfo=UTC)
    return period, draw(capacity_data(start))


@PROPS
@given(
    case=capacity_case(),
    group_by=st.sampled_from([None, "month", "week", "subregion", "care_type"]),
    sub=st.sampled_from([None, str(SUBREGIONS[1])]),
    incremental=st.booleans(),
)
def test_capacity_agrees_with_the_reference(
    kdb: tuple[LoopThread, Database],
    case: tuple[f.Period, CapacityData],
    group_by: str | None,
    sub: str | None,
    incremental: bool,
) -> None:
    runner, db = kdb
    period, (units, reports, statuses) = case
    period = f.Period(period.start, min(period.end, period.start + timedelta(days=40)))

    async def run() -> list[f.CapacityRow]:
        await _clear(
            db, ["kpi_capacity_day", "unit_capacity", "capacity_report", "unit_status", "unit"]
        )
        async with db.engine.begin() as conn:
            if units:
                await conn.execute(
                    insert(Unit),
                    [
                        {
                            "id": uuid.UUID(u.id),
                            "location_id": LOCATIONS[
                                SUBREGIONS.index(uuid.UUID(str(u.subregion_id)))
                            ],
                            "name": "u",
                            "care_type": u.care_type,
                            "target_group_mask": 1,
                            "feature_mask": 0,
                            "sex_policy": "any",
                            "staffed_capacity": u.staffed_capacity,
                            "active": u.active,
                            "version": 1,
                            "created_at": u.created_at,
                            "updated_at": u.created_at,
                        }
                        for u in units
                    ],
                )
            if reports:
                await conn.execute(
                    insert(CapacityReport),
                    [
                        {
                            "id": r.id,
                            "unit_id": uuid.UUID(r.unit_id),
                            "free": r.free,
                            "expected_free_24h": None,
                            "reported_at": r.reported_at,
                            "recorded_at": r.reported_at,
                            "source": "test",
                        }
                        for r in reports
                    ],
                )
            if statuses:
                await conn.execute(
                    insert(UnitStatus),
                    [
                        {
                            "id": c.id,
                            "unit_id": uuid.UUID(c.unit_id),
                            "accepting": c.accepting,
                            "reason": c.reason,
                            "detail": None,
                            "until": c.until,
                            "changed_at": c.changed_at,
                        }
                        for c in statuses
                    ],
                )
            if not incremental:
                await episodes.rebuild_capacity_days(conn)
            else:
                for r in reports:
                    await episodes.track_capacity_report(
                        conn,
                        report_id=r.id,
                        unit_id=uuid.UUID(r.unit_id),
                        reported_at=r.reported_at,
                        free=r.free,
                    )
                day = KpiCapacityDay
                columns = (day.unit_id, day.day_no, day.report_id, day.reported_at, day.free)
                kept = await _rows(conn, *columns)
                await episodes.rebuild_capacity_days(conn)
                assert await _rows(conn, *columns) == kept
        async with db.read() as conn:
            return await q.capacity(
                conn,
                period,
                ttl_bed=TTL_BED,
                ttl_district_nursing=TTL_DN,
                group_by=group_by,
                subregion_id=sub,
            )

    got = runner.run(run())
    want = f.capacity(
        units,
        reports,
        f.census_moments(period),
        ttl=_ttl,
        group_by=group_by,
        subregion_id=sub,
        statuses=statuses,
    )
    assert got == want


# --- admission guarantee (respite and observation, docs/domain.md §6.5) --------------------------


@st.composite
def guarantee_stays(draw: st.DrawFn) -> list[f.Stay]:
    """Random logs in which most placements are for a guaranteed care type."""
    return [
        dataclasses.replace(
            s, care_type=draw(st.sampled_from(["respite", "observation", "respite", "elv_high"]))
        )
        for s in draw(stays())
    ]


@pytest.mark.slow
@PROPS
@given(
    data=guarantee_stays(),
    period=periods(),
    now=instants,
    flt=stay_filters(),
    care_type=st.sampled_from([None, None, "respite", "observation"]),
    group_by=st.sampled_from(STAY_GROUPS),
    incremental=st.booleans(),
)
def test_admission_guarantee_agrees_with_the_reference(
    kdb: tuple[LoopThread, Database],
    data: list[f.Stay],
    period: f.Period,
    now: datetime,
    flt: f.StayFilter,
    care_type: str | None,
    group_by: str | None,
    incremental: bool,
) -> None:
    runner, db = kdb
    runner.run(
        _clear(db, ["kpi_ready_interval", "kpi_placement_decline", "transfer_event", "placement"])
    )
    runner.run(_insert_stays(db, data, incremental))
    flt = dataclasses.replace(flt, care_type=care_type)

    async def compute() -> list[f.GuaranteeRow]:
        async with db.read() as conn:
            return await q.admission_guarantee(conn, period, now=now, flt=flt, group_by=group_by)

    got = runner.run(compute())
    assert got == f.admission_guarantee(data, period, now=now, flt=flt, group_by=group_by)
    for row in got:  # every request falls in exactly one outcome
        outcomes = row.within + row.late + row.open_overdue + row.open_within + row.cancelled
        assert outcomes == row.requests


def test_admission_guarantee_reference_by_example() -> None:
    """Placed at exactly 24 h counts; a minute later is late; open requests wait for 24 h."""
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def stay(n: int, care_type: str, *tail: tuple[str, timedelta]) -> f.Stay:
        log = [("request_created", timedelta()), *tail]
        return f.Stay(
            id=str(uuid.UUID(int=n)),
            patient_key=f"pk{n}",
            birth_year=1940,
            care_type=care_type,
            hospital_id=None,
            subregion_id=None,
            origin_setting="home",
            urgency_level=4,
            events=tuple(
                f.Event(seq=i, type=k, occurred_at=t0 + d, recorded_at=t0 + d)
                for i, (k, d) in enumerate(log, start=1)
            ),
        )

    day = timedelta(hours=24)
    logs = [
        stay(1, "respite", ("offer_accepted", day)),
        stay(2, "observation", ("offer_accepted", day + timedelta(minutes=1))),
        stay(3, "respite", ("cancelled", timedelta(hours=2))),
        stay(4, "observation"),
        stay(5, "elv_high", ("offer_accepted", timedelta(hours=1))),
    ]
    period = f.Period(date(2026, 3, 1), date(2026, 4, 1))
    early = f.admission_guarantee(logs, period, now=t0 + timedelta(hours=3))
    assert [(r.requests, r.within, r.late, r.cancelled, r.open_within) for r in early] == [
        (4, 1, 1, 1, 1)
    ]
    assert early[0].share == 0.5
    late = f.admission_guarantee(logs, period, now=t0 + 2 * day, group_by="care_type")
    assert [(r.group, r.within, r.late, r.open_overdue, r.share) for r in late] == [
        ("observation", 0, 1, 1, 0.0),
        ("respite", 1, 0, 0, 1.0),
    ]
