"""The access-log chains (NEN 7513 log, docs/audit.md): pure, so writer and verifier share them.

Every row belongs to one chain: the object it is about (``placement:<id>``), or, for a row
about no object, the key that acted (``key:<id>``). Within a chain the rows are numbered 1, 2, …
(``chain_seq``) and linked: ``prev_hash`` is the previous row's ``hash``. ``hash`` is an
HMAC-SHA256, with a signing key that lives outside the database, over the row's id, chain,
position, previous hash and fields: whoever can write the table but lacks the key cannot
rewrite a row, move it, or re-chain the rows after it without ``juisteplek audit verify``
noticing. Rows written before chains existed form the chain ``legacy`` and keep their plain
SHA-256 hashes (``row_hash``).

Signed checkpoints record each chain's head (position and hash) from time to time and at every
verification, so a removed tail or a removed chain is noticed too.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS = "0" * 64
LEGACY_CHAIN = "legacy"
CHAIN_VERSION = 2
CHAIN_KEY_LENGTH = 100

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
    """The canonical JSON array of the row's hashed fields."""
    return orjson.dumps([_canonical(row[f]) for f in HASHED_FIELDS])


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """Version 1 (the ``legacy`` chain): SHA-256 over the previous hash and the row's fields."""
    body = orjson.dumps([prev_hash, [_canonical(row[f]) for f in HASHED_FIELDS]])
    return hashlib.sha256(body).hexdigest()


def chain_of(object_type: str, object_id: str | None, user_id: object | None) -> str:
    """The chain a row joins: its object's, else the acting key's (never one shared by all)."""
    if object_id is not None:
        key = f"{object_type}:{object_id}"
    elif user_id is not None:
        key = f"key:{user_id}"
    else:
        key = "system"
    return key[:CHAIN_KEY_LENGTH]


def row_mac(
    key: bytes, *, row_id: int, chain: str, seq: int, prev: str, row: Mapping[str, Any]
) -> str:
    """Version 2: HMAC-SHA256 over the row's id, chain, position, previous hash and fields."""
    body = orjson.dumps(
        [CHAIN_VERSION, row_id, chain, seq, prev, [_canonical(row[f]) for f in HASHED_FIELDS]]
    )
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def checkpoint_signature(
    key: bytes,
    *,
    number: int,
    created_at: datetime,
    prev_signature: str,
    entries: Iterable[tuple[str, int, str]],
) -> str:
    """HMAC-SHA256 over a checkpoint: its number, time, predecessor and the heads it records."""
    body = orjson.dumps(
        [
            CHAIN_VERSION,
            number,
            _canonical(created_at),
            prev_signature,
            sorted([list(e) for e in entries]),
        ]
    )
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def matches(keys: Sequence[bytes], expected: str, mac: Any) -> bool:
    """True when ``mac(key)`` gives ``expected`` for one of ``keys`` (current key first)."""
    return any(hmac.compare_digest(mac(k), expected) for k in keys)


def key_fingerprint(key: bytes) -> str:
    """A short public name for a signing key (not the key): which key signed a checkpoint."""
    return hashlib.sha256(b"juisteplek-audit-key-id:" + key).hexdigest()[:16]
