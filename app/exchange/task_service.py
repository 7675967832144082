"""Transfers as FHIR Task negotiation (docs/exchange.md "Transfers as Task"): reads, the provider
system's search, and answers through the placement service's accept and decline.

Every read of a ServiceRequest or Task is a read of placement data: it writes its NEN 7513
access-log row and commits it before the answer exists, as ``GET /v1/placements/{id}`` does.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.audit.service import AuditContext, AuditEntry
from app.config import Settings
from app.enums import Role
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.exchange import fhir, tasks
from app.placement import access
from app.placement import service as placement_service
from app.placement.models import Placement, PlacementHold
from app.placement.schemas import DeclineIn, OccurredIn

_DEFAULT_COUNT = 50
_MAX_COUNT = 500


def _facts(p: Placement) -> tasks.PlacementFacts:
    return tasks.PlacementFacts(
        id=p.id,
        state=p.state,
        patient_key=p.patient_key,
        care_type=p.care_type,
        urgency_system=p.urgency_system,
        urgency_code=p.urgency_code,
        urgency_level=p.urgency_level,
        referrer_organisation_id=p.referrer_organisation_id,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def _hold_facts(h: PlacementHold) -> tasks.HoldFacts:
    return tasks.HoldFacts(
        id=h.id,
        unit_id=h.unit_id,
        organisation_id=h.organisation_id,
        status=h.status,
        created_at=h.created_at,
        expires_at=h.expires_at,
        accepted_at=h.accepted_at,
        admitted_at=h.admitted_at,
        released_at=h.released_at,
        release_reason=h.release_reason,
    )


def _uuid(raw: str, resource_type: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"No {resource_type}/{raw}.") from None


def _can_see_hold(principal: Any, p: Placement, hold_org: uuid.UUID) -> bool:
    if access.can_manage(principal, p.referrer_organisation_id, p.region_id):
        return True
    return Role.PROVIDER in principal.roles and principal.organisation_id == hold_org


async def _log(
    session: AsyncSession,
    ctx: AuditContext,
    rows: Sequence[tuple[Placement, str]],
    event_code: str,
    action: str,
    now: datetime,
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
                detail={"fhir": reference},
            )
            for p, reference in rows
        ],
        now=now,
    )


async def read_service_request(
    session: AsyncSession, ctx: AuditContext, resource_id: str, *, now: datetime
) -> dict[str, Any]:
    p = await session.get(Placement, _uuid(resource_id, "ServiceRequest"))
    if p is None:
        raise NotFound(f"No ServiceRequest/{resource_id}.")
    holds = [
        access.HoldFact(*row)
        for row in await session.execute(
            select(PlacementHold.id, PlacementHold.organisation_id, PlacementHold.status).where(
                PlacementHold.placement_id == p.id
            )
        )
    ]
    access.require_view(ctx.principal, p.referrer_organisation_id, p.region_id, holds)
    resource = tasks.service_request(_facts(p))
    await _log(session, ctx, [(p, f"ServiceRequest/{p.id}")], "fhir.service_request.read", "R", now)
    await session.commit()
    return resource


async def _load_task(
    session: AsyncSession, ctx: AuditContext, resource_id: str
) -> tuple[Placement, PlacementHold]:
    hold = await session.get(PlacementHold, _uuid(resource_id, "Task"))
    if hold is None:
        raise NotFound(f"No Task/{resource_id}.")
    p = await session.get(Placement, hold.placement_id)
    assert p is not None  # a hold's placement is a foreign key
    if not _can_see_hold(ctx.principal, p, hold.organisation_id):
        raise Forbidden("This key may not see this Task: it is for the owner's organisation.")
    return p, hold


async def read_task(
    session: AsyncSession, ctx: AuditContext, resource_id: str, *, now: datetime
) -> dict[str, Any]:
    p, hold = await _load_task(session, ctx, resource_id)
    resource = tasks.task(_facts(p), _hold_facts(hold))
    await _log(session, ctx, [(p, f"Task/{hold.id}")], "fhir.task.read", "R", now)
    await session.commit()
    return resource


@dataclass(frozen=True, slots=True)
class TaskSearch:
    params: Sequence[tuple[str, str]]
    base_url: str


def _int(values: list[str], name: str, default: int, maximum: int) -> int:
    if not values:
        return default
    raw = values[-1]
    if not raw.isdigit() or int(raw) > maximum:
        raise InvalidInput(
            f"{name} must be a whole number from 0 to {maximum}.",
            errors=[{"pointer": f"query:{name}", "detail": "not a number in range"}],
        )
    return int(raw)


def _org_param(values: list[str]) -> set[uuid.UUID] | None:
    if not values:
        return None
    out = set()
    for raw in (v for value in values for v in value.split(",")):
        ref = raw.rsplit("/", 1)[-1]
        try:
            out.add(uuid.UUID(ref))
        except ValueError:
            raise InvalidInput(
                f"owner {raw!r} is not an Organization reference or id.",
                errors=[{"pointer": "query:owner", "detail": "not an Organization id"}],
            ) from None
    return out


def _focus_param(values: list[str]) -> set[uuid.UUID]:
    out = set()
    for raw in (v for value in values for v in value.split(",")):
        try:
            out.add(uuid.UUID(raw.rsplit("/", 1)[-1]))
        except ValueError:
            raise InvalidInput(
                f"focus {raw!r} is not a ServiceRequest reference or id.",
                errors=[{"pointer": "query:focus", "detail": "not a ServiceRequest id"}],
            ) from None
    return out


def _status_param(values: list[str]) -> set[tasks.TaskStatus] | None:
    if not values:
        return None
    out = set()
    for raw in (v for value in values for v in value.split(",")):
        try:
            out.add(tasks.TaskStatus(raw.rsplit("|", 1)[-1]))
        except ValueError:
            known = ", ".join(s.value for s in tasks.TaskStatus)
            raise InvalidInput(
                f"status {raw!r} is not a Task status here ({known}).",
                errors=[{"pointer": "query:status", "detail": "unknown status"}],
            ) from None
    return out


async def search_tasks(
    session: AsyncSession, ctx: AuditContext, req: TaskSearch, *, now: datetime
) -> dict[str, Any]:
    """Tasks this key may see, oldest first (by creation, then id): a provider sees its own
    organisation's, a referrer its placements', a triagist its region's, an admin all."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for name, value in req.params:
        grouped[name].append(value)
    count = _int(grouped.get("_count", []), "_count", _DEFAULT_COUNT, _MAX_COUNT)
    offset = _int(grouped.get("_offset", []), "_offset", 0, 10_000_000)
    owners = _org_param(grouped.get("owner", []))
    statuses = _status_param(grouped.get("status", []))
    focus = grouped.get("focus", [])
    principal = ctx.principal
    query = select(PlacementHold, Placement).join(
        Placement, Placement.id == PlacementHold.placement_id
    )
    if not principal.is_admin:
        visible = []
        if Role.PROVIDER in principal.roles and principal.organisation_id is not None:
            visible.append(PlacementHold.organisation_id == principal.organisation_id)
        if Role.REFERRER in principal.roles and principal.organisation_id is not None:
            visible.append(Placement.referrer_organisation_id == principal.organisation_id)
        if Role.TRIAGIST in principal.roles and principal.region_id is not None:
            visible.append(Placement.region_id == principal.region_id)
        if not visible:
            raise Forbidden("Tasks are for providers, referrers, triagists and admins.")
        query = query.where(or_(*visible))
    if owners is not None:
        query = query.where(PlacementHold.organisation_id.in_(owners))
    if focus:
        query = query.where(Placement.id.in_(_focus_param(focus)))
    if statuses is not None:
        query = query.where(
            or_(
                *(
                    and_(PlacementHold.status == hold_status, Placement.state == state)
                    for hold_status, state in tasks.pairs_with_status(statuses)
                )
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = (
        await session.execute(
            query.order_by(PlacementHold.created_at, PlacementHold.id).offset(offset).limit(count)
        )
    ).all()
    page = [(p, hold, tasks.task(_facts(p), _hold_facts(hold))) for hold, p in rows]
    kept = [(n, v) for n, v in req.params if n in ("owner", "status", "focus")]
    base = f"{req.base_url}/Task"

    def link(at: int) -> str:
        return f"{base}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(at))])}"

    logged = [(p, f"Task/{h.id}") for p, h, _ in page]
    await _log(session, ctx, logged, "fhir.task.search", "E", now)
    await session.commit()
    return fhir.searchset(
        [(f"{base}/{h.id}", resource) for _, h, resource in page],
        total=total or 0,
        self_url=link(offset),
        next_url=link(offset + count) if count and offset + count < (total or 0) else None,
        now=now,
    )


async def answer_task(
    session: AsyncSession,
    ctx: AuditContext,
    resource_id: str,
    data: Any,
    *,
    now: datetime,
    settings: Settings,
) -> dict[str, Any]:
    """A provider system's ``PUT /fhir/Task/{id}``: ``accepted`` is the placement's accept,
    ``rejected`` its decline (with the decline code from ``statusReason``), with the checks and
    logs of ``POST /v1/placements/{id}/accept|decline``. The caller commits."""
    p, hold = await _load_task(session, ctx, resource_id)
    answer, problems = tasks.parse_answer(data, task_id=str(hold.id), owner_id=hold.organisation_id)
    if answer is None:
        raise InvalidInput(
            "The Task cannot be answered like this: "
            + "; ".join(f"{x.pointer}: {x.detail}" for x in problems),
            errors=[{"pointer": x.pointer, "detail": x.detail} for x in problems],
        )
    current = tasks.task_status(hold.status, p.state)
    if current is not tasks.TaskStatus.REQUESTED or p.current_hold_id != hold.id:
        raise Conflict(
            f"Task/{hold.id} is {current.value}; only a requested Task can be answered.",
            extra={"task_status": current.value},
        )
    if answer.status is tasks.TaskStatus.ACCEPTED:
        await placement_service.accept(session, ctx, p.id, OccurredIn(), now=now, settings=settings)
    else:
        assert answer.reason is not None  # parse_answer requires it for rejected
        body = DeclineIn.model_validate(
            {"reason": answer.reason, "reason_text": answer.reason_text}
        )
        await placement_service.decline(session, ctx, p.id, body, now=now, settings=settings)
    await session.refresh(hold)
    await session.refresh(p)
    return tasks.task(_facts(p), _hold_facts(hold))
