"""Who is calling: the resolved API key with its roles and organisation (pure data and checks)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from app.enums import Role
from app.errors import Forbidden

KEY_PREFIX = "jp"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    name: str
    roles: frozenset[Role]
    organisation_id: uuid.UUID | None
    region_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    def require(self, *roles: Role) -> None:
        """Raise 403 unless the key has one of ``roles`` (admin passes every role check)."""
        if self.is_admin or self.roles.intersection(roles):
            return
        wanted = ", ".join(sorted(r.value for r in roles))
        raise Forbidden(f"This action needs one of the roles: {wanted}.")

    def require_organisation(self, organisation_id: uuid.UUID, what: str) -> None:
        """Raise 403 unless the key belongs to ``organisation_id`` (or is an admin key)."""
        if self.is_admin or self.organisation_id == organisation_id:
            return
        raise Forbidden(f"This key's organisation may not change {what} of another organisation.")


def generate_key() -> tuple[str, str, str]:
    """A new key as (plaintext, display prefix, SHA-256 hex). 32 random bytes need no slow hash."""
    prefix = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return plaintext, prefix, hash_key(plaintext)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def parse_roles(text: str) -> frozenset[Role]:
    return frozenset(Role(r) for r in text.split(",") if r)


def format_roles(roles: frozenset[Role] | set[Role] | list[Role]) -> str:
    return ",".join(sorted(r.value for r in roles))
