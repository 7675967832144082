"""Unit admission hours (docs/domain.md §15): read and replace; the rules live in
``app.capacity.admission``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.capacity import admission
from app.capacity.schemas import AdmissionHoursIn, AdmissionHoursRead
from app.enums import Role
from app.errors import InvalidInput
from app.principal import Principal
from app.registry.service import unit_with_location


def _schedule(body: AdmissionHoursIn) -> admission.Schedule:
    """The body as a Schedule; every bad interval is one 422 error with its JSON pointer."""
    errors: list[dict[str, str]] = []

    def intervals(items: list[Any], pointer: str) -> tuple[admission.Interval, ...]:
        parsed = []
        for i, item in enumerate(items):
            try:
                parsed.append((admission.parse_hhmm(item.opens), admission.parse_hhmm(item.closes)))
            except ValueError as exc:
                errors.append({"pointer": f"{pointer}/{i}", "detail": str(exc)})
        try:
            return admission.check_intervals(parsed)
        except ValueError as exc:
            errors.append({"pointer": pointer, "detail": str(exc)})
            return ()

    weekly = tuple(
        intervals(body.weekly.get(day, []), f"#/weekly/{day}")  # type: ignore[call-overload]
        for day in admission.DAYS
    )
    exceptions = {
        e.date: intervals(e.hours, f"#/exceptions/{i}/hours") for i, e in enumerate(body.exceptions)
    }
    if errors:
        raise InvalidInput(
            "Admission hours refused: "
            + "; ".join(f"{e['pointer']} {e['detail']}" for e in errors),
            errors=errors,
        )
    return admission.Schedule(always_open=body.always_open, weekly=weekly, exceptions=exceptions)


def _read(unit_id: uuid.UUID, stored: str | None, now: datetime) -> AdmissionHoursRead:
    schedule = admission.parse_stored(stored)
    return AdmissionHoursRead.model_validate(
        admission.to_document(schedule)
        | {
            "unit_id": unit_id,
            "admits_now": admission.admits_at(schedule, now),
            "next_admission_at": admission.next_admission(schedule, now),
        }
    )


async def get_hours(
    session: AsyncSession, unit_id: uuid.UUID, *, now: datetime
) -> AdmissionHoursRead:
    unit, _ = await unit_with_location(session, unit_id)
    return _read(unit.id, unit.admission_hours, now)


async def set_hours(
    session: AsyncSession,
    principal: Principal,
    unit_id: uuid.UUID,
    body: AdmissionHoursIn,
    *,
    now: datetime,
) -> AdmissionHoursRead:
    """Replace a unit's admission hours: a provider for its own organisation's units, or an
    admin. ``{"always_open": true}`` without exceptions stores nothing (24/7, the default)."""
    principal.require(Role.PROVIDER)
    unit, location = await unit_with_location(session, unit_id)
    principal.require_organisation(location.organisation_id, "the admission hours")
    schedule = _schedule(body)
    stored = (
        None
        if schedule == admission.ALWAYS
        else orjson.dumps(admission.to_document(schedule)).decode()
    )
    unit.admission_hours = stored
    unit.updated_at = now
    await session.flush()
    return _read(unit.id, stored, now)
