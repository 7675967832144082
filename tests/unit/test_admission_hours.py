"""Admission hours (docs/domain.md §15): "admits at t?" and "next admission after t" in
Europe/Amsterdam wall-clock time, across the summer-time changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from app.capacity.admission import (
    ALWAYS,
    AMSTERDAM,
    Schedule,
    _instant,
    admission_fields,
    admits_at,
    check_intervals,
    from_document,
    next_admission,
    order_hits,
    parse_hhmm,
    to_document,
)

H = 60
OFFICE = Schedule(
    always_open=False,
    weekly=(((8 * H, 17 * H),),) * 5 + (((10 * H, 12 * H),), ()),
    exceptions={date(2026, 12, 25): (), date(2026, 12, 24): ((8 * H, 12 * H),)},
)


def ams(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMSTERDAM)  # type: ignore[misc,arg-type]


def test_always_open() -> None:
    for t in (ams(2026, 3, 29, 3, 30), ams(2026, 12, 25, 0, 0), datetime(2026, 1, 1, tzinfo=UTC)):
        assert admits_at(ALWAYS, t)
        assert next_admission(ALWAYS, t) == t
    assert admission_fields(None, ams(2026, 1, 1, 3)) == (True, None)


@pytest.mark.parametrize(
    ("at", "admits", "nxt"),
    [
        (ams(2026, 12, 7, 7, 59), False, ams(2026, 12, 7, 8)),  # Monday before opening
        (ams(2026, 12, 7, 8, 0), True, ams(2026, 12, 7, 8)),
        (ams(2026, 12, 7, 16, 59, 59), True, ams(2026, 12, 7, 16, 59, 59)),
        (ams(2026, 12, 7, 17, 0), False, ams(2026, 12, 8, 8)),  # closing time is closed
        (ams(2026, 12, 11, 18, 0), False, ams(2026, 12, 12, 10)),  # Friday -> Saturday 10:00
        (ams(2026, 12, 12, 12, 0), False, ams(2026, 12, 14, 8)),  # Saturday -> Monday
        (ams(2026, 12, 24, 13, 0), False, ams(2026, 12, 26, 10)),  # short day, then closed
        (ams(2026, 12, 25, 9, 0), False, ams(2026, 12, 26, 10)),  # closed on the 25th
    ],
)
def test_office_hours(at: datetime, admits: bool, nxt: datetime) -> None:
    assert admits_at(OFFICE, at) is admits
    assert next_admission(OFFICE, at) == nxt
    assert next_admission(OFFICE, at.astimezone(UTC)) == nxt  # any zone in, same instant


def test_hours_keep_their_wall_clock_time_across_dst() -> None:
    daily = Schedule(always_open=False, weekly=(((8 * H, 9 * H),),) * 7)
    # 08:00 is 07:00 UTC in winter and 06:00 UTC in summer.
    assert next_admission(daily, ams(2026, 3, 28, 12)) == datetime(2026, 3, 29, 6, tzinfo=UTC)
    assert next_admission(daily, ams(2026, 3, 27, 12)) == datetime(2026, 3, 28, 7, tzinfo=UTC)
    assert next_admission(daily, ams(2026, 10, 24, 12)) == datetime(2026, 10, 25, 7, tzinfo=UTC)


def test_spring_gap_and_autumn_repeat() -> None:
    # 2026-03-29 02:00-03:00 does not exist: a 02:30 opening opens at 03:00 CEST (01:00 UTC).
    assert _instant(date(2026, 3, 29), 150) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    sunday = Schedule(always_open=False, weekly=((),) * 6 + (((150, 5 * H),),))
    assert next_admission(sunday, ams(2026, 3, 29, 0, 0)) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    # Hours wholly inside the gap never happen that day: the next Sunday.
    gap_only = Schedule(always_open=False, weekly=((),) * 6 + (((2 * H + 10, 2 * H + 40),),))
    assert next_admission(gap_only, ams(2026, 3, 29, 0, 0)) == ams(2026, 4, 5, 2, 10)
    # 2026-10-25 02:00-03:00 happens twice; both count, and the first is "next".
    night = Schedule(always_open=False, weekly=((),) * 6 + (((2 * H, 3 * H),),))
    first, second = (datetime(2026, 10, 25, h, 30, tzinfo=UTC) for h in (0, 1))
    assert admits_at(night, first)
    assert admits_at(night, second)
    assert not admits_at(night, datetime(2026, 10, 25, 2, 0, tzinfo=UTC))  # 03:00 CET
    assert next_admission(night, ams(2026, 10, 25, 1)) == datetime(2026, 10, 25, 0, tzinfo=UTC)


def test_overnight_hours_are_two_intervals() -> None:
    nights = Schedule(always_open=False, weekly=(((0, 7 * H), (22 * H, 24 * H)),) * 7)
    assert admits_at(nights, ams(2026, 12, 7, 23, 59, 59))
    assert admits_at(nights, ams(2026, 12, 8, 0, 0))
    assert not admits_at(nights, ams(2026, 12, 8, 7, 0))
    assert next_admission(nights, ams(2026, 12, 8, 12)) == ams(2026, 12, 8, 22)


def test_never_admitting_schedule() -> None:
    assert next_admission(Schedule(always_open=False), ams(2026, 1, 1)) is None
    closed_day = Schedule(exceptions={date(2026, 1, 1): ()})
    assert not admits_at(closed_day, ams(2026, 1, 1, 12))
    assert next_admission(closed_day, ams(2026, 1, 1, 12)) == ams(2026, 1, 2)


@pytest.mark.parametrize("start", [ams(2026, 3, 26), ams(2026, 10, 22), ams(2026, 12, 21)])
def test_next_admission_matches_a_minute_by_minute_walk(start: datetime) -> None:
    """Reference: step a minute at a time until the unit admits (a week around each DST change
    and Christmas, every 37 minutes)."""
    schedule = Schedule(
        always_open=False,
        weekly=(((8 * H, 17 * H), (20 * H, 22 * H)),) * 5 + (((2 * H, 4 * H),), ((0, 3 * H),)),
        exceptions={date(2026, 12, 25): (), date(2026, 12, 24): ((1 * H, 2 * H + 30),)},
    )
    t = start.astimezone(UTC)
    while t < start.astimezone(UTC) + timedelta(days=7):
        walk = t
        while not admits_at(schedule, walk):
            walk += timedelta(minutes=1)
        assert next_admission(schedule, t) == walk, t
        t += timedelta(minutes=37)


def test_search_fields() -> None:
    stored = orjson.dumps(to_document(OFFICE)).decode()
    assert admission_fields(stored, ams(2026, 12, 7, 9)) == (True, None)
    assert admission_fields(stored, ams(2026, 12, 7, 18)) == (False, ams(2026, 12, 8, 8))
    closed = orjson.dumps(to_document(Schedule(always_open=False))).decode()
    assert admission_fields(closed, ams(2026, 12, 7, 18)) == (False, None)


def test_order_hits_puts_admitting_units_first() -> None:
    hits = [
        {"n": 1, "accepting": True, "admits_now": False},
        {"n": 2, "accepting": True, "admits_now": True},
        {"n": 3, "accepting": False, "admits_now": True},
        {"n": 4, "accepting": True, "admits_now": True},
        {"n": 5, "accepting": True, "admits_now": False},
    ]
    assert [h["n"] for h in order_hits(hits)] == [2, 4, 1, 5, 3]
    assert order_hits(hits[1:2]) == hits[1:2]


def test_document_round_trip_and_checks() -> None:
    doc = to_document(OFFICE)
    assert doc["weekly"]["mon"] == [{"opens": "08:00", "closes": "17:00"}]
    assert doc["weekly"]["sun"] == []
    assert doc["exceptions"][1] == {"date": "2026-12-25", "hours": []}
    assert from_document(doc) == OFFICE
    assert to_document(ALWAYS) == {"always_open": True, "weekly": {}, "exceptions": []}
    assert parse_hhmm("24:00") == 1440
    for bad in ("24:30", "7:00", "08:60", "ab:cd"):
        with pytest.raises(ValueError, match=r"HH:MM|between"):
            parse_hhmm(bad)
    with pytest.raises(ValueError, match="overlaps"):
        check_intervals([(8 * H, 12 * H), (11 * H, 13 * H)])
    with pytest.raises(ValueError, match="before"):
        check_intervals([(12 * H, 8 * H)])
    assert check_intervals([(12 * H, 13 * H), (8 * H, 12 * H)]) == (
        (8 * H, 12 * H),
        (12 * H, 13 * H),
    )
