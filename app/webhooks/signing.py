"""Webhook signatures (pure), two schemes over the same body with the same subscription secret.

- **Standard Webhooks** (https://www.standardwebhooks.com): headers ``webhook-id`` (the event id),
  ``webhook-timestamp`` (unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` of
  ``f"{id}.{timestamp}.{body}"``, keyed with the base64-decoded part of the ``whsec_`` secret.
  Receivers verify with a library (``standardwebhooks`` and its ports, svix).
- **JuistePlek** (deprecated, kept for existing receivers): ``JuistePlek-Signature:
  t=<unix seconds>,v1=<hex digest>``, the HMAC-SHA256 of ``f"{t}.{body}"`` keyed with the whole
  secret string. Several ``v1=`` entries may appear while a secret is being rotated.

A receiver recomputes the digest with its secret, compares in constant time and refuses
timestamps outside its tolerance (replay protection).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "JuistePlek-Signature"
EVENT_ID_HEADER = "JuistePlek-Event-Id"
EVENT_TYPE_HEADER = "JuistePlek-Event-Type"
DELIVERY_ID_HEADER = "JuistePlek-Delivery-Id"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300


def generate_secret() -> str:
    """``whsec_`` + standard base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def standard_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: its base64 part decoded, as the reference libraries do.

    Secrets issued before the Standard Webhooks headers were added are URL-safe base64; Python's
    decoder skips the characters outside the standard alphabet, and so does the key here, so the
    ``standardwebhooks`` package verifies those too.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded + "==")
    except binascii.Error:
        return encoded.encode("utf-8")


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``."""
    message = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def standard_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        STANDARD_ID_HEADER: message_id,
        STANDARD_TIMESTAMP_HEADER: str(timestamp),
        STANDARD_SIGNATURE_HEADER: standard_signature(secret, message_id, timestamp, body),
    }


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
