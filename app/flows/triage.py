"""Triage as one unit of work: the advice (``app.triage``), the placement it is written onto
(``app.placement``) and the free places of the advised care type (``app.flows.search``), all in
the caller's transaction, committed once by the caller."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import AuditContext
from app.capacity.schemas import AvailabilityResult
from app.capacity.service import SearchQuery
from app.config import Settings
from app.db import Database
from app.enums import CareType, TargetGroup
from app.errors import DomainError, InvalidInput
from app.flows.search import for_placement, search_availability
from app.placement import service as placement_service
from app.placement.schemas import PlacementRead
from app.principal import Principal
from app.triage import service as triage_service
from app.triage.schemas import Advice, PlacementRef, TriageRequest


class TriageAdvice(Advice):
    availability: AvailabilityResult | None = Field(description="With search=true")


def _as_body_error(exc: DomainError, field: str) -> InvalidInput:
    return InvalidInput(exc.detail, errors=[{"pointer": f"#/{field}", "detail": exc.detail}])


async def _search(
    db: Database,
    session: AsyncSession,
    principal: Principal,
    body: TriageRequest,
    care_types: tuple[CareType, ...],
    target_group: str | None,
    placement: PlacementRead | None,
    *,
    now: datetime,
    settings: Settings,
) -> AvailabilityResult:
    """The free places for the advice; a triaged placement lends the search its patient's
    subregion, sex and needed features where the request leaves them out (a triagist searches
    for this patient, not for anyone)."""
    if not care_types:  # hospital, home advice, ...: nothing to search
        return AvailabilityResult(
            items=[], count=0, escalated=False, searched_subregions=[], generated_at=now
        )
    query = SearchQuery(
        care_types=care_types,
        target_groups=() if target_group is None else (TargetGroup(target_group),),
        sex=body.sex,
        features=tuple(body.features),
        subregion=body.subregion,
        near=body.near,
        include_stale=body.include_stale,
        escalate=body.escalate,
        limit=body.limit,
    )
    if placement is not None:
        query = for_placement(query, placement)
    try:
        found = await search_availability(
            db, principal, query, now=now, settings=settings, session=session
        )
    except InvalidInput as exc:  # the search names query parameters; here they are body fields
        pointer = (exc.errors or [{}])[0].get("pointer", "")
        raise _as_body_error(exc, str(pointer).removeprefix("query:") or "subregion") from None
    return AvailabilityResult.model_validate(found)


async def triage(
    session: AsyncSession,
    db: Database,
    ctx: AuditContext,
    body: TriageRequest,
    *,
    now: datetime,
    settings: Settings,
) -> TriageAdvice:
    """Answers in, advice out, stored as a triage record (docs/domain.md §4, §12.1).

    With ``placement_id`` the triage is written onto the placement (requested -> triaged, a
    transfer event, the NEN 7513 log) through the placement service; with ``search`` the free
    places of the advised (or overriding) care type are returned, ranked. Everything is written
    in ``session``'s transaction; the caller commits it once, before it answers.
    """
    principal = ctx.principal
    prepared = await triage_service.prepare(session, principal, body, now=now)
    placement = None
    if body.placement_id is not None:
        # Access check, 404 and the placement's own urgency before anything is computed.
        placement = await placement_service.read_placement(session, ctx, body.placement_id, now=now)
    assessed = triage_service.assess(
        prepared,
        body,
        placement_urgency=None
        if placement is None
        else (placement.urgency.level, placement.urgency.system, placement.urgency.code),
    )
    availability = None
    if body.search:
        # The search reads on read connections (it never waits for this session's write lock)
        # and counts a search without result in this transaction.
        care_type = assessed.care_type
        availability = await _search(
            db,
            session,
            principal,
            body,
            (care_type,) if care_type is not None else tuple(assessed.advised),
            assessed.target_group or (None if placement is None else placement.target_group.value),
            placement,
            now=now,
            settings=settings,
        )
    record = await triage_service.record(session, principal, body, assessed, now=now)
    placement_ref = None
    if body.placement_id is not None:
        assert assessed.care_type is not None  # assess refused the rest
        placed = await placement_service.record_triage(
            session,
            ctx,
            body.placement_id,
            care_type=assessed.care_type,
            rule_set=assessed.active.version,
            outcome=assessed.result.outcome,
            occurred_at=body.occurred_at,
            now=now,
            settings=settings,
            details=triage_service.placement_details(record, assessed, body),
        )
        placement_ref = PlacementRef(id=placed.id, state=placed.state.value)
    advice = triage_service.advice(record, assessed, placement_ref, body)
    return TriageAdvice(**dict(advice), availability=availability)
