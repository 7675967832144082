"""The placement state machine table (docs/domain.md §13): every pair, legal or not."""

from __future__ import annotations

import pytest

from app.placement.states import (
    ACTION_EVENT,
    FINAL,
    TRANSITIONS,
    Action,
    IllegalTransition,
    State,
    allowed_actions,
    next_state,
    replay,
)

EXPECTED = {
    State.REQUESTED: {
        Action.TRIAGE: State.TRIAGED,
        Action.CANCEL: State.CANCELLED,
        Action.RECORD_CLINICAL: State.REQUESTED,
        Action.GIVE_CONSENT: State.REQUESTED,
    },
    State.TRIAGED: {
        Action.HOLD: State.OFFERED,
        Action.CANCEL: State.CANCELLED,
        Action.ESCALATE: State.TRIAGED,
        Action.RECORD_CLINICAL: State.TRIAGED,
        Action.GIVE_CONSENT: State.TRIAGED,
    },
    State.OFFERED: {
        Action.ACCEPT: State.ACCEPTED,
        Action.DECLINE: State.TRIAGED,
        Action.EXPIRE: State.TRIAGED,
        Action.CANCEL: State.CANCELLED,
        Action.ESCALATE: State.OFFERED,
        Action.RECORD_CLINICAL: State.OFFERED,
        Action.GIVE_CONSENT: State.OFFERED,
    },
    State.ACCEPTED: {
        Action.ADMIT: State.TRANSFERRED,
        Action.CANCEL: State.CANCELLED,
        Action.RECORD_CLINICAL: State.ACCEPTED,
        Action.GIVE_CONSENT: State.ACCEPTED,
    },
    State.TRANSFERRED: {},
    State.CANCELLED: {},
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("action", list(Action))
def test_every_pair(state: State, action: Action) -> None:
    expected = EXPECTED[state].get(action)
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, action)
        assert info.value.state == state
        assert info.value.allowed == allowed_actions(state)
        assert state.value in str(info.value)
    else:
        assert next_state(state, action) == expected


def test_table_matches_expectation_exactly() -> None:
    flat = {(s, a): t for s, moves in EXPECTED.items() for a, t in moves.items()}
    assert flat == TRANSITIONS


def test_final_states_allow_nothing() -> None:
    assert {State.TRANSFERRED, State.CANCELLED} == FINAL
    for state in FINAL:
        assert allowed_actions(state) == ()
        assert "final state" in str(IllegalTransition(state, Action.CANCEL))


def test_allowed_actions_order() -> None:
    assert allowed_actions(State.OFFERED) == (
        Action.ACCEPT,
        Action.DECLINE,
        Action.EXPIRE,
        Action.CANCEL,
        Action.ESCALATE,
        Action.RECORD_CLINICAL,
        Action.GIVE_CONSENT,
    )


def test_every_state_changing_action_has_an_event() -> None:
    for (_, action), _ in TRANSITIONS.items():
        if action is not Action.RECORD_CLINICAL:
            assert action in ACTION_EVENT


def test_replay() -> None:
    assert replay([]) is None
    log = [(None, "requested"), ("requested", "triaged"), ("triaged", "offered")]
    assert replay(log) == State.OFFERED
    with pytest.raises(ValueError, match="event 1 starts in 'triaged'"):
        replay([(None, "requested"), ("triaged", "offered")])
