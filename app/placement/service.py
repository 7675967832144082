"""Placement service (docs/domain.md §5, §7, §8, §10, §12, §13): referrals, actions, transfer log.

Every change writes its transfer event, its outbox message (topic ``placement``) and its NEN 7513
access-log row in the caller's transaction; reads write their access-log row and commit it here
before the response exists. The hold hot path lives in ``app.placement.holds``.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, false, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.audit import service as audit_service
from app.audit.service import AuditContext, AuditEntry
from app.config import Settings
from app.db import utcnow
from app.enums import CareType, Feature, Role, codes_of, mask_of
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.pagination import Keyset
from app.placement import access, events, holds, ownership, task_events
from app.placement.errors import ConcurrentChange, InvalidTransition
from app.placement.models import Placement, PlacementHold, TransferEvent
from app.placement.schemas import (
    CancelIn,
    DeclineIn,
    EscalationLevel,
    EventIn,
    HoldRead,
    OccurredIn,
    OwnerRead,
    PlacementCreate,
    PlacementRead,
    TransferEventRead,
    UrgencyRead,
)
from app.placement.states import (
    ACTION_EVENT,
    FINAL,
    Action,
    EventType,
    IllegalTransition,
    State,
    allowed_actions,
    next_state,
)
from app.principal import Principal
from app.realtime.outbox import publish
from app.registry.models import Organisation
from app.registry.service import resolve_subregion
from app.triage.urgency import (
    UnknownUrgencyCode,
    UnknownUrgencySystem,
    escalation_window,
    to_unified,
)

# Origin settings whose patients occupy a bed while they wait: they can be medically ready, and
# their waiting days are wrong-bed days (docs/domain.md §6.1).
IN_PATIENT_SETTINGS = frozenset({"hospital_ward", "ggz_clinic"})

__all__ = [
    "PlacementQuery",
    "accept",
    "admit",
    "cancel",
    "create_placement",
    "decline",
    "get_placement",
    "list_events",
    "list_placements",
    "patient_key",
    "place_hold",
    "read_placement",
    "record_event",
    "record_triage",
    "recount_held",
    "recount_held_many",
]

place_hold = holds.place_hold
recount_held = holds.recount_held
recount_held_many = holds.recount_held_many


def patient_key(identifier: str, secret: str) -> str:
    """Pseudonymous patient key: HMAC-SHA256 of the referrer's identifier (docs/domain.md §10)."""
    return hmac.new(
        secret.encode("utf-8"), identifier.strip().encode("utf-8"), hashlib.sha256
    ).hexdigest()


def hold_read(h: PlacementHold) -> HoldRead:
    return HoldRead.model_validate(h, from_attributes=True)


def owner_read(p: Placement) -> OwnerRead | None:
    if p.owner_name is None or p.owner_since is None:
        return None
    return OwnerRead(
        id=p.owner_id,
        name=p.owner_name,
        organisation_id=p.owner_organisation_id,
        since=p.owner_since,
    )


def placement_read(
    p: Placement, hold: PlacementHold | None, *, now: datetime | None = None
) -> PlacementRead:
    state = State(p.state)
    owner = owner_read(p)
    return PlacementRead(
        id=p.id,
        state=state,
        allowed_actions=list(allowed_actions(state)),
        version=p.version,
        referrer_organisation_id=p.referrer_organisation_id,
        region_id=p.region_id,
        subregion_id=p.subregion_id,
        origin_setting=p.origin_setting,
        patient_key=p.patient_key,
        birth_year=p.birth_year,
        sex=p.sex,
        target_group=p.target_group,
        care_type=p.care_type,
        patient_group=p.patient_group,
        advance_care_planning=p.advance_care_planning,
        features=codes_of(p.feature_mask, Feature),
        room_sex=p.room_sex,
        care_needs=p.care_needs,
        urgency=UrgencyRead(system=p.urgency_system, code=p.urgency_code, level=p.urgency_level),
        triage_rule_set=p.triage_rule_set,
        triage_outcome=p.triage_outcome,
        consent_given_at=p.consent_given_at,
        medically_ready_at=p.medically_ready_at,
        escalation_level=p.escalation_level,
        escalation_due_at=p.escalation_due_at,
        current_hold=None if hold is None else hold_read(hold),
        created_at=p.created_at,
        updated_at=p.updated_at,
        triaged_at=p.triaged_at,
        accepted_at=p.accepted_at,
        transferred_at=p.transferred_at,
        cancelled_at=p.cancelled_at,
        owner=owner,
        unowned_overdue=ownership.unowned_overdue(
            has_owner=owner is not None,
            is_open=state not in FINAL,
            created_at=p.created_at,
            urgency_level=p.urgency_level,
            now=utcnow() if now is None else now,
        ),
    )


