"""API key, user and who-am-I request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool

from app.enums import CareType, Role
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


_EMAIL = r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,255}\.[^@\s\x00]{2,63}$"
Email = Annotated[
    str, AfterValidator(lambda v: v.strip().lower()), Field(max_length=320, pattern=_EMAIL)
]
Password = Annotated[str, Field(min_length=10, max_length=200)]


class UserCreate(Schema):
    name: Name
    email: Email
    organisation_id: uuid.UUID | None = Field(
        default=None, description="Required unless the person is admin only"
    )
    roles: list[Role] = Field(min_length=1, max_length=5)
    password: Password = Field(description="At least 10 characters; only its argon2 hash is kept")
    active: StrictBool = True


class UserUpdate(Schema):
    name: Name | None = None
    organisation_id: uuid.UUID | None = None
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=5)
    active: StrictBool | None = None
    password: Password | None = Field(
        default=None, description="A new password; ends the person's open sessions"
    )
    reset_totp: StrictBool | None = Field(
        default=None, description="true: remove the second factor (the person enrols again)"
    )


class UserRead(Schema):
    id: uuid.UUID
    name: str
    email: str
    organisation_id: uuid.UUID | None
    roles: list[Role]
    active: bool
    totp_enrolled: bool
    version: int
    created_at: datetime
    updated_at: datetime


class MeUnit(Schema):
    id: uuid.UUID
    name: str
    care_type: CareType


class MeRead(Schema):
    kind: Literal["person", "key"] = Field(description="a person (web session) or an API key")
    id: uuid.UUID = Field(description="the user id or the API key id")
    name: str
    email: str | None = Field(description="the person's email; null for a key")
    organisation_id: uuid.UUID | None
    organisation_name: str | None
    region_id: uuid.UUID | None
    roles: list[Role]
    units: list[MeUnit] = Field(description="a provider's units (empty for other roles)")
