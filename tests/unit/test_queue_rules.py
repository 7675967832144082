"""Queue order and grouping (pure)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.placement.queue_rules import (
    OPEN_STATES,
    columns,
    minutes_between,
    seconds_left,
    waiting_since,
)
from app.placement.states import State

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Item:
    id: uuid.UUID
    state: State
    urgency_level: int
    waiting_since: datetime


def test_waiting_counts_from_medically_ready_else_from_the_referral() -> None:
    created = NOW - timedelta(hours=1)
    ready = NOW - timedelta(days=2)
    assert waiting_since(ready, created) == ready
    assert waiting_since(None, created) == created
    assert minutes_between(NOW - timedelta(minutes=90, seconds=59), NOW) == 90
    assert minutes_between(NOW, NOW - timedelta(minutes=5)) == 0


def test_seconds_left_never_negative() -> None:
    assert seconds_left(None, NOW) is None
    assert seconds_left(NOW + timedelta(seconds=75), NOW) == 75
    assert seconds_left(NOW - timedelta(seconds=75), NOW) == 0


def test_columns_most_urgent_then_longest_waiting() -> None:
    def item(n: int, state: State, level: int, hours: int) -> Item:
        return Item(uuid.UUID(int=n), state, level, NOW - timedelta(hours=hours))

    items = [
        item(1, State.TRIAGED, 4, 10),
        item(2, State.TRIAGED, 2, 1),
        item(3, State.TRIAGED, 4, 30),
        item(4, State.REQUESTED, 3, 1),
        item(5, State.CANCELLED, 0, 99),  # not an open column: left out
        item(6, State.TRIAGED, 2, 5),
    ]
    cols = columns(items)
    assert list(cols) == list(OPEN_STATES)
    assert [i.id.int for i in cols[State.TRIAGED]] == [6, 2, 3, 1]
    assert [i.id.int for i in cols[State.REQUESTED]] == [4]
    assert cols[State.OFFERED] == []
    assert cols[State.ACCEPTED] == []
