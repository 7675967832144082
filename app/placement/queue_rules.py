"""The placement queue's order and grouping (pure: no I/O, ``now`` passed in).

A triagist works the most urgent, longest-waiting case first: unified urgency level ascending
(0 is the most urgent), then waiting time descending. A hospital patient waits from the moment
it was medically ready (each day after it is a wrong-bed day); any other patient from its referral.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from app.placement.states import State

OPEN_STATES: tuple[State, ...] = (State.REQUESTED, State.TRIAGED, State.OFFERED, State.ACCEPTED)
ENDED_STATES: tuple[State, ...] = (State.TRANSFERRED, State.CANCELLED)


def waiting_since(medically_ready_at: datetime | None, created_at: datetime) -> datetime:
    return medically_ready_at if medically_ready_at is not None else created_at


def minutes_between(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() // 60))


def seconds_left(deadline: datetime | None, now: datetime) -> int | None:
    """Seconds until ``deadline`` (0 once past); None without a deadline."""
    if deadline is None:
        return None
    return max(0, int((deadline - now).total_seconds()))


def queue_key(
    urgency_level: int, since: datetime, placement_id: uuid.UUID
) -> tuple[int, float, str]:
    """Most urgent first, then the longest waiting, then by id (a stable order)."""
    return (urgency_level, since.timestamp(), str(placement_id))


class _Queued(Protocol):
    @property
    def state(self) -> State: ...

    @property
    def urgency_level(self) -> int: ...

    @property
    def waiting_since(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


Q = TypeVar("Q", bound=_Queued)


def columns(items: Iterable[Q], states: Sequence[State] = OPEN_STATES) -> dict[State, list[Q]]:
    """One column per state, in the order of ``states``, each sorted by ``queue_key``."""
    out: dict[State, list[Q]] = {s: [] for s in states}
    for item in items:
        if item.state in out:
            out[item.state].append(item)
    for column in out.values():
        column.sort(key=lambda i: queue_key(i.urgency_level, i.waiting_since, i.id))
    return out


class _Owned(_Queued, Protocol):
    @property
    def owner(self) -> object | None: ...

    @property
    def unowned_overdue(self) -> bool: ...


OwnedT = TypeVar("OwnedT", bound=_Owned)


def by_owner_attention(items: Iterable[OwnedT]) -> list[OwnedT]:
    """The board's open cases (docs/board-and-placements.md): those nobody has owned for longer
    than their urgency allows first, then the others without an owner, then the owned ones;
    each group in queue order."""
    return sorted(
        items,
        key=lambda i: (
            not i.unowned_overdue,
            i.owner is not None,
            queue_key(i.urgency_level, i.waiting_since, i.id),
        ),
    )
