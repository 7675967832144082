"""API key request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from app.enums import Role
from app.schemas import Name, Schema


class ApiKeyCreate(Schema):
    name: Name
    organisation_id: uuid.UUID | None = Field(
        default=None, description="Required unless the key is admin-only"
    )
    roles: list[Role] = Field(min_length=1, max_length=5)


class ApiKeyRead(Schema):
    id: uuid.UUID
    name: str
    organisation_id: uuid.UUID | None
    roles: list[Role]
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


KEY_SHOWN_ONCE = (
    "The key was shown once, in the first response to this request, and is not stored; "
    "if it was lost, revoke this key and issue a new one."
)


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(description="The bearer key. Shown only in this response; store it now.")


class ApiKeyReplayed(ApiKeyRead):
    """The answer to a retried key-issuing request (``Idempotent-Replayed: true``)."""

    key: None = Field(
        default=None, description="null: JuistePlek keeps only the key's hash, never the key"
    )
    key_note: str = Field(default=KEY_SHOWN_ONCE, description="Why `key` is null")
