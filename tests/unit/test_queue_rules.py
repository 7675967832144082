"""Queue order and grouping (pure)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.placement.queue_rules import (
    OPEN_STATES,
    by_owner_attention,
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


@dataclass(frozen=True)
class Owned(Item):
    owner: str | None
    unowned_overdue: bool


def test_open_cases_put_the_unowned_overdue_first_then_unowned_then_owned() -> None:
    def case(n: int, level: int, owner: str | None, overdue: bool) -> Owned:
        since = NOW - timedelta(minutes=10 * n)
        return Owned(uuid.UUID(int=n), State.TRIAGED, level, since, owner, overdue)

    owned_urgent = case(1, 0, "Tessa", False)
    unowned_old = case(2, 4, None, False)
    unowned_new = case(3, 4, None, False)  # waiting longer: first among equals
    overdue_mild = case(4, 5, None, True)
    overdue_urgent = case(5, 2, None, True)
    items = [owned_urgent, unowned_old, unowned_new, overdue_mild, overdue_urgent]
    assert by_owner_attention(items) == [
        overdue_urgent,
        overdue_mild,
        unowned_new,
        unowned_old,
        owned_urgent,
    ]
    assert by_owner_attention(reversed(items)) == by_owner_attention(items)
