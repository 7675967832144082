"""Webhook signing secrets at rest: encrypted with a key from the environment (Fernet).

A stored secret is ``enc:v1:<Fernet token>``. Fernet is AES-128-CBC with an HMAC-SHA256 tag, so
a token that was altered, or encrypted under a key that is not configured, does not decrypt.
``JUISTEPLEK_SECRETS_KEY`` encrypts; it and the keys in ``JUISTEPLEK_SECRETS_OLD_KEYS`` decrypt,
so a key is rotated by moving the current key to the old list, setting a new one and running
``juisteplek webhooks reencrypt`` (docs/webhooks.md). A stored value without the prefix is a
secret written before encryption was introduced: it is used as it is, and ``reencrypt``
encrypts it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEALED_PREFIX = "enc:v1:"
# Development and test only (settings refuse it in production): derived from a public phrase, so
# it protects nothing; it lets the demo run without configuration.
DEVELOPMENT_SECRETS_KEY = base64.urlsafe_b64encode(
    hashlib.sha256(b"juisteplek development secrets key (public; refused in production)").digest()
).decode("ascii")


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with any configured key."""


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a usable encryption key (32 bytes, URL-safe base64), or None."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return "is not URL-safe base64"
    if len(raw) != 32:
        return "must decode to 32 bytes (generate one with `juisteplek webhooks new-key`)"
    return None


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


class SecretBox:
    """Encrypts with the first key; decrypts with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._current = Fernet(keys[0])
        self._all = MultiFernet([Fernet(k) for k in keys])

    def seal(self, plaintext: str) -> str:
        return SEALED_PREFIX + self._current.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored  # written before encryption; `juisteplek webhooks reencrypt` seals it
        try:
            token = stored.removeprefix(SEALED_PREFIX).encode("ascii")
            return self._all.decrypt(token).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable("no configured key decrypts this secret") from exc

    def reseal(self, stored: str) -> str:
        """``stored`` encrypted under the current key (a plaintext legacy value too)."""
        return self.seal(self.open(stored))

    def is_current(self, stored: str) -> bool:
        """True when ``stored`` is encrypted under the current key."""
        if not is_sealed(stored):
            return False
        try:
            self._current.decrypt(stored.removeprefix(SEALED_PREFIX).encode("ascii"))
        except InvalidToken:
            return False
        return True


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)
