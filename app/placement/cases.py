"""Case work on a placement (docs/domain.md §15): the case owner, case notes, earlier placements.

Taking and handing over a case are transfer-log events (``owner_taken``, ``owner_handed_over``)
that change no state. Notes are append-only rows. Every read and write is logged (NEN 7513).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.audit.service import AuditContext, AuditEntry
from app.auth.models import User
from app.enums import CareType, Role
from app.errors import Forbidden, InvalidInput
from app.pagination import Keyset
from app.placement import access, events
from app.placement.errors import InvalidTransition
from app.placement.models import Placement, PlacementNote
from app.placement.schemas import (
    HistoryItem,
    HistoryRead,
    NoteIn,
    NoteRead,
    OwnerIn,
    PlacementRead,
    UrgencyRead,
)
from app.placement.service import (
    _audit,
    _current_hold,
    _flush,
    _load,
    _log_event,
    placement_read,
)
from app.placement.states import FINAL, EventType, State
from app.principal import Principal, parse_roles
from app.registry.models import Organisation

HISTORY_LIMIT = 50


def _is_owner(p: Placement, principal: Principal) -> bool:
    return p.owner_id is not None and p.owner_id == principal.key_id


def _is_region_triagist(p: Placement, principal: Principal) -> bool:
    return principal.is_admin or (
        Role.TRIAGIST in principal.roles and principal.region_id == p.region_id
    )


async def _eligible_user(session: AsyncSession, p: Placement, user_id: uuid.UUID) -> Principal:
    """The person a case is handed over to: an active user who may manage the placement."""
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise InvalidInput(
            f"No active user {user_id}.",
            errors=[{"pointer": "#/to", "detail": "no such active user"}],
        )
    region_id = None
    if user.organisation_id is not None:
        org = await session.get(Organisation, user.organisation_id)
        region_id = None if org is None else org.region_id
    person = Principal(
        key_id=user.id,
        name=user.name,
        roles=parse_roles(user.roles),
        organisation_id=user.organisation_id,
        region_id=region_id,
        user_id=user.id,
    )
    if not access.can_manage(person, p.referrer_organisation_id, p.region_id):
        raise InvalidInput(
            "This person may not own the case: hand it to a triagist of the placement's region "
            "or a person of the referring organisation.",
            errors=[{"pointer": "#/to", "detail": "may not own this case"}],
        )
    return person


async def change_owner(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: OwnerIn,
    *,
    now: datetime,
) -> PlacementRead:
    """``PUT /v1/placements/{id}/owner``: take the case or hand it over (an event each).

    Taking a case one already owns, or handing it to its current owner, changes nothing and
    writes no event. A closed placement (transferred, cancelled) keeps its last owner: 409."""
    p = await _load(session, placement_id)
    principal = ctx.principal
    access.require_manage(principal, p.referrer_organisation_id, p.region_id)
    if State(p.state) in FINAL:
        raise InvalidTransition(
            f"The placement is {p.state}: a closed case keeps its last owner.",
            extra={"current_state": p.state, "allowed_actions": []},
        )
    new_id: uuid.UUID | None
    if body.action == "take":
        new_id, name, org_id = principal.key_id, principal.name, principal.organisation_id
        event_type = EventType.OWNER_TAKEN
    elif body.to == "referrer":
        org = await session.get(Organisation, p.referrer_organisation_id)
        assert org is not None  # a foreign key
        new_id, name, org_id = None, org.name, org.id
        event_type = EventType.OWNER_HANDED_OVER
    else:
        assert isinstance(body.to, uuid.UUID)
        person = await _eligible_user(session, p, body.to)
        new_id, name, org_id = person.key_id, person.name, person.organisation_id
        event_type = EventType.OWNER_HANDED_OVER
    unchanged = (
        p.owner_since is not None and p.owner_id == new_id and p.owner_organisation_id == org_id
    )
    if not unchanged:
        previous = {"id": p.owner_id, "organisation_id": p.owner_organisation_id}
        p.owner_id, p.owner_name, p.owner_organisation_id, p.owner_since = new_id, name, org_id, now
        at = events.occurred_at(None, now=now, previous=p.last_event_at, skew=timedelta(0))
        p.event_seq += 1
        p.last_event_at = at
        p.updated_at = now
        await _flush(session)
        await _log_event(
            session,
            p,
            ctx=ctx,
            event_type=event_type,
            from_state=p.state,
            at=at,
            now=now,
            payload={
                "owner": {"id": new_id, "name": name, "organisation_id": org_id},
                "previous_owner": previous,
            },
        )
    await _audit(
        session,
        ctx,
        p,
        "placement.owner",
        "U",
        now=now,
        detail={"action": body.action, "changed": not unchanged},
    )
    return placement_read(p, await _current_hold(session, p), now=now)


def note_read(n: PlacementNote) -> NoteRead:
    return NoteRead.model_validate(n, from_attributes=True)


async def add_note(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: NoteIn,
    *,
    now: datetime,
) -> NoteRead:
    """Append a case note: the region's triagists and the case owner write them."""
    p = await _load(session, placement_id)
    principal = ctx.principal
    if not (_is_region_triagist(p, principal) or _is_owner(p, principal)):
        raise Forbidden(
            "Only a triagist of the placement's region or the case owner may write case notes."
        )
    note = PlacementNote(
        placement_id=p.id,
        author_id=principal.key_id,
        author_name=principal.name,
        author_organisation_id=principal.organisation_id,
        created_at=now,
        text=body.text,
    )
    session.add(note)
    await session.flush()
    await _audit(session, ctx, p, "placement.note.create", "U", now=now, detail={"note": note.id})
    return note_read(note)