def _event_payload(p: Placement, event: str, seq: int, **extra: Any) -> dict[str, Any]:
    # The outbox goes to streams and webhooks of several organisations: no patient data.
    return {"placement_id": p.id, "state": p.state, "event": event, "seq": seq, **extra}


async def _log_event(
    session: AsyncSession,
    p: Placement,
    *,
    ctx: AuditContext | None,
    event_type: EventType,
    from_state: str | None,
    at: datetime,
    now: datetime,
    hold: PlacementHold | None = None,
    reason: str | None = None,
    level: str | None = None,
    payload: dict[str, Any] | None = None,
    public_url: str | None = None,
) -> None:
    """Append the transfer event numbered ``p.event_seq`` and publish it (topic placement); an
    event that changes a hold's Task also publishes the Task's notification (topic task)."""
    conn = await session.connection()
    await events.append(
        conn,
        placement_id=p.id,
        seq=p.event_seq,
        event_type=event_type,
        occurred_at=at,
        recorded_at=now,
        actor_key_id=None if ctx is None else ctx.principal.key_id,
        actor_organisation_id=None if ctx is None else ctx.principal.organisation_id,
        from_state=from_state,
        to_state=p.state,
        unit_id=None if hold is None else hold.unit_id,
        hold_id=None if hold is None else hold.id,
        reason=reason,
        level=level,
        payload=payload,
    )
    orgs = [p.referrer_organisation_id] + ([hold.organisation_id] if hold is not None else [])
    extra: dict[str, Any] = {"occurred_at": at}
    if hold is not None:
        extra |= {"unit_id": hold.unit_id, "hold_id": hold.id}
    if reason is not None:
        extra["reason"] = reason
    if level is not None:
        extra["level"] = level
    await publish(
        session,
        topic="placement",
        event_type=f"placement.{event_type}",
        payload=_event_payload(p, event_type, p.event_seq, **extra),
        region_id=p.region_id,
        organisation_ids=orgs,
    )
    if hold is not None and event_type in task_events.CHANGES_TASK:
        await task_events.notify(
            session,
            hold_id=hold.id,
            created=False,
            public_url=public_url,
            region_id=p.region_id,
            organisation_ids=orgs,
        )


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except StaleDataError:
        raise ConcurrentChange("The placement changed concurrently; read it again.") from None


def _skew(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.clock_skew_seconds)


def _urgency(system: str, code: str) -> int:
    try:
        return to_unified(system, code).level
    except UnknownUrgencySystem as exc:
        raise InvalidInput(
            str(exc), errors=[{"pointer": "#/urgency/system", "detail": "unknown system"}]
        ) from None
    except UnknownUrgencyCode as exc:
        raise InvalidInput(
            str(exc), errors=[{"pointer": "#/urgency/code", "detail": "unknown code"}]
        ) from None


# --- create ------------------------------------------------------------------------------------


