"""Access-log bodies (GET /v1/audit)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BeforeValidator

from app.schemas import Schema


def _json_text(value: Any) -> Any:
    # The log stores ``detail`` as JSON text; an entry read from a row gets the object back.
    return orjson.loads(value) if isinstance(value, str | bytes) else value


class AuditEntryRead(Schema):
    """One NEN 7513 log entry; field names follow docs/domain.md §10.1."""

    id: int
    event_code: str
    action: Literal["C", "R", "U", "D", "E"]
    occurred_at: datetime
    outcome: Literal["success", "failure"]
    user_id: uuid.UUID | None
    user_display: str
    on_behalf_of: str | None
    role: str
    organisation_id: uuid.UUID | None
    access_point: str | None
    source: str
    object_type: str
    object_id: str | None
    patient_key: str | None
    purpose: str
    request_id: str | None
    detail: Annotated[dict[str, Any], BeforeValidator(_json_text)]
    prev_hash: str
    hash: str


class AuditVerifyResult(Schema):
    """What ``juisteplek audit verify`` found; the first problem names its row and position."""

    rows: int
    ok: bool
    chains: int = 0
    checkpoints: int = 0
    unsigned_rows: int = 0
    development_key: bool = False
    problems: int = 0
    first_bad_id: int | None = None
    chain: str | None = None
    position: int | None = None
    problem: str | None = None


class CheckpointRead(Schema):
    number: int
    created_at: datetime
    heads: int
    signature: str
