"""Placement endpoints (docs/domain.md §13, §14): referrals, holds, actions, transfer log.

Every route is an ``AuditedRoute``: a request refused with 403 is written to the NEN 7513 access
log in its own transaction, because the request's own transaction rolls back.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Body, Query, Request, Response

from app.capacity import service as capacity_service
from app.capacity.schemas import AvailabilityResult
from app.config import Settings
from app.db import utcnow
from app.enums import CareType, Feature, Role, Sex, TargetGroup
from app.exchange import federation, partner_sync
from app.flows import search as search_flow
from app.http.audited import AuditCtx, AuditedRoute
from app.http.deps import (
    DbDep,
    ScopesDep,
    SessionDep,
    SettingsDep,
    WriteDep,
    authenticated,
    requires,
)
from app.kpi import queries as kpi_queries
from app.placement import cases
from app.placement import service as placement_service
from app.placement.errors import NoCapacity
from app.placement.holds import UnknownUnit
from app.placement.schemas import (
    CancelIn,
    DeclineIn,
    EventIn,
    HistoryRead,
    HoldCreate,
    HoldRead,
    NoteIn,
    NoteRead,
    OccurredIn,
    OwnerIn,
    PlacementCreate,
    PlacementRead,
    TransferEventRead,
)
from app.placement.states import State
from app.routers.common import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    CursorQ,
    IncludePartnersQ,
    NearQ,
    json_response,
)
from app.schemas import Page, UtcDateTime

log = structlog.get_logger("juisteplek.placements")

router = APIRouter(prefix="/v1", tags=["placement"], route_class=AuditedRoute)


@router.post(
    "/placements",
    status_code=201,
    response_model=PlacementRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.REFERRER, Role.TRIAGIST)],
)
async def create_placement(
    body: PlacementCreate, write: WriteDep, ctx: AuditCtx, settings: SettingsDep
) -> Response:
    """Refer a patient (pseudonymous): state ``requested``, or ``triaged`` with a triage."""
    result = await placement_service.create_placement(
        write.session, ctx, body, now=utcnow(), settings=settings
    )
    write.headers["Location"] = f"/v1/placements/{result.id}"
    return await write.commit(result, status_code=201)


@router.get(
    "/placements",
    response_model=Page[PlacementRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_placements(
    session: SessionDep,
    ctx: AuditCtx,
    state: Annotated[list[State], Query(max_length=len(State))] = [],  # noqa: B006
    care_type: Annotated[list[CareType], Query(max_length=len(CareType))] = [],  # noqa: B006
    referrer: Annotated[uuid.UUID | None, Query(description="referring organisation")] = None,
    subregion: Annotated[str | None, Query(max_length=64, description="id or code")] = None,
    patient_key: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9a-f]{64}$",
            description="one patient's placements (the pseudonymous key of a placement answer)",
        ),
    ] = None,
    created_from: UtcDateTime | None = None,
    created_to: UtcDateTime | None = None,
    owner: Annotated[
        Literal["me", "none"] | None,
        Query(description="me: cases this person or key owns; none: cases nobody owns"),
    ] = None,
    unowned_overdue: Annotated[
        bool | None,
        Query(description="true: open cases without an owner for longer than their urgency allows"),
    ] = None,
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[PlacementRead]:
    """Placements this key may see, newest first (referrer: own; triagist: region; provider:
    those with an open or admitted hold on its units; admin: all)."""
    items, nxt = await placement_service.list_placements(
        session,
        ctx,
        placement_service.PlacementQuery(
            states=tuple(state),
            care_types=tuple(care_type),
            referrer=referrer,
            subregion=subregion,
            patient_key=patient_key,
            created_from=created_from,
            created_to=created_to,
            owner=owner,
            unowned_overdue=unowned_overdue,
            cursor=cursor,
            limit=limit,
        ),
    )
    return Page(items=items, next_cursor=nxt)


@router.get(
    "/placements/{placement_id}",
    response_model=PlacementRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def get_placement(
    placement_id: uuid.UUID, session: SessionDep, ctx: AuditCtx, response: Response
) -> PlacementRead:
    """One placement with its current hold and the actions allowed in its state."""
    result = await placement_service.get_placement(session, ctx, placement_id)
    response.headers["ETag"] = f'W/"{result.version}"'
    return result


@router.post(
    "/placements/{placement_id}/holds",
    status_code=201,
    response_model=HoldRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def place_hold(
    request: Request,
    placement_id: uuid.UUID,
    body: HoldCreate,
    write: WriteDep,
    ctx: AuditCtx,
) -> Response:
    """Hold one place on a unit (atomic; 409 ``no-capacity`` when none is left): -> offered.

    The unit must be of the care type the placement was triaged for, with rooms that take the
    patient's sex (422 naming each misfit)."""
    # The write hot path: settings read from the app, not a SettingsDep (one dependency fewer).
    settings: Settings = request.app.state.settings
    try:
        hold = await placement_service.place_hold(
            write.session, ctx, placement_id, body, now=utcnow(), settings=settings
        )
    except NoCapacity:
        # A shortage moment (docs/domain.md §6.10): recorded apart, after the refused write.
        await write.session.rollback()
        try:
            async with request.app.state.db.engine.begin() as conn:
                await kpi_queries.record_hold_refused(conn, placement_id, utcnow())
        except Exception as exc:  # a KPI count must never turn the caller's 409 into another error
            log.warning(
                "shortage_not_recorded", placement_id=str(placement_id), error=repr(exc)[:200]
            )
        raise
    except UnknownUnit:
        # Not a unit of this region: a partner region's unit is held there (docs/federation.md).
        await write.session.rollback()
        unit = await federation.partner_unit(write.session, body.unit_id)
        if unit is None:
            raise
        hold = await federation.forward_hold(
            write.session, ctx, placement_id, body, unit, now=utcnow(), settings=settings
        )
    return await write.commit(hold, status_code=201)