async def list_notes(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[NoteRead], str | None]:
    """The placement's notes, oldest first; the read is logged as patient data and committed."""
    p = await _load(session, placement_id)
    principal = ctx.principal
    if not (
        access.can_manage(principal, p.referrer_organisation_id, p.region_id)
        or _is_owner(p, principal)
    ):
        raise Forbidden(
            "Only the referring organisation, a triagist of the placement's region, the case "
            "owner or an admin may read case notes."
        )
    stmt = select(PlacementNote).where(PlacementNote.placement_id == p.id)
    rows, nxt = await Keyset(PlacementNote.id).scalars(session, stmt, cursor, limit)
    items = [note_read(n) for n in rows]
    await _audit(
        session, ctx, p, "placement.notes.read", "R", now=None, detail={"returned": len(items)}
    )
    await session.commit()
    return items, nxt


async def history(session: AsyncSession, ctx: AuditContext, placement_id: uuid.UUID) -> HistoryRead:
    """Earlier placements of the same (pseudonymous) patient in the region, newest first, with
    their notes: for the region's triagists (and admins) only. Each shown placement is logged."""
    p = await _load(session, placement_id)
    if not _is_region_triagist(p, ctx.principal):
        raise Forbidden("Only a triagist of the placement's region may see the patient's history.")
    earlier = (
        await session.scalars(
            select(Placement)
            .where(
                Placement.patient_key == p.patient_key,
                Placement.region_id == p.region_id,
                Placement.id != p.id,
                Placement.created_at <= p.created_at,
            )
            .order_by(Placement.created_at.desc(), Placement.id.desc())
            .limit(HISTORY_LIMIT)
        )
    ).all()
    notes: dict[uuid.UUID, list[NoteRead]] = {e.id: [] for e in earlier}
    if earlier:
        for n in (
            await session.scalars(
                select(PlacementNote)
                .where(PlacementNote.placement_id.in_(list(notes)))
                .order_by(PlacementNote.id)
            )
        ).all():
            notes[n.placement_id].append(note_read(n))
    items = [
        HistoryItem(
            id=e.id,
            state=State(e.state),
            referrer_organisation_id=e.referrer_organisation_id,
            care_type=CareType(e.care_type),
            urgency=UrgencyRead(
                system=e.urgency_system, code=e.urgency_code, level=e.urgency_level
            ),
            triage_outcome=e.triage_outcome,
            created_at=e.created_at,
            transferred_at=e.transferred_at,
            cancelled_at=e.cancelled_at,
            notes=notes[e.id],
        )
        for e in earlier
    ]
    # One row per earlier placement shown, then the row of the placement asked about.
    entries = [
        AuditEntry(
            event_code="placement.history.read",
            action="R",
            object_id=str(e.id),
            patient_key=e.patient_key,
            detail={"via": str(p.id), "notes": len(notes[e.id])},
        )
        for e in earlier
    ] + [
        AuditEntry(
            event_code="placement.history.read",
            action="R",
            object_id=str(p.id),
            patient_key=p.patient_key,
            detail={"returned": len(items)},
        )
    ]
    await audit_service.append(session, ctx, entries)
    await session.commit()
    return HistoryRead(placement_id=p.id, previous_placements=items)
