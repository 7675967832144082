"""Bodies of ``/v1/partners``: partner regions (other JuistePlek instances)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from app.schemas import Schema


class PartnerCreate(Schema):
    label: Annotated[
        str, Field(min_length=1, max_length=100, description="The partner's region name")
    ]
    base_url: AnyHttpUrl = Field(
        description="The partner instance's base URL, e.g. https://zeeland.juisteplek.example"
    )
    key: SecretStr = Field(
        min_length=8,
        max_length=500,
        description=(
            "An API key the partner issued for this region: role `referrer` at the partner "
            "(it reads the snapshot and the stream and places forwarded holds). Stored encrypted; "
            "never shown again."
        ),
    )

    @field_validator("label")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.strip() or "\x00" in value:
            raise ValueError("must be a non-empty name without NUL characters")
        return value.strip()

    @field_validator("base_url")
    @classmethod
    def _plain(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        if value.query or value.fragment or value.username or value.password:
            raise ValueError("must be a plain base URL: no query, fragment or credentials")
        if len(str(value)) > 500:
            raise ValueError("must be at most 500 characters")
        return value


class PartnerRead(Schema):
    id: uuid.UUID
    label: str
    base_url: str
    created_at: datetime
    reachable: bool = Field(description="Whether the last pull of its capacity succeeded")
    last_fetch_at: datetime | None = Field(description="The last successful pull")
    last_attempt_at: datetime | None
    last_error: str | None
    unit_count: int = Field(description="Partner units in the local cache")