@router.get(
    "/placements/{placement_id}/availability",
    response_model=AvailabilityResult,
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.TRIAGIST, Role.REFERRER, Role.PROVIDER)],
)
async def placement_availability(
    placement_id: uuid.UUID,
    db: DbDep,
    ctx: AuditCtx,
    settings: SettingsDep,
    scopes: ScopesDep,
    care_type: Annotated[
        list[CareType],
        Query(max_length=len(CareType), description="default: the placement's care type"),
    ] = [],  # noqa: B006
    target_group: Annotated[
        list[TargetGroup],
        Query(max_length=len(TargetGroup), description="default: the placement's"),
    ] = [],  # noqa: B006
    sex: Annotated[Sex | None, Query(description="default: the patient's")] = None,
    features: Annotated[
        list[Feature],
        Query(max_length=len(Feature), description="added to the placement's needed features"),
    ] = [],  # noqa: B006
    subregion: Annotated[
        str | None, Query(max_length=64, description="id or code; default: the placement's")
    ] = None,
    near: NearQ = None,
    include_stale: bool = False,
    escalate: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    include_not_accepting: Annotated[
        bool,
        Query(description="Also list units closed to admissions, marked, after the open ones"),
    ] = False,
    admitting_at: Annotated[
        UtcDateTime | None,
        Query(description="When the patient would arrive (default now); see GET /v1/availability"),
    ] = None,
    include_partners: IncludePartnersQ = False,
) -> Response:
    """Free places for this placement's patient, ranked as ``GET /v1/availability`` ranks them;
    each hit says whether an earlier hold of this placement on it was declined or expired."""
    result = await search_flow.search_for_placement(
        db,
        ctx,
        placement_id,
        capacity_service.SearchQuery(
            care_types=tuple(care_type),
            target_groups=tuple(target_group),
            sex=sex,
            features=tuple(features),
            subregion=subregion,
            near=near,
            include_stale=include_stale,
            escalate=escalate,
            limit=limit,
            include_not_accepting=include_not_accepting,
            admitting_at=admitting_at,
            include_partners=include_partners,
        ),
        now=utcnow(),
        settings=settings,
        scopes=scopes,
    )
    return json_response(result)


OptionalOccurred = Annotated[OccurredIn | None, Body()]


