"""Admission hours of a unit (docs/domain.md §15): pure, no I/O, no clock.

A unit admits either around the clock or in weekly hours, with exceptions for single dates
(closed, or other hours). Hours are local wall-clock time in Europe/Amsterdam, so "08:00" stays
08:00 across the change to and from summer time. An interval is [opens, closes) in minutes of the
day, the end up to 1440 ("24:00"); hours over midnight are two intervals, one on each day.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 1440
# How far ahead "next admission" looks; a schedule with no hours in a year+week never admits.
HORIZON_DAYS = 373

Interval = tuple[int, int]  # [from, to) in minutes after local midnight


@dataclass(frozen=True)
class Schedule:
    """Weekly hours (index 0 = Monday) and per-date exceptions; ``always_open``: 24/7 except
    where an exception says otherwise."""

    always_open: bool = True
    weekly: tuple[tuple[Interval, ...], ...] = ((),) * 7
    exceptions: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        if day in self.exceptions:
            return self.exceptions[day]
        if self.always_open:
            return ((0, MINUTES_PER_DAY),)
        return self.weekly[day.weekday()]


ALWAYS = Schedule()


def _local(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return t.astimezone(AMSTERDAM)


def admits_at(schedule: Schedule, t: datetime) -> bool:
    """Whether the unit admits at instant ``t`` (an aware datetime)."""
    local = _local(t)
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    return any(a <= minute < b for a, b in schedule.intervals_on(local.date()))


def _instant(day: date, minute: int) -> datetime:
    """The first instant whose Amsterdam wall-clock time is ``day`` + ``minute`` or later.

    A wall time in the spring-forward gap (02:00-03:00 on the last Sunday of March) does not
    exist: the answer is the gap's end. In the autumn's repeated hour it is the first of the two.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    t = wall.replace(tzinfo=AMSTERDAM, fold=0).astimezone(UTC)
    if t.astimezone(AMSTERDAM).replace(tzinfo=None) != wall:  # inside the gap
        step = timedelta(minutes=1)
        while (t - step).astimezone(AMSTERDAM).replace(tzinfo=None) >= wall:
            t -= step
    return t


def next_admission(schedule: Schedule, t: datetime) -> datetime | None:
    """``t`` itself when the unit admits at ``t``, else the next instant it starts admitting
    (UTC), or None when it has no admission hours within the horizon."""
    if admits_at(schedule, t):
        return t.astimezone(UTC)
    local = _local(t)
    for offset in range(HORIZON_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        for start, _end in sorted(schedule.intervals_on(day)):
            candidate = _instant(day, start)
            # An interval wholly inside the spring-forward gap never happens: skip it.
            if candidate > t and admits_at(schedule, candidate):
                return candidate
    return None


# --- the stored and sent form -----------------------------------------------------------------


def parse_hhmm(text: str) -> int:
    """'08:30' -> 510; '24:00' is the end of the day. Raises ValueError."""
    if len(text) != 5 or text[2] != ":" or not (text[:2].isdigit() and text[3:].isdigit()):
        raise ValueError(f"{text!r} is not HH:MM")
    h, m = int(text[:2]), int(text[3:])
    if m > 59 or h > 24 or (h == 24 and m != 0):
        raise ValueError(f"{text!r} is not a time between 00:00 and 24:00")
    return h * 60 + m


def format_hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def check_intervals(intervals: list[Interval]) -> tuple[Interval, ...]:
    """Sorted, each non-empty, none overlapping; raises ValueError naming the problem."""
    ordered = sorted(intervals)
    for a, b in ordered:
        if not 0 <= a < b <= MINUTES_PER_DAY:
            raise ValueError(f"{format_hhmm(a)}-{format_hhmm(b)}: 'opens' must lie before 'closes'")
    for (a1, b1), (a2, b2) in itertools.pairwise(ordered):
        if a2 < b1:
            raise ValueError(
                f"{format_hhmm(a1)}-{format_hhmm(b1)} overlaps {format_hhmm(a2)}-{format_hhmm(b2)}"
            )
    return tuple(ordered)


def to_document(schedule: Schedule) -> dict[str, Any]:
    """The JSON form (stored in ``unit.admission_hours`` and sent by the API)."""

    def hours(intervals: tuple[Interval, ...]) -> list[dict[str, str]]:
        return [{"opens": format_hhmm(a), "closes": format_hhmm(b)} for a, b in intervals]

    return {
        "always_open": schedule.always_open,
        "weekly": {}
        if schedule.always_open
        else {d: hours(schedule.weekly[i]) for i, d in enumerate(DAYS)},
        "exceptions": [
            {"date": d.isoformat(), "hours": hours(schedule.exceptions[d])}
            for d in sorted(schedule.exceptions)
        ],
    }


def from_document(doc: Mapping[str, Any]) -> Schedule:
    """The inverse of ``to_document`` (input already validated by the API schema)."""

    def intervals(items: list[Mapping[str, str]]) -> tuple[Interval, ...]:
        return check_intervals([(parse_hhmm(i["opens"]), parse_hhmm(i["closes"])) for i in items])

    weekly = doc.get("weekly") or {}
    return Schedule(
        always_open=bool(doc.get("always_open", True)),
        weekly=tuple(intervals(weekly.get(d, [])) for d in DAYS),
        exceptions={
            date.fromisoformat(e["date"]): intervals(e["hours"]) for e in doc.get("exceptions", [])
        },
    )


@lru_cache(maxsize=4096)
def parse_stored(text: str | None) -> Schedule:
    """``unit.admission_hours`` -> Schedule, memoised (the search reads it for every hit);
    null is 24/7."""
    return ALWAYS if text is None else from_document(orjson.loads(text))


def admission_fields(text: str | None, at: datetime) -> tuple[bool, datetime | None]:
    """(admits_now, next_admission_at) for a search hit at the search's ``admitting_at``:
    ``next_admission_at`` only for a unit that does not admit then (null: nor within a year)."""
    if text is None:
        return True, None
    schedule = parse_stored(text)
    if admits_at(schedule, at):
        return True, None
    return False, next_admission(schedule, at)


def order_hits(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Search hits with the units admitting at the asked time first, each group in its ranked
    order (closed units, when listed, stay last)."""
    if all(i["admits_now"] for i in items):
        return items
    return sorted(items, key=lambda i: (not i["accepting"], not i["admits_now"]))
