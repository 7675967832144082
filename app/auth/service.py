"""Issue, revoke and resolve API keys; bootstrap the admin key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiKey
from app.auth.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyRead
from app.db import Database, utcnow
from app.enums import Role
from app.errors import InvalidInput, NotFound, Unauthenticated
from app.principal import Principal, format_roles, generate_key, hash_key, parse_roles
from app.registry.models import Organisation


def key_read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        organisation_id=key.organisation_id,
        roles=sorted(parse_roles(key.roles)),
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


async def issue_key(
    session: AsyncSession,
    body: ApiKeyCreate,
    *,
    created_by: uuid.UUID | None = None,
    plaintext: str | None = None,
) -> ApiKeyIssued:
    """Create a key; the plaintext is returned once and only its hash is kept."""
    roles = frozenset(body.roles)
    if body.organisation_id is None and roles != {Role.ADMIN}:
        raise InvalidInput(
            "A key with roles other than admin must belong to an organisation.",
            errors=[{"pointer": "#/organisation_id", "detail": "required for these roles"}],
        )
    if (
        body.organisation_id is not None
        and await session.get(Organisation, body.organisation_id) is None
    ):
        raise InvalidInput(
            "Unknown organisation.",
            errors=[{"pointer": "#/organisation_id", "detail": "no such organisation"}],
        )
    generated, prefix, digest = generate_key()
    if plaintext is not None:
        generated, digest = plaintext, hash_key(plaintext)
        prefix = plaintext.split("_")[1] if plaintext.count("_") >= 2 else plaintext[:8]
    key = ApiKey(
        organisation_id=body.organisation_id,
        name=body.name,
        roles=format_roles(roles),
        key_hash=digest,
        prefix=prefix[:16],
        created_by_key_id=created_by,
    )
    session.add(key)
    await session.flush()
    return ApiKeyIssued(**key_read(key).model_dump(), key=generated)


async def list_keys(
    session: AsyncSession, principal: Principal, *, include_revoked: bool = True, limit: int = 500
) -> list[ApiKeyRead]:
    """Keys for the administrator's console, newest first (only prefixes: keys are hashes)."""
    principal.require(Role.ADMIN)
    stmt = select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    rows = await session.scalars(stmt.order_by(ApiKey.created_at.desc(), ApiKey.id).limit(limit))
    return [key_read(k) for k in rows]


async def revoke_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKeyRead:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    await session.flush()
    return key_read(key)


async def ensure_admin_key(db: Database, plaintext: str) -> None:
    """Make sure ``plaintext`` works as an admin key (JUISTEPLEK_ADMIN_KEY bootstrap)."""
    digest = hash_key(plaintext)
    async with db.sessionmaker() as session:
        existing = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        if existing is not None:
            if existing.revoked_at is None:
                return
            raise RuntimeError("JUISTEPLEK_ADMIN_KEY names a revoked key; set a new one")
        await issue_key(
            session,
            ApiKeyCreate(name="bootstrap admin", roles=[Role.ADMIN]),
            plaintext=plaintext,
        )
        await session.commit()


@dataclass
class KeyResolver:
    """Bearer key -> Principal, cached briefly so the hot path skips a query per request.

    A revocation takes effect here at once and on other instances within ``ttl`` seconds.
    """

    db: Database
    ttl: float = 10.0
    _cache: dict[str, tuple[float, Principal]] = field(default_factory=dict)

    def forget(self) -> None:
        self._cache.clear()

    async def resolve(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("Send an API key as 'Authorization: Bearer <key>'.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("The Authorization header must be 'Bearer <key>'.")
        digest = hash_key(token.strip())
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        ApiKey.id,
                        ApiKey.name,
                        ApiKey.roles,
                        ApiKey.organisation_id,
                        ApiKey.revoked_at,
                        Organisation.region_id,
                    )
                    .outerjoin(Organisation, Organisation.id == ApiKey.organisation_id)
                    .where(ApiKey.key_hash == digest)
                )
            ).first()
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("The API key is unknown or revoked.")
        principal = Principal(
            key_id=row.id,
            name=row.name,
            roles=parse_roles(row.roles),
            organisation_id=row.organisation_id,
            region_id=row.region_id,
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl, principal)
        return principal


async def revoked_key_ids(db: Database, key_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``key_ids`` are revoked (or gone): open streams of these keys must end."""
    wanted = list(key_ids)
    alive: set[uuid.UUID] = set()
    async with db.read() as conn:
        for start in range(0, len(wanted), 1_000):
            chunk = wanted[start : start + 1_000]
            rows = await conn.execute(
                select(ApiKey.id).where(ApiKey.id.in_(chunk), ApiKey.revoked_at.is_(None))
            )
            alive.update(rows.scalars())
    return set(wanted) - alive