async def create_placement(
    session: AsyncSession,
    ctx: AuditContext,
    body: PlacementCreate,
    *,
    now: datetime,
    settings: Settings,
) -> PlacementRead:
    """A referral (docs/domain.md §13 ``requested``; ``triaged`` at once with a triage in it)."""
    principal = ctx.principal
    principal.require(Role.REFERRER, Role.TRIAGIST)
    org_id = body.referrer_organisation_id or principal.organisation_id
    if org_id is None:
        raise InvalidInput(
            "An admin key must name the referring organisation.",
            errors=[{"pointer": "#/referrer_organisation_id", "detail": "required"}],
        )
    if (
        not principal.is_admin
        and org_id != principal.organisation_id
        and Role.TRIAGIST not in principal.roles
    ):
        raise Forbidden("A referrer creates placements only for its own organisation.")
    org = await session.get(Organisation, org_id)
    if org is None:
        raise InvalidInput(
            "Unknown referring organisation.",
            errors=[{"pointer": "#/referrer_organisation_id", "detail": "no such organisation"}],
        )
    if (
        Role.TRIAGIST in principal.roles
        and not principal.is_admin
        and org.region_id != principal.region_id
        and org_id != principal.organisation_id
    ):
        raise Forbidden("A triagist creates placements only for referrers of its own region.")
    errors = []
    if body.birth_year > now.year:
        errors.append({"pointer": "#/birth_year", "detail": "lies in the future"})
    if body.medically_ready_at is not None:
        if body.origin_setting not in IN_PATIENT_SETTINGS:
            errors.append(
                {
                    "pointer": "#/medically_ready_at",
                    "detail": "only for in-patients (hospital_ward, ggz_clinic)",
                }
            )
        elif body.medically_ready_at > now + _skew(settings):
            errors.append({"pointer": "#/medically_ready_at", "detail": "in the future"})
    if body.consent_given_at is not None and body.consent_given_at > now + _skew(settings):
        errors.append({"pointer": "#/consent_given_at", "detail": "in the future"})
    if errors:
        raise InvalidInput(
            "Placement refused: " + "; ".join(f"{e['pointer']} {e['detail']}" for e in errors),
            errors=errors,
        )
    level = _urgency(body.urgency.system, body.urgency.code)
    at = events.occurred_at(body.occurred_at, now=now, previous=None, skew=_skew(settings))
    subregion_id = None
    if body.subregion is not None:
        subregion_id = (await resolve_subregion(session, body.subregion, pointer="#/subregion")).id
    p = Placement(
        id=uuid.uuid4(),
        region_id=org.region_id,
        referrer_organisation_id=org_id,
        subregion_id=subregion_id,
        created_by_key_id=principal.key_id,
        origin_setting=body.origin_setting.value,
        patient_key=patient_key(
            body.patient_identifier, settings.patient_key_secret.get_secret_value()
        ),
        birth_year=body.birth_year,
        sex=body.sex.value,
        target_group=body.target_group.value,
        care_type=body.care_type.value,
        patient_group=None if body.patient_group is None else body.patient_group.value,
        advance_care_planning=(
            None if body.advance_care_planning is None else body.advance_care_planning.value
        ),
        feature_mask=mask_of(body.features, Feature),
        room_sex=None if body.room_sex is None else body.room_sex.value,
        care_needs=body.care_needs,
        urgency_system=body.urgency.system,
        urgency_code=body.urgency.code,
        urgency_level=level,
        consent_given_at=body.consent_given_at,
        medically_ready_at=body.medically_ready_at,
        state=State.REQUESTED.value,
        event_seq=1,
        last_event_at=at,
        escalation_level=EscalationLevel.SUBREGION.value,
        created_at=now,
        updated_at=now,
    )
    _set_default_owner(p, principal, org, now=now)
    session.add(p)
    await session.flush()
    await _log_event(
        session,
        p,
        ctx=ctx,
        event_type=EventType.REQUEST_CREATED,
        from_state=None,
        at=at,
        now=now,
        payload={
            "origin_setting": p.origin_setting,
            "care_type": p.care_type,
            "urgency": {"system": p.urgency_system, "code": p.urgency_code, "level": level},
            "birth_year": p.birth_year,
            "consent": p.consent_given_at is not None,
        },
    )
    # Ready before the referral: recorded right after it. Ready later than the referral's
    # clinical time: recorded last, and no later event may be dated before it.
    ready = body.medically_ready_at
    if ready is not None and ready <= at:
        await _log_ready(session, ctx, p, ready, now=now)
    if body.triage is not None:
        await _triage(
            session,
            ctx,
            p,
            care_type=body.triage.care_type,
            rule_set=body.triage.rule_set,
            outcome=body.triage.outcome,
            at=at,
            now=now,
        )
    if ready is not None and ready > at:
        p.last_event_at = ready
        await _log_ready(session, ctx, p, ready, now=now)
    await _audit(session, ctx, p, "placement.create", "C", now=now)
    return placement_read(p, None)


