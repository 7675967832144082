"""Transfers as eOverdracht-style FHIR Task negotiation (docs/exchange.md, "Transfers as Task"):
pure, no I/O, no clock.

A placement is a ``ServiceRequest`` (id = the placement's id); each hold on a unit is a ``Task``
(id = the hold's id) owned by the unit's organisation. The Task's status is a function of the
hold's status and the placement's state, so Task statuses and placement states stay one state
machine: ``task_status`` below, and the only answers a Task accepts (``accepted``, ``rejected``)
are the placement actions accept and decline.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.exchange.fhir import CANONICAL, CARE_TYPE_SYSTEM, instant
from app.placement.states import DECLINE_REASONS, Action, State

PATIENT_KEY_SYSTEM = f"{CANONICAL}/NamingSystem/patient-key"
DECLINE_REASON_SYSTEM = f"{CANONICAL}/CodeSystem/decline-reason"
URGENCY_SYSTEM = f"{CANONICAL}/CodeSystem/urgency-level"
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"

HOLD_STATUSES = ("active", "admitted", "declined", "expired", "cancelled")


class TaskStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class InconsistentTask(ValueError):
    """A hold status and placement state that the state machine never produces together."""


def task_status(hold_status: str, placement_state: str) -> TaskStatus:
    """The Task status of a hold: ``requested`` while it waits for an answer, ``accepted`` once
    the provider accepted, ``completed`` once the patient arrived, ``rejected`` when declined,
    ``cancelled`` when it expired or the placement was cancelled."""
    state = State(placement_state)
    if hold_status == "active":
        if state is State.OFFERED:
            return TaskStatus.REQUESTED
        if state is State.ACCEPTED:
            return TaskStatus.ACCEPTED
        raise InconsistentTask(f"an active hold on a placement in state {state.value}")
    if hold_status == "admitted":
        if state is State.TRANSFERRED:
            return TaskStatus.COMPLETED
        raise InconsistentTask(f"an admitted hold on a placement in state {state.value}")
    if hold_status == "declined":
        return TaskStatus.REJECTED
    if hold_status in ("expired", "cancelled"):
        return TaskStatus.CANCELLED
    raise InconsistentTask(f"unknown hold status {hold_status!r}")


def pairs_with_status(statuses: set[TaskStatus]) -> list[tuple[str, str]]:
    """Every (hold status, placement state) pair whose Task status is one of ``statuses``: the
    search filter, derived from ``task_status`` itself."""
    out = []
    for hold_status in HOLD_STATUSES:
        for state in State:
            try:
                status = task_status(hold_status, state.value)
            except InconsistentTask:
                continue
            if status in statuses:
                out.append((hold_status, state.value))
    return out


# The answers a provider system may PUT, and the placement action each one is.
ANSWERS: dict[TaskStatus, Action] = {
    TaskStatus.ACCEPTED: Action.ACCEPT,
    TaskStatus.REJECTED: Action.DECLINE,
}


def service_request_status(placement_state: str) -> str:
    state = State(placement_state)
    if state is State.TRANSFERRED:
        return "completed"
    if state is State.CANCELLED:
        return "revoked"
    return "active"


def priority(urgency_level: int) -> str:
    """The unified urgency level (0 most urgent .. 5) as a FHIR request priority."""
    if urgency_level <= 0:
        return "stat"
    if urgency_level == 1:
        return "asap"
    if urgency_level <= 3:
        return "urgent"
    return "routine"


@dataclass(frozen=True, slots=True)
class PlacementFacts:
    """What a ServiceRequest and its Tasks show of a placement: no names, no identifiers but the
    pseudonymous patient key."""

    id: uuid.UUID
    state: str
    patient_key: str
    care_type: str | None
    urgency_system: str
    urgency_code: str
    urgency_level: int
    referrer_organisation_id: uuid.UUID
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HoldFacts:
    id: uuid.UUID
    unit_id: uuid.UUID
    organisation_id: uuid.UUID
    status: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    admitted_at: datetime | None
    released_at: datetime | None
    release_reason: str | None


def _patient(key: str) -> dict[str, Any]:
    return {
        "type": "Patient",
        "identifier": {"system": PATIENT_KEY_SYSTEM, "value": key},
        "display": "pseudonymous patient",
    }


def _org(org_id: uuid.UUID) -> dict[str, str]:
    return {"reference": f"Organization/{org_id}"}


def service_request(p: PlacementFacts) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(p.id),
        "meta": {"lastUpdated": instant(p.updated_at)},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{p.id}"}],
        "status": service_request_status(p.state),
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": URGENCY_SYSTEM,
                        "code": str(p.urgency_level),
                        "display": f"{p.urgency_system} {p.urgency_code}",
                    }
                ]
            }
        ],
        "priority": priority(p.urgency_level),
        "subject": _patient(p.patient_key),
        "authoredOn": instant(p.created_at),
        "requester": _org(p.referrer_organisation_id),
    }
    if p.care_type is not None:
        resource["code"] = {"coding": [{"system": CARE_TYPE_SYSTEM, "code": p.care_type}]}
    return resource


def task(p: PlacementFacts, h: HoldFacts) -> dict[str, Any]:
    status = task_status(h.status, p.state)
    changed = [t for t in (h.created_at, h.accepted_at, h.admitted_at, h.released_at) if t]
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(h.id),
        "meta": {"lastUpdated": instant(max(changed))},
        "status": status.value,
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/{p.id}"},
        "for": _patient(p.patient_key),
        "authoredOn": instant(h.created_at),
        "lastModified": instant(max(changed)),
        "requester": _org(p.referrer_organisation_id),
        "owner": _org(h.organisation_id),
        "restriction": {"period": {"end": instant(h.expires_at)}},
        "input": [
            {
                "type": {"text": "unit"},
                "valueReference": {"reference": f"HealthcareService/{h.unit_id}"},
            }
        ],
    }
    if status is TaskStatus.REJECTED and h.release_reason:
        resource["statusReason"] = {
            "coding": [{"system": DECLINE_REASON_SYSTEM, "code": h.release_reason}]
        }
    elif status is TaskStatus.CANCELLED and h.release_reason:
        resource["statusReason"] = {"text": h.release_reason}
    return resource


# --- PUT /fhir/Task/{id} ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskAnswer:
    status: TaskStatus
    reason: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerProblem:
    pointer: str
    detail: str


def parse_answer(
    data: Any, *, task_id: str, owner_id: uuid.UUID
) -> tuple[TaskAnswer | None, list[AnswerProblem]]:
    """Read a provider's answer from a PUT Task: its ``status`` (``accepted`` or ``rejected``)
    and, for ``rejected``, the decline code in ``statusReason``. Other elements are the server's
    and are ignored, except that ``id`` and ``owner`` may not differ from the Task's."""
    if not isinstance(data, Mapping):
        return None, [AnswerProblem("$this", "the body must be a Task resource (a JSON object)")]
    problems: list[AnswerProblem] = []
    if data.get("resourceType") != "Task":
        problems.append(AnswerProblem("resourceType", "must be Task"))
    if "id" in data and data["id"] != task_id:
        problems.append(AnswerProblem("id", f"must be the Task's id {task_id}"))
    owner = data.get("owner")
    if owner is not None:
        ref = owner.get("reference") if isinstance(owner, Mapping) else None
        if not isinstance(ref, str) or ref.rsplit("/", 2)[-2:] != ["Organization", str(owner_id)]:
            problems.append(
                AnswerProblem("owner", f"the Task's owner is Organization/{owner_id}; it stays")
            )
    raw_status = data.get("status")
    status = None
    if not isinstance(raw_status, str):
        problems.append(AnswerProblem("status", "missing: send accepted or rejected"))
    else:
        try:
            status = TaskStatus(raw_status)
        except ValueError:
            status = None
        if status not in ANSWERS:
            problems.append(
                AnswerProblem(
                    "status", f"{raw_status!r} is not an answer: send accepted or rejected"
                )
            )
            status = None
    reason = text = None
    if status is TaskStatus.REJECTED:
        reason, text, reason_problems = _decline_reason(data.get("statusReason"))
        problems += reason_problems
    if problems or status is None:
        return None, problems
    return TaskAnswer(status=status, reason=reason, reason_text=text), []


def _decline_reason(concept: Any) -> tuple[str | None, str | None, list[AnswerProblem]]:
    codes = ", ".join(DECLINE_REASONS)
    if not isinstance(concept, Mapping):
        return None, None, [AnswerProblem("statusReason", f"a rejection needs a code: {codes}")]
    text = concept.get("text") if isinstance(concept.get("text"), str) else None
    codings = concept.get("coding")
    found = [
        c.get("code")
        for c in codings or ()
        if isinstance(codings, list)
        and isinstance(c, Mapping)
        and c.get("system") in (None, DECLINE_REASON_SYSTEM)
        and c.get("code") in DECLINE_REASONS
    ]
    if not found:
        return None, None, [AnswerProblem("statusReason.coding", f"one of: {codes}")]
    reason = str(found[0])
    if reason == "other" and not (text or "").strip():
        return None, None, [AnswerProblem("statusReason.text", "reason 'other' needs a text")]
    return reason, (text or None) and text[:500], []
