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


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(description="The bearer key. Shown only in this response; store it now.")