def _set_default_owner(
    p: Placement, principal: Principal, org: Organisation, *, now: datetime
) -> None:
    """The owner of a new placement (docs/domain.md §12.3): by care type, the referrer (the
    referring person or key; the referring organisation when someone else referred for it) or a
    triagist (the referring triagist of the region; nobody until a triagist takes the case)."""
    rule = ownership.default_owner(CareType(p.care_type))
    if rule == ownership.DefaultOwner.TRIAGIST:
        if Role.TRIAGIST in principal.roles and principal.region_id == p.region_id:
            p.owner_id, p.owner_name = principal.key_id, principal.name
            p.owner_organisation_id, p.owner_since = principal.organisation_id, now
        return
    if principal.organisation_id == org.id:
        p.owner_id, p.owner_name = principal.key_id, principal.name
    else:
        p.owner_id, p.owner_name = None, org.name
    p.owner_organisation_id, p.owner_since = org.id, now


async def _log_ready(
    session: AsyncSession, ctx: AuditContext, p: Placement, at: datetime, *, now: datetime
) -> None:
    p.event_seq += 1
    await _flush(session)
    await _log_event(
        session,
        p,
        ctx=ctx,
        event_type=EventType.MEDICALLY_READY,
        from_state=p.state,
        at=at,
        now=now,
    )


async def _audit(
    session: AsyncSession,
    ctx: AuditContext,
    p: Placement,
    event_code: str,
    action: str,
    *,
    now: datetime | None,
    detail: dict[str, Any] | None = None,
) -> None:
    await audit_service.append(
        session,
        ctx,
        [
            AuditEntry(
                event_code=event_code,
                action=action,
                object_id=str(p.id),
                patient_key=p.patient_key,
                detail=detail or {},
            )
        ],
        now=now,
    )


# --- transitions --------------------------------------------------------------------------------


def _next(p: Placement, action: Action) -> State:
    try:
        return next_state(State(p.state), action)
    except IllegalTransition as exc:
        raise InvalidTransition.of(exc) from None


async def _load(session: AsyncSession, placement_id: uuid.UUID) -> Placement:
    p = await session.get(Placement, placement_id)
    if p is None:
        raise NotFound(f"No placement {placement_id}.")
    return p


async def _current_hold(session: AsyncSession, p: Placement) -> PlacementHold | None:
    if p.current_hold_id is None:
        return None
    return await session.get(PlacementHold, p.current_hold_id)


async def _transition(
    session: AsyncSession,
    ctx: AuditContext | None,
    p: Placement,
    action: Action,
    *,
    at: datetime,
    now: datetime,
    hold: PlacementHold | None = None,
    reason: str | None = None,
    level: str | None = None,
    payload: dict[str, Any] | None = None,
    event_type: EventType | None = None,
    public_url: str | None = None,
) -> None:
    """Move ``p`` by ``action`` (already checked legal) and log the event, version-checked."""
    before = p.state
    p.state = _next(p, action).value
    p.event_seq += 1
    p.last_event_at = max(at, p.last_event_at)
    p.updated_at = now
    await _flush(session)
    await _log_event(
        session,
        p,
        ctx=ctx,
        event_type=event_type or ACTION_EVENT[action],
        from_state=before,
        at=at,
        now=now,
        hold=hold,
        reason=reason,
        level=level,
        payload=payload,
        public_url=public_url,
    )


