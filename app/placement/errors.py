"""Placement problem types (409s the client can act on), rendered like any DomainError."""

from __future__ import annotations

from app.errors import Conflict
from app.placement.states import IllegalTransition


class InvalidTransition(Conflict):
    type_slug = "invalid-transition"
    title = "Not allowed in the placement's current state"

    @classmethod
    def of(cls, exc: IllegalTransition) -> InvalidTransition:
        return cls(
            str(exc),
            extra={
                "current_state": exc.state.value,
                "action": exc.action.value,
                "allowed_actions": [a.value for a in exc.allowed],
            },
        )


class NoCapacity(Conflict):
    type_slug = "no-capacity"
    title = "The unit has no free place left"


class UnitNotAccepting(Conflict):
    type_slug = "unit-not-accepting"
    title = "The unit takes no admissions for now"


class ConsentRequired(Conflict):
    type_slug = "consent-required"
    title = "Consent to share is required first"


class ConcurrentChange(Conflict):
    type_slug = "concurrent-change"
    title = "The placement changed concurrently"
