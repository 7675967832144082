"""Personal accounts (admin) and ``GET /v1/me``: who is calling, a key or a person."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth import users as user_service
from app.auth.schemas import MeRead, UserCreate, UserRead, UserUpdate
from app.enums import Role
from app.etag import etag
from app.http.deps import (
    KeyOrPersonDep,
    PrincipalDep,
    SessionDep,
    WriteDep,
    authenticated,
    requires,
)
from app.routers.common import READ_PROBLEMS, WRITE_PROBLEMS, CursorQ, IfMatchH, LimitQ
from app.schemas import Page

router = APIRouter(prefix="/v1", tags=["users"])


@router.get(
    "/me",
    response_model=MeRead,
    responses=READ_PROBLEMS,
    dependencies=[authenticated(session_ok=True)],
)
async def who_am_i(session: SessionDep, caller: KeyOrPersonDep) -> MeRead:
    """The caller: a key (Bearer) or a person (web session), with organisation, roles and, for
    providers, their units."""
    return await user_service.who_am_i(session, caller)


@router.get(
    "/users",
    response_model=Page[UserRead],
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def list_users(
    session: SessionDep,
    principal: PrincipalDep,
    cursor: CursorQ = None,
    limit: LimitQ = 50,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    active: bool | None = None,
) -> Page[UserRead]:
    """Personal accounts (admin), in a stable order."""
    items, nxt = await user_service.list_users(
        session,
        principal,
        cursor=cursor,
        limit=limit,
        organisation_id=organisation_id,
        active=active,
    )
    return Page(items=items, next_cursor=nxt)


@router.post(
    "/users",
    status_code=201,
    response_model=UserRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def create_user(body: UserCreate, write: WriteDep) -> Response:
    """Create a person's account (admin); the password is kept only as an argon2 hash."""
    user = await user_service.create_user(write.session, write.principal, body)
    write.headers["ETag"] = etag(user.version)
    write.headers["Location"] = f"/v1/users/{user.id}"
    return await write.commit(user, status_code=201)


@router.get(
    "/users/{user_id}",
    response_model=UserRead,
    responses=READ_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def get_user(
    user_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, response: Response
) -> UserRead:
    user = await user_service.get_user(session, principal, user_id)
    response.headers["ETag"] = etag(user.version)
    return user


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, write: WriteDep, if_match: IfMatchH = None
) -> Response:
    """Change name, organisation, roles, active, password or reset the second factor (admin).
    Deactivation, a new password, new roles or organisation end the person's sessions."""
    user = await user_service.update_user(write.session, write.principal, user_id, body, if_match)
    write.headers["ETag"] = etag(user.version)
    return await write.commit(user)