async def _triage(
    session: AsyncSession,
    ctx: AuditContext,
    p: Placement,
    *,
    care_type: CareType,
    rule_set: str,
    outcome: str | None,
    at: datetime,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    p.triage_rule_set = rule_set
    p.triage_outcome = outcome
    p.care_type = care_type.value
    p.triaged_at = now
    # Auto-escalation clock (docs/domain.md §8) starts when the placement can be offered.
    p.escalation_due_at = now + escalation_window(p.urgency_level)
    await _transition(
        session,
        ctx,
        p,
        Action.TRIAGE,
        at=at,
        now=now,
        payload={
            "care_type": care_type.value,
            "rule_set": rule_set,
            "outcome": outcome,
            **(details or {}),
        },
    )


async def record_triage(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    *,
    care_type: CareType,
    rule_set: str,
    outcome: str | None = None,
    occurred_at: datetime | None = None,
    now: datetime,
    settings: Settings,
    details: dict[str, Any] | None = None,
) -> PlacementRead:
    """Record a triage result on a placement: requested -> triaged (docs/domain.md §13).

    For ``POST /v1/triage`` with ``placement_id``; the caller commits. ``details`` (added for the
    triage service: triage id, advised care types, an override and its reason) goes into the
    transfer event's payload.
    """
    p = await _load(session, placement_id)
    access.require_manage(ctx.principal, p.referrer_organisation_id, p.region_id)
    _next(p, Action.TRIAGE)
    at = events.occurred_at(occurred_at, now=now, previous=p.last_event_at, skew=_skew(settings))
    await _triage(
        session,
        ctx,
        p,
        care_type=care_type,
        rule_set=rule_set,
        outcome=outcome,
        at=at,
        now=now,
        details=details,
    )
    await _audit(session, ctx, p, "placement.triage", "U", now=now)
    return placement_read(p, None)


async def _load_with_hold(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    action: Action,
    occurred_at: datetime | None,
    *,
    now: datetime,
    settings: Settings,
    receiver_only: bool = False,
) -> tuple[Placement, PlacementHold, datetime]:
    """Load a placement that holds a place, check who may ``action`` it, and fix its clinical
    time: the common head of accept, decline and admit. ``receiver_only``: the action is the
    receiving provider's alone (accept)."""
    p = await _load(session, placement_id)
    hold = await _current_hold(session, p)
    hold_org = None if hold is None else hold.organisation_id
    access.require_manage_or_receiver(
        ctx.principal, p.referrer_organisation_id, p.region_id, hold_org
    )
    _next(p, action)
    if receiver_only:
        access.require_receiving_provider(ctx.principal, hold_org)
    if hold is None:  # a hold forwarded to a partner region is answered there
        raise Conflict(
            f"The place for placement {placement_id} is held at a partner region; its provider "
            "accepts, declines and admits there, and the answer comes back here "
            "(docs/federation.md)."
        )
    at = events.occurred_at(occurred_at, now=now, previous=p.last_event_at, skew=_skew(settings))
    return p, hold, at


async def accept(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: OccurredIn,
    *,
    now: datetime,
    settings: Settings,
) -> PlacementRead:
    """The receiving provider accepts the offer: offered -> accepted (docs/domain.md §13)."""
    p, hold, at = await _load_with_hold(
        session,
        ctx,
        placement_id,
        Action.ACCEPT,
        body.occurred_at,
        now=now,
        settings=settings,
        receiver_only=True,
    )
    hold.accepted_at = at
    p.accepted_at = at
    p.escalation_due_at = None
    await _transition(
        session, ctx, p, Action.ACCEPT, at=at, now=now, hold=hold, public_url=settings.public_url
    )
    await _audit(session, ctx, p, "placement.accept", "U", now=now)
    return placement_read(p, hold)


async def decline(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: DeclineIn,
    *,
    now: datetime,
    settings: Settings,
) -> PlacementRead:
    """Refuse the offer with a reason code: the hold is released, offered -> triaged (§13)."""
    p, hold, at = await _load_with_hold(
        session, ctx, placement_id, Action.DECLINE, body.occurred_at, now=now, settings=settings
    )
    await _end_hold(session, p, hold, status="declined", reason=body.reason, now=now)
    await _transition(
        session,
        ctx,
        p,
        Action.DECLINE,
        at=at,
        now=now,
        hold=hold,
        reason=body.reason,
        payload={"reason_text": body.reason_text} if body.reason_text else None,
        public_url=settings.public_url,
    )
    await _audit(session, ctx, p, "placement.decline", "U", now=now, detail={"reason": body.reason})
    return placement_read(p, None)


async def _end_hold(
    session: AsyncSession,
    p: Placement,
    hold: PlacementHold,
    *,
    status: str,
    reason: str,
    now: datetime,
) -> None:
    conn = await session.connection()
    await holds.release(conn, hold.id, hold.unit_id, status=status, reason=reason, now=now)
    hold.status = status
    hold.released_at = now
    hold.release_reason = reason
    p.current_hold_id = None


async def admit(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: OccurredIn,
    *,
    now: datetime,
    settings: Settings,
) -> PlacementRead:
    """The patient arrived: accepted -> transferred; the hold becomes admitted
    (docs/domain.md §3.1, §13)."""
    p, hold, at = await _load_with_hold(
        session, ctx, placement_id, Action.ADMIT, body.occurred_at, now=now, settings=settings
    )
    conn = await session.connection()
    hold.status = "admitted"
    hold.admitted_at = at
    p.transferred_at = at
    p.escalation_due_at = None
    await _transition(
        session,
        ctx,
        p,
        Action.ADMIT,
        at=at,
        now=now,
        hold=hold,
        payload={"care_type": p.care_type, "dest_organisation_id": hold.organisation_id},
        public_url=settings.public_url,
    )
    await holds.admitted(conn, hold.unit_id, at)
    await _audit(session, ctx, p, "placement.admit", "U", now=now)
    return placement_read(p, hold)


async def cancel(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: CancelIn,
    *,
    now: datetime,
    settings: Settings,
) -> PlacementRead:
    """Close the placement with a reason code (§13); an active hold is released."""
    p = await _load(session, placement_id)
    access.require_manage(ctx.principal, p.referrer_organisation_id, p.region_id)
    _next(p, Action.CANCEL)
    at = events.occurred_at(
        body.occurred_at, now=now, previous=p.last_event_at, skew=_skew(settings)
    )
    hold = await _current_hold(session, p)
    if hold is not None and hold.status == "active":
        await _end_hold(session, p, hold, status="cancelled", reason=body.reason, now=now)
    p.cancelled_at = at
    p.escalation_due_at = None
    await _transition(
        session,
        ctx,
        p,
        Action.CANCEL,
        at=at,
        now=now,
        hold=hold,
        reason=body.reason,
        payload={"reason_text": body.reason_text} if body.reason_text else None,
        public_url=settings.public_url,
    )
    await _audit(session, ctx, p, "placement.cancel", "U", now=now, detail={"reason": body.reason})
    return placement_read(p, None)


_EVENT_ACTION = {
    "medically_ready": Action.RECORD_CLINICAL,
    "ready_revoked": Action.RECORD_CLINICAL,
    "hospital_admitted": Action.RECORD_CLINICAL,
    "consent_given": Action.GIVE_CONSENT,
    "escalated": Action.ESCALATE,
}


async def record_event(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    body: EventIn,
    *,
    now: datetime,
    settings: Settings,
) -> TransferEventRead:
    """Clinical events, consent, manual escalation (docs/domain.md §8, §10, §13); no new state."""
    p = await _load(session, placement_id)
    access.require_manage(ctx.principal, p.referrer_organisation_id, p.region_id)
    _next(p, _EVENT_ACTION[body.type])
    at = events.occurred_at(
        body.occurred_at, now=now, previous=p.last_event_at, skew=_skew(settings)
    )
    if body.type == "medically_ready":
        if p.medically_ready_at is not None:
            raise InvalidTransition(
                "The patient is already medically ready; post ready_revoked first.",
                extra={"current_state": p.state, "allowed_actions": ["ready_revoked"]},
            )
        p.medically_ready_at = at
    elif body.type == "ready_revoked":
        if p.medically_ready_at is None:
            raise InvalidTransition(
                "The patient is not medically ready; nothing to revoke.",
                extra={"current_state": p.state, "allowed_actions": ["medically_ready"]},
            )
        p.medically_ready_at = None
    elif body.type == "hospital_admitted":
        # Moved to another hospital: that hospital declares the patient ready anew (§6.1).
        p.medically_ready_at = None
    elif body.type == "consent_given":
        p.consent_given_at = at
    elif body.type == "escalated":
        assert body.level is not None
        order = list(EscalationLevel)
        if order.index(body.level) <= order.index(EscalationLevel(p.escalation_level)):
            raise InvalidTransition(
                f"The placement is already escalated to {p.escalation_level}.",
                extra={"current_state": p.state, "escalation_level": p.escalation_level},
            )
        p.escalation_level = body.level.value
        p.escalation_due_at = None
    await _transition(
        session,
        ctx,
        p,
        _EVENT_ACTION[body.type],
        at=at,
        now=now,
        event_type=EventType(body.type),
        reason=body.reason if body.type == "escalated" else None,
        level=None if body.level is None else body.level.value,
        payload={"reason": body.reason, "manual": True} if body.reason else None,
    )
    await _audit(session, ctx, p, "placement.event", "U", now=now, detail={"type": body.type})
    row = await session.scalar(
        select(TransferEvent).where(
            TransferEvent.placement_id == p.id, TransferEvent.seq == p.event_seq
        )
    )
    assert row is not None
    return event_read(row)


# --- reads -------------------------------------------------------------------------------------


async def _holds(session: AsyncSession, placement_id: uuid.UUID) -> list[access.HoldFact]:
    rows = await session.execute(
        select(PlacementHold.id, PlacementHold.organisation_id, PlacementHold.status).where(
            PlacementHold.placement_id == placement_id
        )
    )
    return [access.HoldFact(*r) for r in rows.all()]


async def get_placement(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> PlacementRead:
    """One placement; the read is logged (NEN 7513) and committed before it is returned.

    ``now``: the request's clock when the read is part of a write logged at that time (default:
    the wall clock), so one request's log rows never run backwards in time."""
    result = await read_placement(session, ctx, placement_id, now=now)
    await session.commit()
    return result


async def read_placement(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> PlacementRead:
    """``get_placement`` within a write: the read's log row is in the caller's transaction, which
    commits it with the write (a flow that answers with the placement's data)."""
    p = await _load(session, placement_id)
    access.require_view(
        ctx.principal, p.referrer_organisation_id, p.region_id, await _holds(session, p.id)
    )
    hold = await _current_hold(session, p)
    result = placement_read(p, hold)
    await _audit(session, ctx, p, "placement.read", "R", now=now)
    return result


def event_read(e: TransferEvent) -> TransferEventRead:
    return TransferEventRead(
        id=e.id,
        placement_id=e.placement_id,
        seq=e.seq,
        type=e.event_type,
        occurred_at=e.occurred_at,
        recorded_at=e.recorded_at,
        actor_key_id=e.actor_key_id,
        actor_organisation_id=e.actor_organisation_id,
        from_state=e.from_state,
        to_state=e.to_state,
        unit_id=e.unit_id,
        hold_id=e.hold_id,
        reason=e.reason,
        level=e.level,
        payload=orjson.loads(e.payload),
    )


async def list_events(
    session: AsyncSession,
    ctx: AuditContext,
    placement_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[TransferEventRead], str | None]:
    """The placement's transfer log in order (``seq``); logged and committed like a read."""
    p = await _load(session, placement_id)
    holds_ = await _holds(session, p.id)
    stmt = select(TransferEvent).where(TransferEvent.placement_id == placement_id)
    if not access.can_view(ctx.principal, p.referrer_organisation_id, p.region_id, holds_):
        # A provider whose involvement ended still reads the events of its own declines.
        declined = access.own_declined_holds(ctx.principal, holds_)
        if not declined:
            raise Forbidden("This key may not see this placement.")
        stmt = stmt.where(
            TransferEvent.hold_id.in_(declined),
            TransferEvent.event_type == EventType.OFFER_DECLINED.value,
        )
    rows, nxt = await Keyset(TransferEvent.seq).scalars(session, stmt, cursor, limit)
    items = [event_read(r) for r in rows]
    await _audit(session, ctx, p, "placement.events.read", "R", now=None)
    await session.commit()
    return items, nxt


@dataclass(frozen=True)
class PlacementQuery:
    states: tuple[State, ...] = ()
    care_types: tuple[CareType, ...] = ()
    referrer: uuid.UUID | None = None
    subregion: str | None = None
    patient_key: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    owner: str | None = None  # "me" or "none"
    unowned_overdue: bool | None = None
    cursor: str | None = None
    limit: int = 50


def unowned_overdue_clause(now: datetime) -> ColumnElement[bool]:
    """SQL twin of ``ownership.unowned_overdue`` (the thresholds are the same data)."""
    by_level = [
        and_(
            Placement.urgency_level == level,
            Placement.created_at <= now - timedelta(minutes=minutes),
        )
        for level, minutes in ownership.UNOWNED_AFTER_MINUTES.items()
    ]
    return and_(
        Placement.owner_id.is_(None),
        Placement.owner_organisation_id.is_(None),
        Placement.state.not_in([s.value for s in FINAL]),
        or_(*by_level) if by_level else false(),
    )


def _visible(stmt: Select[Any], ctx: AuditContext) -> Select[Any]:
    p = ctx.principal
    if p.is_admin:
        return stmt
    ors = []
    if Role.REFERRER in p.roles and p.organisation_id is not None:
        ors.append(Placement.referrer_organisation_id == p.organisation_id)
    if Role.TRIAGIST in p.roles and p.region_id is not None:
        ors.append(Placement.region_id == p.region_id)
    if Role.PROVIDER in p.roles and p.organisation_id is not None:
        ors.append(
            Placement.id.in_(
                select(PlacementHold.placement_id).where(
                    PlacementHold.organisation_id == p.organisation_id,
                    PlacementHold.status.in_(access.INVOLVED_HOLD_STATUSES),
                )
            )
        )
    if not ors:
        raise Forbidden("This key's roles give no access to placements.")
    return stmt.where(or_(*ors))


async def list_placements(
    session: AsyncSession, ctx: AuditContext, q: PlacementQuery
) -> tuple[list[PlacementRead], str | None]:
    """Placements visible to the key, newest first; each returned placement is logged (E)."""
    stmt = _visible(select(Placement), ctx)
    if q.states:
        stmt = stmt.where(Placement.state.in_([s.value for s in q.states]))
    if q.care_types:
        stmt = stmt.where(Placement.care_type.in_([c.value for c in q.care_types]))
    if q.referrer is not None:
        stmt = stmt.where(Placement.referrer_organisation_id == q.referrer)
    if q.subregion is not None:
        sub = await resolve_subregion(session, q.subregion)
        stmt = stmt.where(Placement.subregion_id == sub.id)
    if q.patient_key is not None:
        stmt = stmt.where(Placement.patient_key == q.patient_key)
    if q.created_from is not None:
        stmt = stmt.where(Placement.created_at >= q.created_from)
    if q.created_to is not None:
        stmt = stmt.where(Placement.created_at < q.created_to)
    if q.owner == "me":
        stmt = stmt.where(Placement.owner_id == ctx.principal.key_id)
    elif q.owner == "none":
        stmt = stmt.where(Placement.owner_id.is_(None), Placement.owner_organisation_id.is_(None))
    now = utcnow()
    if q.unowned_overdue is not None:
        clause = unowned_overdue_clause(now)
        stmt = stmt.where(clause if q.unowned_overdue else not_(clause))
    order = Keyset(Placement.created_at, Placement.id, descending=True)
    page, nxt = await order.scalars(session, stmt, q.cursor, q.limit)
    hold_ids = [p.current_hold_id for p in page if p.current_hold_id is not None]
    held: dict[uuid.UUID, PlacementHold] = {}
    if hold_ids:
        held = {
            h.id: h
            for h in (
                await session.scalars(select(PlacementHold).where(PlacementHold.id.in_(hold_ids)))
            ).all()
        }
    items = [
        placement_read(
            p, None if p.current_hold_id is None else held.get(p.current_hold_id), now=now
        )
        for p in page
    ]
    filters = {
        "state": [s.value for s in q.states] or None,
        "care_type": [c.value for c in q.care_types] or None,
        "referrer": q.referrer,
        "subregion": q.subregion,
        "patient_key": q.patient_key,
        "created_from": q.created_from,
        "created_to": q.created_to,
        "owner": q.owner,
        "unowned_overdue": q.unowned_overdue,
    }
    detail = {"filters": {k: v for k, v in filters.items() if v is not None}}
    entries: Sequence[AuditEntry] = [
        AuditEntry(
            event_code="placement.search",
            action="E",
            object_id=str(p.id),
            patient_key=p.patient_key,
            detail=detail,
        )
        for p in page
    ] or [AuditEntry(event_code="placement.search", action="E", detail=detail | {"returned": 0})]
    await audit_service.append(session, ctx, entries)
    await session.commit()
    return items, nxt
