"""The Task status of a hold and the parsing of a provider's answer (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from app.exchange import tasks
from app.exchange.tasks import TaskStatus
from app.placement.states import DECLINE_REASONS, TRANSITIONS, Action, State

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
OWNER = uuid.uuid4()

# Every (hold status, placement state) pair the state machine can produce, and its Task status.
EXPECTED = {
    ("active", State.OFFERED): TaskStatus.REQUESTED,
    ("active", State.ACCEPTED): TaskStatus.ACCEPTED,
    ("admitted", State.TRANSFERRED): TaskStatus.COMPLETED,
    **{("declined", s): TaskStatus.REJECTED for s in State},
    **{("expired", s): TaskStatus.CANCELLED for s in State},
    **{("cancelled", s): TaskStatus.CANCELLED for s in State},
}


@pytest.mark.parametrize("hold_status", tasks.HOLD_STATUSES)
@pytest.mark.parametrize("state", list(State))
def test_task_status_is_defined_exactly_for_reachable_pairs(hold_status: str, state: State) -> None:
    expected = EXPECTED.get((hold_status, state))
    if expected is None:
        with pytest.raises(tasks.InconsistentTask):
            tasks.task_status(hold_status, state.value)
    else:
        assert tasks.task_status(hold_status, state.value) is expected


@pytest.mark.parametrize("status", list(TaskStatus))
def test_search_pairs_are_exactly_those_of_the_status(status: TaskStatus) -> None:
    pairs = tasks.pairs_with_status({status})
    assert pairs == [(h, s.value) for (h, s), t in EXPECTED.items() if t is status]


def test_search_pairs_of_all_statuses_cover_every_reachable_pair() -> None:
    assert len(tasks.pairs_with_status(set(TaskStatus))) == len(EXPECTED)


def test_unknown_hold_status_is_refused() -> None:
    with pytest.raises(tasks.InconsistentTask):
        tasks.task_status("lost", "offered")


def test_answers_are_the_placement_actions_allowed_while_requested() -> None:
    # A requested Task is a hold on an offered placement: each answer is a legal action there,
    # and its outcome maps back to the answered status.
    assert set(tasks.ANSWERS) == {TaskStatus.ACCEPTED, TaskStatus.REJECTED}
    assert TRANSITIONS[(State.OFFERED, tasks.ANSWERS[TaskStatus.ACCEPTED])] is State.ACCEPTED
    assert tasks.task_status("active", State.ACCEPTED) is TaskStatus.ACCEPTED
    assert TRANSITIONS[(State.OFFERED, tasks.ANSWERS[TaskStatus.REJECTED])] is State.TRIAGED
    assert tasks.task_status("declined", State.TRIAGED) is TaskStatus.REJECTED
    # Expiry and cancellation of an offered placement end as a cancelled Task.
    assert (State.OFFERED, Action.EXPIRE) in TRANSITIONS
    assert tasks.task_status("expired", State.TRIAGED) is TaskStatus.CANCELLED
    assert tasks.task_status("cancelled", State.CANCELLED) is TaskStatus.CANCELLED


def _facts(state: State) -> tasks.PlacementFacts:
    return tasks.PlacementFacts(
        id=uuid.uuid4(),
        state=state.value,
        patient_key="a" * 64,
        care_type="elv_high",
        urgency_system="nts",
        urgency_code="U3",
        urgency_level=3,
        referrer_organisation_id=uuid.uuid4(),
        created_at=T0,
        updated_at=T0,
    )


def _hold(status: str, reason: str | None = None) -> tasks.HoldFacts:
    return tasks.HoldFacts(
        id=uuid.uuid4(),
        unit_id=uuid.uuid4(),
        organisation_id=OWNER,
        status=status,
        created_at=T0,
        expires_at=T0 + timedelta(minutes=30),
        accepted_at=None,
        admitted_at=None,
        released_at=None if reason is None else T0 + timedelta(minutes=5),
        release_reason=reason,
    )


@pytest.mark.parametrize(
    ("hold", "state"),
    [
        (_hold("active"), State.OFFERED),
        (_hold("declined", "staff_shortage"), State.TRIAGED),
        (_hold("expired", "expired"), State.TRIAGED),
    ],
)
def test_resources_validate_and_carry_no_names(hold: tasks.HoldFacts, state: State) -> None:
    p = _facts(state)
    task = tasks.task(p, hold)
    Task.model_validate(task)
    assert task["owner"]["reference"] == f"Organization/{OWNER}"
    assert task["focus"]["reference"] == f"ServiceRequest/{p.id}"
    assert task["restriction"]["period"]["end"] == "2026-12-05T09:30:00Z"
    assert task["for"]["identifier"]["value"] == "a" * 64
    request = tasks.service_request(p)
    ServiceRequest.model_validate(request)
    assert request["subject"]["identifier"]["value"] == "a" * 64
    assert request["code"]["coding"][0]["code"] == "elv_high"
    assert "name" not in request["subject"]
    if hold.status == "declined":
        assert task["statusReason"]["coding"][0]["code"] == "staff_shortage"


def _answer(**extra: object) -> dict[str, object]:
    return {"resourceType": "Task", "owner": {"reference": f"Organization/{OWNER}"}, **extra}


@pytest.mark.parametrize("reason", DECLINE_REASONS)
def test_every_decline_code_is_a_rejection_reason(reason: str) -> None:
    concept: dict[str, object] = {
        "coding": [{"system": tasks.DECLINE_REASON_SYSTEM, "code": reason}],
        "text": "details",
    }
    answer, problems = tasks.parse_answer(
        _answer(status="rejected", statusReason=concept), task_id="t", owner_id=OWNER
    )
    assert problems == []
    assert answer == tasks.TaskAnswer(TaskStatus.REJECTED, reason, "details")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (_answer(status="completed"), "status"),
        (_answer(status="in-progress"), "status"),
        (_answer(), "status"),
        (_answer(status="rejected"), "statusReason"),
        (
            _answer(status="rejected", statusReason={"coding": [{"code": "bored"}]}),
            "statusReason.coding",
        ),
        (
            _answer(status="rejected", statusReason={"coding": [{"code": "other"}]}),
            "statusReason.text",
        ),
        (_answer(status="accepted", owner={"reference": f"Organization/{uuid.uuid4()}"}), "owner"),
        ({"resourceType": "Patient", "status": "accepted"}, "resourceType"),
        (_answer(status="accepted", id="other"), "id"),
        ([], "$this"),
    ],
)
def test_malformed_answers_name_the_element(body: object, pointer: str) -> None:
    answer, problems = tasks.parse_answer(body, task_id="t", owner_id=OWNER)
    assert answer is None
    assert pointer in [p.pointer for p in problems]


def test_accept_needs_only_the_status() -> None:
    answer, problems = tasks.parse_answer(
        {"resourceType": "Task", "status": "accepted"}, task_id="t", owner_id=OWNER
    )
    assert (answer, problems) == (tasks.TaskAnswer(TaskStatus.ACCEPTED), [])


def test_priority_follows_the_unified_level() -> None:
    assert [tasks.priority(level) for level in range(6)] == [
        "stat",
        "asap",
        "urgent",
        "urgent",
        "routine",
        "routine",
    ]
