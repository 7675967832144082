"""People: accounts with argon2 passwords, server-side web sessions and login throttling.

Keys are for machines, users for people (docs/web.md). A session token lives only in the
person's cookie; the database keeps its SHA-256, so a leaked table cannot be replayed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import CursorResult, Select, Table, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.auth.models import ApiKey, LoginAttempt, User, WebSession
from app.auth.schemas import MeRead, MeUnit, UserCreate, UserRead, UserUpdate
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType, Role
from app.errors import Conflict, InvalidInput, NotFound
from app.etag import check_if_match
from app.pagination import fetch_page
from app.principal import Principal, format_roles, parse_roles
from app.registry.models import Location, Organisation, Unit

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a login takes as long for a missing account.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# The last-seen time is written at most this often per session (not on every page load).
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
# Roles that read patient data: a second factor is required for them when TOTP is enforced.
PATIENT_DATA_ROLES = frozenset({Role.TRIAGIST, Role.REFERRER, Role.ADMIN})
MIN_PASSWORD_LENGTH = 10
SESSION_COOKIE = "jp_session"


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


async def reset_password(session: AsyncSession, user: User, password: str) -> None:
    """Set a new password (and end the person's sessions); the caller commits."""
    now = utcnow()
    user.password_hash = await hash_password(password)
    user.password_changed_at = now
    user.updated_at = now
    await _revoke_sessions(session, user.id, now)
    await session.flush()


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
    organisation_name: str | None = None


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
                    Organisation.name.label("organisation_name"),
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
        organisation_name=row.organisation_name,
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


# --- administration (/v1/users, juisteplek create-user) ---------------------------------------


def user_read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        name=user.name,
        email=user.email,
        organisation_id=user.organisation_id,
        roles=sorted(parse_roles(user.roles)),
        active=user.active,
        totp_enrolled=user.totp_enabled_at is not None,
        version=user.version,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


async def _check_organisation(
    session: AsyncSession, organisation_id: uuid.UUID | None, roles: frozenset[Role]
) -> None:
    if organisation_id is None:
        if roles != {Role.ADMIN}:
            raise InvalidInput(
                "A person with roles other than admin must belong to an organisation.",
                errors=[{"pointer": "#/organisation_id", "detail": "required for these roles"}],
            )
        return
    if await session.get(Organisation, organisation_id) is None:
        raise InvalidInput(
            "Unknown organisation.",
            errors=[{"pointer": "#/organisation_id", "detail": "no such organisation"}],
        )


async def create_user(session: AsyncSession, principal: Principal, body: UserCreate) -> UserRead:
    """Create a personal account (admin). The email is unique, case-insensitively."""
    principal.require(Role.ADMIN)
    roles = frozenset(body.roles)
    await _check_organisation(session, body.organisation_id, roles)
    if await user_by_email(session, body.email) is not None:
        raise Conflict(
            f"A user with the email {body.email} already exists.",
            errors=[{"pointer": "#/email", "detail": "already in use"}],
        )
    try:
        async with session.begin_nested():
            user = await add_user(
                session,
                name=body.name,
                email=body.email,
                organisation_id=body.organisation_id,
                roles=roles,
                password=body.password,
                active=body.active,
            )
    except IntegrityError as exc:  # a concurrent create with the same email won
        raise Conflict(
            f"A user with the email {body.email} already exists.",
            errors=[{"pointer": "#/email", "detail": "already in use"}],
        ) from exc
    return user_read(user)


async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


async def get_user(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> UserRead:
    principal.require(Role.ADMIN)
    return user_read(await _user(session, user_id))


async def list_users(
    session: AsyncSession,
    principal: Principal,
    *,
    cursor: str | None,
    limit: int,
    organisation_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> tuple[list[UserRead], str | None]:
    principal.require(Role.ADMIN)
    stmt: Select[Any] = select(User)
    if organisation_id is not None:
        stmt = stmt.where(User.organisation_id == organisation_id)
    if active is not None:
        stmt = stmt.where(User.active == active)
    rows, nxt = await fetch_page(session, stmt, User.id, cursor, limit)
    return [user_read(r[0]) for r in rows], nxt


async def _revoke_sessions(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def update_user(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    body: UserUpdate,
    if_match: str | None,
) -> UserRead:
    """Change an account (admin). Deactivating it, or a new password, ends its sessions."""
    principal.require(Role.ADMIN)
    user = await _user(session, user_id)
    check_if_match(if_match, user.version)
    changes = body.model_dump(exclude_unset=True)
    for field_name in ("name", "roles", "active", "password", "reset_totp"):
        if field_name in changes and changes[field_name] is None:
            raise InvalidInput(
                f"{field_name} cannot be null.",
                errors=[{"pointer": f"#/{field_name}", "detail": "must not be null"}],
            )
    roles = frozenset(body.roles) if body.roles is not None else parse_roles(user.roles)
    organisation_id = changes.get("organisation_id", user.organisation_id)
    if "roles" in changes or "organisation_id" in changes:
        await _check_organisation(session, organisation_id, roles)
    now = utcnow()
    end_sessions = False
    if body.name is not None:
        user.name = body.name
    user.organisation_id = organisation_id
    user.roles = format_roles(roles)
    if body.active is not None:
        end_sessions = end_sessions or (user.active and not body.active)
        user.active = body.active
    if body.password is not None:
        user.password_hash = await hash_password(body.password)
        user.password_changed_at = now
        end_sessions = True
    if body.reset_totp:
        user.totp_secret = None
        user.totp_enabled_at = None
        user.totp_last_step = None
    user.updated_at = now
    if end_sessions or "roles" in changes or "organisation_id" in changes:
        await _revoke_sessions(session, user.id, now)
    await session.flush()
    return user_read(user)


async def who_am_i(session: AsyncSession, principal: Principal) -> MeRead:
    """``GET /v1/me``: the person or key, its organisation and roles, a provider's units."""
    org = (
        None
        if principal.organisation_id is None
        else await session.get(Organisation, principal.organisation_id)
    )
    units: list[MeUnit] = []
    if Role.PROVIDER in principal.roles and principal.organisation_id is not None:
        rows = (
            await session.execute(
                select(Unit.id, Unit.name, Unit.care_type)
                .join(Location, Location.id == Unit.location_id)
                .where(Location.organisation_id == principal.organisation_id, Unit.active.is_(True))
                .order_by(Unit.name, Unit.id)
            )
        ).all()
        units = [MeUnit(id=r.id, name=r.name, care_type=CareType(r.care_type)) for r in rows]
    return MeRead(
        kind="person" if principal.is_person else "key",
        id=principal.key_id,
        name=principal.name,
        email=principal.user_email,
        organisation_id=principal.organisation_id,
        organisation_name=None if org is None else org.name,
        region_id=principal.region_id,
        roles=sorted(principal.roles),
        units=units,
    )


async def actor_names(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of the persons and keys behind actor ids (a report's ``reported_by``)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    names: dict[uuid.UUID, str] = dict(
        (await session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(wanted)))).all()
    )
    names.update(
        (await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))).all()
    )
    return names


# --- second factor (TOTP) and password change -------------------------------------------------

TOTP_ISSUER = "JuistePlek"


def totp_required_for(roles: frozenset[Role], settings: Settings) -> bool:
    """Whether these roles must use a second factor here (production: roles that read patient
    data)."""
    return settings.require_totp and bool(roles & PATIENT_DATA_ROLES)


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def _code_step(secret: str, code: str, now: datetime) -> int | None:
    """The 30-second time step whose code ``code`` is, if any."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    # One step either side: a phone clock a little off, or a code typed as it changed.
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


async def _use_code(session: AsyncSession, user: User, code: str, now: datetime) -> bool:
    """Accept ``code`` for the person's secret once: a code of a step at or before the last
    accepted one (a replay, or an older code) is refused. The step moves in one conditional
    UPDATE, so two requests with the same code cannot both pass."""
    if user.totp_secret is None:
        return False
    step = _code_step(user.totp_secret, code, now)
    if step is None:
        return False
    table = cast(Table, User.__table__)
    moved = await session.execute(
        update(table)
        .where(
            table.c.id == user.id,
            or_(table.c.totp_last_step.is_(None), table.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return cast(CursorResult[Any], moved).rowcount == 1


async def begin_totp_enrolment(db: Database, user_id: uuid.UUID) -> tuple[str, bool]:
    """The secret to enrol (kept pending until a code confirms it) and whether one is already
    active (then nothing changes)."""
    async with db.sessionmaker() as session:
        user = await _user(session, user_id)
        if user.totp_enabled_at is not None and user.totp_secret is not None:
            return user.totp_secret, True
        if user.totp_secret is None:
            user.totp_secret = pyotp.random_base32()
            await session.commit()
        return user.totp_secret, False


async def confirm_totp_enrolment(
    db: Database, user_id: uuid.UUID, code: str, *, now: datetime | None = None
) -> bool:
    """Switch the pending secret on when ``code`` matches it."""
    now = now or utcnow()
    async with db.sessionmaker() as session:
        user = await _user(session, user_id)
        if not await _use_code(session, user, code, now):
            return False
        user.totp_enabled_at = now
        user.updated_at = now
        await session.commit()
    return True


async def verify_second_factor(
    db: Database,
    session_id: uuid.UUID,
    code: str,
    *,
    client_address: str,
    settings: Settings,
    now: datetime | None = None,
) -> bool:
    """Check the TOTP code owed by a fresh session; failures count towards login throttling and
    too many end the session."""
    now = now or utcnow()
    since = now - timedelta(minutes=settings.login_window_minutes)
    async with db.sessionmaker() as session:
        web_session = await session.get(WebSession, session_id)
        if web_session is None or web_session.revoked_at is not None:
            return False
        user = await _user(session, web_session.user_id)
        failures, _ = await _recent_failures(session, LoginAttempt.email, user.email, since)
        ok = failures < settings.login_max_failures_per_email and await _use_code(
            session, user, code, now
        )
        session.add(
            LoginAttempt(
                email=user.email, client_address=client_address[:64], occurred_at=now, succeeded=ok
            )
        )
        if ok:
            web_session.second_factor_at = now
        elif failures + 1 >= settings.login_max_failures_per_email:
            web_session.revoked_at = now
        await session.commit()
    return ok


async def change_password(
    db: Database,
    user_id: uuid.UUID,
    current: str,
    new: str,
    *,
    keep_session_id: uuid.UUID | None,
) -> dict[str, str]:
    """Change one's own password: error codes for "current" and "new", empty on success.
    Every other session of the person ends."""
    errors: dict[str, str] = {}
    if len(new) < MIN_PASSWORD_LENGTH:
        errors["new"] = "too_short"
    async with db.sessionmaker() as session:
        user = await _user(session, user_id)
        if not await verify_password(user.password_hash, current):
            errors["current"] = "wrong"
        elif new == current:
            errors["new"] = "unchanged"
        if errors:
            return errors
        now = utcnow()
        user.password_hash = await hash_password(new)
        user.password_changed_at = now
        user.updated_at = now
        await session.execute(
            update(WebSession)
            .where(
                WebSession.user_id == user_id,
                WebSession.revoked_at.is_(None),
                WebSession.id != keep_session_id,
            )
            .values(revoked_at=now)
        )
        await session.commit()
    return {}
