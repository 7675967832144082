"""The placement state machine of docs/domain.md §13 as a table: pure, no I/O, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args


class State(StrEnum):
    REQUESTED = "requested"
    TRIAGED = "triaged"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"


class Action(StrEnum):
    """What a client (or the sweeper) can do to a placement."""

    TRIAGE = "triage"
    HOLD = "hold"
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"  # the sweeper releases a hold nobody accepted in time (§12.6)
    ADMIT = "admit"
    CANCEL = "cancel"
    ESCALATE = "escalate"  # an event, not a state (§13)
    RECORD_CLINICAL = "record_clinical"  # medically_ready, ready_revoked, hospital_admitted
    GIVE_CONSENT = "give_consent"


class EventType(StrEnum):
    """Transfer-log event types (docs/domain.md §5, §13)."""

    REQUEST_CREATED = "request_created"
    TRIAGED = "triaged"
    OFFER_SENT = "offer_sent"
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DECLINED = "offer_declined"
    HOLD_EXPIRED = "hold_expired"
    ESCALATED = "escalated"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"
    MEDICALLY_READY = "medically_ready"
    READY_REVOKED = "ready_revoked"
    HOSPITAL_ADMITTED = "hospital_admitted"
    CONSENT_GIVEN = "consent_given"
    OWNER_TAKEN = "owner_taken"  # case ownership, no state change (docs/domain.md §15)
    OWNER_HANDED_OVER = "owner_handed_over"


FINAL = frozenset({State.TRANSFERRED, State.CANCELLED})
_OPEN = (State.REQUESTED, State.TRIAGED, State.OFFERED, State.ACCEPTED)

# (state, action) -> next state. Anything absent is an illegal transition (409).
TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.REQUESTED, Action.TRIAGE): State.TRIAGED,
    (State.REQUESTED, Action.CANCEL): State.CANCELLED,
    (State.TRIAGED, Action.HOLD): State.OFFERED,
    (State.TRIAGED, Action.CANCEL): State.CANCELLED,
    (State.TRIAGED, Action.ESCALATE): State.TRIAGED,
    (State.OFFERED, Action.ACCEPT): State.ACCEPTED,
    (State.OFFERED, Action.DECLINE): State.TRIAGED,
    (State.OFFERED, Action.EXPIRE): State.TRIAGED,
    (State.OFFERED, Action.CANCEL): State.CANCELLED,
    # No acceptance yet, so escalation still applies (§8: "no OFFER_ACCEPTED within ...").
    (State.OFFERED, Action.ESCALATE): State.OFFERED,
    (State.ACCEPTED, Action.ADMIT): State.TRANSFERRED,
    (State.ACCEPTED, Action.CANCEL): State.CANCELLED,
    **{(s, Action.RECORD_CLINICAL): s for s in _OPEN},
    **{(s, Action.GIVE_CONSENT): s for s in _OPEN},
}

# The event each state-changing action writes to the transfer log.
ACTION_EVENT: dict[Action, EventType] = {
    Action.TRIAGE: EventType.TRIAGED,
    Action.HOLD: EventType.OFFER_SENT,
    Action.ACCEPT: EventType.OFFER_ACCEPTED,
    Action.DECLINE: EventType.OFFER_DECLINED,
    Action.EXPIRE: EventType.HOLD_EXPIRED,
    Action.ADMIT: EventType.TRANSFERRED,
    Action.CANCEL: EventType.CANCELLED,
    Action.ESCALATE: EventType.ESCALATED,
    Action.GIVE_CONSENT: EventType.CONSENT_GIVEN,
}

# Decline and cancel reasons are codes so refusals can be counted (docs/domain.md §13): the
# types check the API bodies, the tuples list them for forms and the FHIR mapping.
DeclineReason = Literal[
    "no_place_after_all",
    "care_too_complex",
    "target_group_mismatch",
    "room_sex_mismatch",
    "isolation_not_possible",
    "no_indication",
    "patient_refused",
    "staff_shortage",
    "other",
]
CancelReason = Literal[
    "died", "recovered", "home_without_care", "placed_elsewhere", "referrer_withdrew", "other"
]
DECLINE_REASONS: tuple[str, ...] = get_args(DeclineReason)
CANCEL_REASONS: tuple[str, ...] = get_args(CancelReason)


class IllegalTransition(Exception):
    """``action`` is not allowed in ``state``; ``allowed`` lists what is."""

    def __init__(self, state: State, action: Action) -> None:
        self.state = state
        self.action = action
        self.allowed = allowed_actions(state)
        super().__init__(
            f"{action.value} is not allowed in state {state.value}; allowed: "
            + (", ".join(a.value for a in self.allowed) or "nothing (final state)")
        )


def allowed_actions(state: State) -> tuple[Action, ...]:
    """Actions allowed in ``state``, in the order of the ``Action`` enum."""
    return tuple(a for a in Action if (state, a) in TRANSITIONS)


def next_state(state: State, action: Action) -> State:
    """The state after ``action``; raises ``IllegalTransition`` when the table has no entry."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise IllegalTransition(state, action) from None


@dataclass(frozen=True)
class Move:
    """One action's transition as a single conditional write: every state ``action`` may start in
    (the ``WHERE state IN (...)`` of the write) and the one state it leads to (its ``SET``)."""

    action: Action
    sources: tuple[State, ...]
    target: State


def move(action: Action, table: Mapping[tuple[State, Action], State] = TRANSITIONS) -> Move:
    """``action``'s transition read from ``table`` (the state machine by default), sources in the
    order of the ``State`` enum.

    Raises ValueError when the table allows ``action`` in no state, or when it leads to different
    states from different sources (then it is not one conditional write).
    """
    sources = tuple(s for s in State if (s, action) in table)
    targets = {table[(s, action)] for s in sources}
    if not sources:
        raise ValueError(f"{action.value} is allowed in no state")
    if len(targets) != 1:
        raise ValueError(
            f"{action.value} leads to {', '.join(sorted(targets))}: not one conditional write"
        )
    return Move(action=action, sources=sources, target=targets.pop())


def replay(events: list[tuple[str | None, str]]) -> State | None:
    """The state a transfer log ends in, checking each (from_state, to_state) pair chains on.

    Returns None for an empty log; raises ValueError when a row does not start where the previous
    one ended (the consistency check of the durability test and ``audit verify``-style tools).
    """
    state: State | None = None
    for index, (before, after) in enumerate(events):
        expected = None if state is None else state.value
        if before != expected:
            raise ValueError(f"event {index} starts in {before!r}, log was in {expected!r}")
        state = State(after)
    return state
