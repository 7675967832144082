"""Who is calling: an API key or a logged-in person, with roles and organisation (pure data)."""

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
    """The caller. For a machine ``key_id`` is its API key; for a person logged in to the web
    app ``key_id`` is the person's user id (``user_id`` is set too), so the access log, the
    transfer log and every ``*_key_id`` actor column name the person."""

    key_id: uuid.UUID
    name: str
    roles: frozenset[Role]
    organisation_id: uuid.UUID | None
    region_id: uuid.UUID | None
    user_id: uuid.UUID | None = None
    user_email: str | None = None

    @property
    def is_person(self) -> bool:
        return self.user_id is not None

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
        who = "person's" if self.is_person else "key's"
        raise Forbidden(f"This {who} organisation may not change {what} of another organisation.")


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
