"""Partner regions (admin): other JuistePlek instances whose capacity this instance shows."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.db import utcnow
from app.enums import Role
from app.exchange import federation
from app.exchange.partner_schemas import PartnerCreate, PartnerRead
from app.http.deps import SessionDep, SettingsDep, WriteDep, requires
from app.routers.common import READ_PROBLEMS, WRITE_PROBLEMS
from app.schemas import Page

router = APIRouter(prefix="/v1/partners", tags=["partners"])


@router.post(
    "",
    status_code=201,
    response_model=PartnerRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def create_partner(body: PartnerCreate, write: WriteDep, settings: SettingsDep) -> Response:
    """Register a partner region: its base URL and a key it issued (role `referrer` there).
    Its capacity is pulled within seconds and followed on its stream (docs/federation.md)."""
    created = await federation.create_partner(write.session, body, settings=settings)
    write.headers["Location"] = f"/v1/partners/{created.id}"
    return await write.commit(created, status_code=201)


@router.get(
    "",
    response_model=Page[PartnerRead],
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def list_partners(session: SessionDep) -> Page[PartnerRead]:
    """Partner regions with whether they answer and when their capacity was last fetched
    (at most 100, so always one page)."""
    return Page(items=await federation.list_partners(session), next_cursor=None)


@router.delete(
    "/{partner_id}",
    response_model=PartnerRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def delete_partner(partner_id: uuid.UUID, write: WriteDep) -> Response:
    """Stop following the partner; its units leave the searches at once."""
    deleted = await federation.delete_partner(write.session, partner_id, now=utcnow())
    return await write.commit(deleted)
