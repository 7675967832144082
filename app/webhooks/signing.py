"""Webhook signatures (pure): HMAC-SHA256 over ``f"{t}.{body}"`` with the subscription secret.

Header: ``JuistePlek-Signature: t=<unix seconds>,v1=<hex digest>``. A receiver recomputes the
digest with its secret, compares in constant time and refuses timestamps outside its tolerance
(replay protection). Several ``v1=`` entries may appear while a secret is being rotated.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "JuistePlek-Signature"
EVENT_ID_HEADER = "JuistePlek-Event-Id"
EVENT_TYPE_HEADER = "JuistePlek-Event-Type"
DELIVERY_ID_HEADER = "JuistePlek-Delivery-Id"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={compute_signature(secret, timestamp, body)}"


def parse_signature_header(header: str) -> tuple[int | None, list[str]]:
    """(timestamp, v1 signatures) from a header value; (None, []) parts when absent or garbled."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    return timestamp, signatures


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is recent enough."""
    timestamp, signatures = parse_signature_header(header)
    if timestamp is None or not signatures or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = compute_signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, sig) for sig in signatures)
