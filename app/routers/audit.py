"""NEN 7513 access log for admins (docs/domain.md §14 ``GET /v1/audit``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.audit import service as audit_service
from app.audit.schemas import AuditEntryRead
from app.enums import Role
from app.http.audited import AuditCtx, AuditedRoute
from app.http.deps import SessionDep, requires
from app.routers.common import READ_PROBLEMS, CursorQ
from app.schemas import Page, UtcDateTime

router = APIRouter(prefix="/v1", tags=["audit"], route_class=AuditedRoute)


@router.get(
    "/audit",
    response_model=Page[AuditEntryRead],
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def list_audit(
    session: SessionDep,
    ctx: AuditCtx,
    patient_key: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
    object_id: Annotated[str | None, Query(max_length=64, description="placement id")] = None,
    key_id: Annotated[uuid.UUID | None, Query(description="API key that acted")] = None,
    since: Annotated[UtcDateTime | None, Query(alias="from")] = None,
    until: Annotated[UtcDateTime | None, Query(alias="to")] = None,
    outcome: Literal["success", "failure"] | None = None,
    cursor: CursorQ = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[AuditEntryRead]:
    """Access-log entries, oldest first; with ``patient_key``: who accessed that patient's data.
    Reading the log is logged too."""
    items, nxt = await audit_service.list_entries(
        session,
        ctx,
        audit_service.AuditQuery(
            patient_key=patient_key,
            object_id=object_id,
            key_id=key_id,
            since=since,
            until=until,
            outcome=outcome,
            cursor=cursor,
            limit=limit,
        ),
    )
    return Page(items=items, next_cursor=nxt)
