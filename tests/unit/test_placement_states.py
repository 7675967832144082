"""The placement state machine table (docs/domain.md §13): every pair, legal or not."""

from __future__ import annotations

import pytest

from app.placement.states import (
    ACTION_EVENT,
    FINAL,
    TRANSITIONS,
    Action,
    IllegalTransition,
    Move,
    State,
    allowed_actions,
    move,
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


def test_move_reads_sources_and_target_from_the_table() -> None:
    hold = move(Action.HOLD)
    assert hold == Move(action=Action.HOLD, sources=(State.TRIAGED,), target=State.OFFERED)
    cancel = move(Action.CANCEL)
    assert cancel.sources == (State.REQUESTED, State.TRIAGED, State.OFFERED, State.ACCEPTED)
    assert cancel.target == State.CANCELLED


def test_move_follows_a_changed_table() -> None:
    table = dict(TRANSITIONS)
    table[(State.REQUESTED, Action.HOLD)] = State.OFFERED
    assert move(Action.HOLD, table).sources == (State.REQUESTED, State.TRIAGED)
    table = {k: v for k, v in TRANSITIONS.items() if k[1] is not Action.HOLD}
    table[(State.OFFERED, Action.HOLD)] = State.ACCEPTED
    assert move(Action.HOLD, table) == Move(Action.HOLD, (State.OFFERED,), State.ACCEPTED)


def test_move_refuses_an_action_that_is_not_one_conditional_write() -> None:
    table = {k: v for k, v in TRANSITIONS.items() if k[1] is not Action.HOLD}
    with pytest.raises(ValueError, match="hold is allowed in no state"):
        move(Action.HOLD, table)
    # escalate keeps each state it is allowed in: two targets
    with pytest.raises(ValueError, match="escalate leads to offered, triaged"):
        move(Action.ESCALATE)
