"""Admin endpoints for API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from app.auth import service as auth_service
from app.auth.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyRead, ApiKeyReplayed
from app.enums import Role
from app.http.deps import WriteDep, requires
from app.routers.common import WRITE_PROBLEMS

router = APIRouter(prefix="/v1", tags=["auth"])


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyIssued | ApiKeyReplayed,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def issue_key(body: ApiKeyCreate, write: WriteDep) -> Response:
    """Issue a key. The key is in this response only; JuistePlek keeps just its hash.

    A retry with the same `Idempotency-Key` answers with the key's id and `key: null`: the
    idempotency record, like everything else, holds no plaintext key.
    """
    issued = await auth_service.issue_key(write.session, body, created_by=write.principal.key_id)
    replay = ApiKeyReplayed(**issued.model_dump(exclude={"key"}))
    return await write.commit(issued, status_code=201, stored=replay)


@router.delete(
    "/api-keys/{key_id}",
    response_model=ApiKeyRead,
    responses=WRITE_PROBLEMS,
    dependencies=[requires(Role.ADMIN)],
)
async def revoke_key(key_id: uuid.UUID, write: WriteDep, request: Request) -> Response:
    """Revoke a key; it stops working at once on this instance, within seconds on others."""
    revoked = await auth_service.revoke_key(write.session, key_id)
    response = await write.commit(revoked)
    request.app.state.key_resolver.forget()
    request.app.state.hub.revoke([key_id])
    return response