@router.post(
    "/placements/{placement_id}/accept",
    response_model=PlacementRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def accept_placement(
    placement_id: uuid.UUID,
    write: WriteDep,
    ctx: AuditCtx,
    settings: SettingsDep,
    body: OptionalOccurred = None,
) -> Response:
    """The receiving provider (owner of the held unit) accepts: offered -> accepted."""
    result = await placement_service.accept(
        write.session, ctx, placement_id, body or OccurredIn(), now=utcnow(), settings=settings
    )
    return await write.commit(result)


@router.post(
    "/placements/{placement_id}/decline",
    response_model=PlacementRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def decline_placement(
    placement_id: uuid.UUID,
    body: DeclineIn,
    write: WriteDep,
    ctx: AuditCtx,
    settings: SettingsDep,
) -> Response:
    """Refuse the offer with a reason code; the hold is released: offered -> triaged."""
    result = await placement_service.decline(
        write.session, ctx, placement_id, body, now=utcnow(), settings=settings
    )
    return await write.commit(result)


@router.post(
    "/placements/{placement_id}/admit",
    response_model=PlacementRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def admit_placement(
    placement_id: uuid.UUID,
    write: WriteDep,
    ctx: AuditCtx,
    settings: SettingsDep,
    body: OptionalOccurred = None,
) -> Response:
    """The patient arrived: accepted -> transferred (final)."""
    result = await placement_service.admit(
        write.session, ctx, placement_id, body or OccurredIn(), now=utcnow(), settings=settings
    )
    return await write.commit(result)


@router.post(
    "/placements/{placement_id}/cancel",
    response_model=PlacementRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def cancel_placement(
    placement_id: uuid.UUID,
    body: CancelIn,
    write: WriteDep,
    ctx: AuditCtx,
    settings: SettingsDep,
) -> Response:
    """Close the placement with a reason code (final); an active hold is released."""
    result = await placement_service.cancel(
        write.session, ctx, placement_id, body, now=utcnow(), settings=settings
    )
    response = await write.commit(result)
    partner_sync.wake_all()  # a place held at a partner region is given back there
    return response


@router.post(
    "/placements/{placement_id}/events",
    status_code=201,
    response_model=TransferEventRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def record_event(
    placement_id: uuid.UUID,
    body: EventIn,
    write: WriteDep,
    ctx: AuditCtx,
    settings: SettingsDep,
) -> Response:
    """Clinical events (medically_ready, ready_revoked, hospital_admitted), consent_given, or a
    manual escalation (escalated with level and reason)."""
    result = await placement_service.record_event(
        write.session, ctx, placement_id, body, now=utcnow(), settings=settings
    )
    return await write.commit(result, status_code=201)


@router.get(
    "/placements/{placement_id}/events",
    response_model=Page[TransferEventRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_events(
    placement_id: uuid.UUID,
    session: SessionDep,
    ctx: AuditCtx,
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[TransferEventRead]:
    """The placement's transfer log, oldest first."""
    items, nxt = await placement_service.list_events(
        session, ctx, placement_id, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=nxt)


@router.put(
    "/placements/{placement_id}/owner",
    response_model=PlacementRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def change_owner(
    placement_id: uuid.UUID, body: OwnerIn, write: WriteDep, ctx: AuditCtx
) -> Response:
    """Take the case (``{"action": "take"}``) or hand it over (``{"action": "hand_over", "to":
    <user id> | "referrer"}``); each change is a transfer-log event (owner_taken,
    owner_handed_over). A closed placement keeps its last owner (409)."""
    result = await cases.change_owner(write.session, ctx, placement_id, body, now=utcnow())
    return await write.commit(result)


@router.post(
    "/placements/{placement_id}/notes",
    status_code=201,
    response_model=NoteRead,
    responses=WRITE_PROBLEMS,
    dependencies=[authenticated()],
)
async def add_note(
    placement_id: uuid.UUID, body: NoteIn, write: WriteDep, ctx: AuditCtx
) -> Response:
    """Append a case note (at most 4,000 characters): triagists of the region and the case owner.
    Notes are never changed or deleted."""
    result = await cases.add_note(write.session, ctx, placement_id, body, now=utcnow())
    return await write.commit(result, status_code=201)


@router.get(
    "/placements/{placement_id}/notes",
    response_model=Page[NoteRead],
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def list_notes(
    placement_id: uuid.UUID,
    session: SessionDep,
    ctx: AuditCtx,
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[NoteRead]:
    """The placement's case notes, oldest first (a patient-data read: logged)."""
    items, nxt = await cases.list_notes(session, ctx, placement_id, cursor=cursor, limit=limit)
    return Page(items=items, next_cursor=nxt)


@router.get(
    "/placements/{placement_id}/history",
    response_model=HistoryRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated()],
)
async def placement_history(
    placement_id: uuid.UUID, session: SessionDep, ctx: AuditCtx
) -> HistoryRead:
    """The patient's earlier placements in the region (same pseudonymous patient key) with their
    case notes, newest first: for the region's triagists only."""
    return await cases.history(session, ctx, placement_id)
