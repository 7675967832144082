"""Task notifications (notified pull, docs/exchange.md "Transfers as Task"): each hold is a FHIR
Task; when one is created or changes, the stream and the webhooks of the organisations concerned
get only the Task's address, and the receiver fetches the Task with its own key."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from app.placement.states import EventType
from app.realtime.outbox import publish

# The transfer events that change a hold's Task status (offer_sent creates the Task).
CHANGES_TASK = frozenset(
    {
        EventType.OFFER_ACCEPTED,
        EventType.OFFER_DECLINED,
        EventType.HOLD_EXPIRED,
        EventType.TRANSFERRED,
        EventType.CANCELLED,
    }
)


def task_reference(public_url: str | None, hold_id: uuid.UUID) -> str:
    """The Task's address: absolute under ``public_url`` (``JUISTEPLEK_PUBLIC_URL``) when set,
    else relative to the server (``/fhir/Task/{id}``)."""
    return f"{(public_url or '').rstrip('/')}/fhir/Task/{hold_id}"


async def notify(
    session: AsyncSession,
    *,
    hold_id: uuid.UUID,
    created: bool,
    public_url: str | None,
    region_id: uuid.UUID,
    organisation_ids: Iterable[uuid.UUID],
) -> None:
    """Queue ``task.requested`` (a new Task) or ``task.updated`` in the caller's transaction."""
    await publish(
        session,
        topic="task",
        event_type="task.requested" if created else "task.updated",
        payload={"task": task_reference(public_url, hold_id)},
        region_id=region_id,
        organisation_ids=organisation_ids,
    )
