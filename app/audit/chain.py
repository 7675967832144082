"""The access-log hash chain (docs/domain.md §10.1): pure; the writer and verifier share it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64

# The fields a row's hash covers, in this order; adding one needs a chain version bump.
HASHED_FIELDS = (
    "event_code",
    "action",
    "occurred_at",
    "outcome",
    "user_id",
    "user_display",
    "on_behalf_of",
    "role",
    "organisation_id",
    "access_point",
    "source",
    "object_type",
    "object_id",
    "patient_key",
    "purpose",
    "request_id",
    "detail",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if value is None or isinstance(value, str | int):
        return value
    return str(value)


def fields_json(row: Mapping[str, Any]) -> bytes:
    """The canonical JSON array of the row's hashed fields: what ``row_hash`` hashes after the
    previous hash. For a hex ``prev_hash`` the hashed bytes are ``["<prev>",`` + this + ``]``."""
    return orjson.dumps([_canonical(row[f]) for f in HASHED_FIELDS])


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical JSON of the row's hashed fields."""
    body = orjson.dumps([prev_hash, [_canonical(row[f]) for f in HASHED_FIELDS]])
    return hashlib.sha256(body).hexdigest()
