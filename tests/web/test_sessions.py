"""Web sessions and login throttling, on both backends (service level: explicit clocks)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from app.auth import users as user_service
from app.auth.idempotency import (
    LOGIN_ATTEMPT_RETENTION,
    SESSION_GRACE,
    PurgedCounts,
    purge_expired_auth_records,
)
from app.auth.models import LoginAttempt, User, WebSession
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from tests.factories import Seed, add_person


async def _user(db: Database, email: str) -> User:
    async with db.sessionmaker() as session:
        user = await user_service.user_by_email(session, email)
    assert user is not None
    return user


async def test_a_session_expires_when_idle_and_at_its_absolute_end(
    db: Database, settings: Settings, seed: Seed
) -> None:
    person = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    user = await _user(db, person.email)
    start = utcnow()
    token = await user_service.start_session(
        db, user, client_address="10.0.0.1", settings=settings, second_factor_done=True, now=start
    )
    idle = timedelta(minutes=settings.session_idle_minutes)
    seen = await user_service.resolve_session(
        db, token, settings=settings, now=start + idle - timedelta(seconds=1)
    )
    assert seen is not None
    assert seen.principal.user_id == user.id
    assert seen.principal.key_id == user.id
    assert seen.principal.roles == frozenset({Role.TRIAGIST})
    assert seen.principal.region_id == seed.region_id
    # That visit moved last_seen, so the idle limit counts from it...
    later = start + idle - timedelta(seconds=1) + idle - timedelta(seconds=2)
    assert await user_service.resolve_session(db, token, settings=settings, now=later) is not None
    # ...and a visit after a longer pause finds the session gone.
    gone = later + idle + timedelta(seconds=1)
    assert await user_service.resolve_session(db, token, settings=settings, now=gone) is None

    token = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=True, now=start
    )
    absolute = start + timedelta(hours=settings.session_absolute_hours)
    at = start
    while at + idle / 2 < absolute:
        at += idle / 2
        assert await user_service.resolve_session(db, token, settings=settings, now=at) is not None
    assert (
        await user_service.resolve_session(
            db, token, settings=settings, now=absolute + timedelta(seconds=1)
        )
        is None
    )


async def test_the_token_is_stored_only_as_its_hash_and_logout_revokes_it(
    db: Database, settings: Settings, seed: Seed
) -> None:
    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    user = await _user(db, person.email)
    token = await user_service.start_session(
        db, user, client_address="10.0.0.2", settings=settings, second_factor_done=True
    )
    async with db.sessionmaker() as session:
        row = (await session.scalars(select(WebSession))).one()
    assert row.token_hash == user_service.hash_token(token)
    assert token not in (row.token_hash, str(row.id))
    await user_service.end_session(db, token)
    assert await user_service.resolve_session(db, token, settings=settings) is None


async def test_a_deactivated_person_loses_the_session_and_cannot_log_in(
    db: Database, settings: Settings, seed: Seed
) -> None:
    person = await add_person(db, Role.REFERRER, seed.organisations["hospital"])
    user = await user_service.authenticate(
        db, person.email.upper(), person.password, client_address="10.0.0.3", settings=settings
    )
    token = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=True
    )
    async with db.sessionmaker() as session:
        await session.execute(update(User).where(User.id == user.id).values(active=False))
        await session.commit()
    assert await user_service.resolve_session(db, token, settings=settings) is None
    with pytest.raises(user_service.LoginRefused) as refused:
        await user_service.authenticate(
            db, person.email, person.password, client_address="10.0.0.3", settings=settings
        )
    assert refused.value.reason == "invalid"


async def test_login_is_throttled_per_email_and_per_client_address(
    db: Database, settings: Settings, seed: Seed
) -> None:
    tight = settings.model_copy(
        update={"login_max_failures_per_email": 3, "login_max_failures_per_address": 5}
    )
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    now = utcnow()
    for i in range(3):
        with pytest.raises(user_service.LoginRefused) as refused:
            await user_service.authenticate(
                db, person.email, "wrong", client_address="10.1.1.1", settings=tight, now=now
            )
        assert refused.value.reason == "invalid", i
    # From another address too: the account is protected, whoever tries.
    with pytest.raises(user_service.LoginRefused) as refused:
        await user_service.authenticate(
            db, person.email, person.password, client_address="10.9.9.9", settings=tight, now=now
        )
    assert refused.value.reason == "throttled"
    window = timedelta(minutes=tight.login_window_minutes)
    assert refused.value.retry_after_seconds is not None
    assert 0 < refused.value.retry_after_seconds <= window.total_seconds() + 1
    # Once the window has passed the right password works again.
    user = await user_service.authenticate(
        db,
        person.email,
        person.password,
        client_address="10.9.9.9",
        settings=tight,
        now=now + window + timedelta(seconds=1),
    )
    assert user.id == person.id

    # One address guessing many accounts is stopped after its own limit.
    other = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    for i in range(5):
        with pytest.raises(user_service.LoginRefused):
            await user_service.authenticate(
                db, f"guess{i}@example.nl", "x", client_address="10.2.2.2", settings=tight, now=now
            )
    with pytest.raises(user_service.LoginRefused) as refused:
        await user_service.authenticate(
            db, other.email, other.password, client_address="10.2.2.2", settings=tight, now=now
        )
    assert refused.value.reason == "throttled"


async def test_ended_sessions_and_old_login_attempts_are_purged(
    db: Database, settings: Settings, seed: Seed
) -> None:
    person = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    user = await _user(db, person.email)
    start = utcnow()
    live = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=True, now=start
    )
    ended = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=True, now=start
    )
    await user_service.end_session(db, ended)
    with pytest.raises(user_service.LoginRefused):
        await user_service.authenticate(
            db, person.email, "wrong", client_address="10.2.2.2", settings=settings, now=start
        )

    def counts(purged: PurgedCounts) -> tuple[int, int, int]:
        return purged.idempotency_records, purged.web_sessions, purged.login_attempts

    retention = timedelta(hours=settings.idempotency_retention_hours)
    # Within a day of the logout nothing goes: an admin may still look into it.
    soon = start + timedelta(hours=1)
    purged = await purge_expired_auth_records(db, now=soon, idempotency_retention=retention)
    assert counts(purged) == (0, 0, 0)
    assert not purged.any
    # After the grace day the ended session goes, the live one (not yet expired) stays.
    day = soon + SESSION_GRACE
    purged = await purge_expired_auth_records(db, now=day, idempotency_retention=retention)
    assert counts(purged) == (0, 1, 0)
    async with db.sessionmaker() as session:
        left = (await session.scalars(select(WebSession.token_hash))).all()
    assert left == [user_service.hash_token(live)]
    # A month on, the expired session and the failed attempt are gone too.
    month = start + LOGIN_ATTEMPT_RETENTION + timedelta(minutes=1)
    purged = await purge_expired_auth_records(db, now=month, idempotency_retention=retention)
    assert counts(purged) == (0, 1, 1)
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(WebSession))).all() == []
        assert (await session.scalars(select(LoginAttempt))).all() == []


async def test_a_second_factor_code_counts_once(
    db: Database, settings: Settings, seed: Seed
) -> None:
    person = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    user = await _user(db, person.email)
    secret, active = await user_service.begin_totp_enrolment(db, user.id)
    assert not active
    totp = pyotp.TOTP(secret)
    now = utcnow()
    assert await user_service.confirm_totp_enrolment(db, user.id, totp.at(now), now=now)

    async def check(code: str, at: datetime) -> bool:
        session_token = await user_service.start_session(
            db, user, client_address=None, settings=settings, second_factor_done=False, now=at
        )
        async with db.sessionmaker() as session:
            row = await session.scalar(
                select(WebSession).where(
                    WebSession.token_hash == user_service.hash_token(session_token)
                )
            )
        assert row is not None
        return await user_service.verify_second_factor(
            db, row.id, code, client_address="10.3.3.3", settings=settings, now=at
        )

    later = now + timedelta(seconds=30)
    assert not await check(totp.at(now), now)  # the enrolment's code, replayed
    assert await check(totp.at(later), later)  # the next step's code
    assert not await check(totp.at(later), later)  # ... once
    assert not await check(totp.at(now), later)  # an older code after a newer one
    # Two logins racing with one fresh code: exactly one passes.
    fresh = later + timedelta(seconds=30)
    results = await asyncio.gather(*(check(totp.at(fresh), fresh) for _ in range(2)))
    assert results.count(True) == 1
