"""People: accounts with argon2 passwords, server-side web sessions and login throttling.

Keys are for machines, users for people (docs/web.md). A session token lives only in the
person's cookie; the database keeps its SHA-256, so a leaked table cannot be replayed.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.auth.models import LoginAttempt, User, WebSession
from app.auth.principal import Principal, format_roles, parse_roles
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.registry.models import Organisation

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a login takes as long for a missing account.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# The last-seen time is written at most this often per session (not on every page load).
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
# Roles that read patient data: a second factor is required for them when TOTP is enforced.
PATIENT_DATA_ROLES = frozenset({Role.TRIAGIST, Role.REFERRER, Role.ADMIN})
MIN_PASSWORD_LENGTH = 10


class LoginRefused(Exception):
    """A login that did not succeed; ``message`` is safe to show (never says which part)."""

    def __init__(self, reason: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_password() -> str:
    """A random password for accounts created without one (shown once)."""
    return secrets.token_urlsafe(12)


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow (tens of ms): off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)


def role_home(roles: frozenset[Role]) -> str:
    """The first page of a person, by role (a person with several gets the first listed)."""
    for role, path in (
        (Role.TRIAGIST, "/ui/board"),
        (Role.PROVIDER, "/ui/units"),
        (Role.REFERRER, "/ui/placements"),
        (Role.ANALYST, "/ui/kpis"),
        (Role.ADMIN, "/ui/admin"),
    ):
        if role in roles:
            return path
    return "/ui/account"


async def add_user(
    session: AsyncSession,
    *,
    name: str,
    email: str,
    organisation_id: uuid.UUID | None,
    roles: frozenset[Role],
    password: str,
    active: bool = True,
) -> User:
    """Insert an account (the caller validates and commits)."""
    user = User(
        name=name,
        email=normalise_email(email),
        organisation_id=organisation_id,
        roles=format_roles(roles),
        active=active,
        password_hash=await hash_password(password),
    )
    session.add(user)
    await session.flush()
    return user


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalise_email(email)))


async def _recent_failures(
    session: AsyncSession, column: InstrumentedAttribute[str], value: str, since: datetime
) -> tuple[int, datetime | None]:
    row = (
        await session.execute(
            select(func.count(), func.min(LoginAttempt.occurred_at)).where(
                column == value,
                LoginAttempt.occurred_at >= since,
                LoginAttempt.succeeded.is_(False),
            )
        )
    ).one()
    return int(row[0]), row[1]


async def authenticate(
    db: Database,
    email: str,
    password: str,
    *,
    client_address: str,
    settings: Settings,
    now: datetime | None = None,
) -> User:
    """Check a login; every attempt is recorded, too many failures refuse even a right one."""
    now = now or utcnow()
    email = normalise_email(email)[:320]
    window = timedelta(minutes=settings.login_window_minutes)
    since = now - window
    async with db.sessionmaker() as session:
        by_email, first_email = await _recent_failures(session, LoginAttempt.email, email, since)
        by_address, first_address = await _recent_failures(
            session, LoginAttempt.client_address, client_address, since
        )
        throttled_since: datetime | None = None
        if by_email >= settings.login_max_failures_per_email:
            throttled_since = first_email
        elif by_address >= settings.login_max_failures_per_address:
            throttled_since = first_address
        user = await user_by_email(session, email)
        ok = False
        if throttled_since is None:
            ok = await verify_password(user.password_hash if user else _DUMMY_HASH, password)
            ok = ok and user is not None and user.active
        session.add(
            LoginAttempt(
                email=email, client_address=client_address[:64], occurred_at=now, succeeded=ok
            )
        )
        await session.commit()
    if throttled_since is not None:
        wait = int((throttled_since + window - now).total_seconds()) + 1
        raise LoginRefused("throttled", retry_after_seconds=max(wait, 1))
    if not ok or user is None:
        raise LoginRefused("invalid")
    return user


def parse_roles_of(user: User) -> frozenset[Role]:
    return parse_roles(user.roles)


def needs_second_factor(user: User) -> bool:
    return user.totp_secret is not None and user.totp_enabled_at is not None


async def start_session(
    db: Database,
    user: User,
    *,
    client_address: str | None,
    settings: Settings,
    second_factor_done: bool,
    now: datetime | None = None,
) -> str:
    """Open a session and return its token (for the cookie; only the hash is stored)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    async with db.sessionmaker() as session:
        session.add(
            WebSession(
                token_hash=hash_token(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=settings.session_absolute_hours),
                second_factor_at=now if second_factor_done else None,
                client_address=None if client_address is None else client_address[:64],
            )
        )
        await session.commit()
    return token


@dataclass(frozen=True, slots=True)
class SessionState:
    """A live session: who it is and whether the second factor is still owed."""

    session_id: uuid.UUID
    principal: Principal
    second_factor_pending: bool
    totp_enrolled: bool


async def resolve_session(
    db: Database, token: str, *, settings: Settings, now: datetime | None = None
) -> SessionState | None:
    """The session of a cookie token, or None when unknown, revoked, expired or idle too long."""
    now = now or utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(
                    WebSession.id,
                    WebSession.last_seen_at,
                    WebSession.expires_at,
                    WebSession.revoked_at,
                    WebSession.second_factor_at,
                    User.id.label("user_id"),
                    User.name,
                    User.email,
                    User.roles,
                    User.active,
                    User.organisation_id,
                    User.totp_enabled_at,
                    Organisation.region_id,
                )
                .join(User, User.id == WebSession.user_id)
                .outerjoin(Organisation, Organisation.id == User.organisation_id)
                .where(WebSession.token_hash == hash_token(token))
            )
        ).first()
    if (
        row is None
        or row.revoked_at is not None
        or not row.active
        or row.expires_at <= now
        or row.last_seen_at + idle <= now
    ):
        return None
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        async with db.sessionmaker() as session:
            await session.execute(
                update(WebSession).where(WebSession.id == row.id).values(last_seen_at=now)
            )
            await session.commit()
    principal = Principal(
        key_id=row.user_id,
        name=row.name,
        roles=parse_roles(row.roles),
        organisation_id=row.organisation_id,
        region_id=row.region_id,
        user_id=row.user_id,
        user_email=row.email,
    )
    return SessionState(
        session_id=row.id,
        principal=principal,
        second_factor_pending=row.second_factor_at is None,
        totp_enrolled=row.totp_enabled_at is not None,
    )


async def end_session(db: Database, token: str, *, now: datetime | None = None) -> None:
    """Revoke the session of ``token`` (logout); unknown tokens are ignored."""
    async with db.sessionmaker() as session:
        await session.execute(
            update(WebSession)
            .where(WebSession.token_hash == hash_token(token), WebSession.revoked_at.is_(None))
            .values(revoked_at=now or utcnow())
        )
        await session.commit()
