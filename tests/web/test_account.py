"""Second factor (TOTP) enrolment and login, its requirement in production, password change."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.db import Database
from app.enums import Role
from app.main import create_app
from tests.factories import Seed, add_person
from tests.web.helpers import csrf_of, web_login


def _secret(html: str) -> str:
    found = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', html)
    assert found is not None, html[:300]
    return found.group(1)


def _other_code(secret: str) -> str:
    """A code that is wrong now (valid neither for this step nor the ones around it)."""
    now = time.time()
    valid = {pyotp.TOTP(secret).at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in valid)


async def test_enrol_then_every_login_asks_for_the_code(
    client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    person = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    csrf = await web_login(client, person)
    page = await client.get("/ui/account/totp")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert "QR code" in page.text
    secret = _secret(page.text)
    assert _secret((await client.get("/ui/account/totp")).text) == secret  # pending, kept
    r = await client.post(
        "/ui/account/totp", data={"code": _other_code(secret), "csrf_token": csrf}
    )
    assert r.status_code == 422
    assert "Deze code klopt niet" in r.text
    enrol_code = pyotp.TOTP(secret).now()
    r = await client.post("/ui/account/totp", data={"code": enrol_code, "csrf_token": csrf})
    assert r.status_code == 303
    assert "staat al aan" in (await client.get("/ui/account/totp")).text
    assert 'data-testid="totp-secret"' not in (await client.get("/ui/account/totp")).text

    await client.post("/ui/logout", data={"csrf_token": csrf})
    r = await client.post(
        "/ui/login",
        data={"email": person.email, "password": person.password, "csrf_token": csrf},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login/totp"
    # Until the code is given, the session opens nothing.
    assert (await client.get("/")).headers["location"] == "/ui/login/totp"
    r = await client.get("/ui/board")
    assert r.headers["location"] == "/ui/login/totp?next=/ui/board"
    assert (await client.get("/v1/me")).status_code == 401
    r = await client.post("/ui/login/totp", data={"code": _other_code(secret), "csrf_token": csrf})
    assert r.status_code == 401
    # A code counts once: the one that switched the factor on is a replay now.
    r = await client.post("/ui/login/totp", data={"code": enrol_code, "csrf_token": csrf})
    assert r.status_code == 401
    next_code = pyotp.TOTP(secret).at(time.time() + 30)  # the phone's next code
    r = await client.post(
        "/ui/login/totp",
        data={"code": next_code, "csrf_token": csrf, "next": "/ui/account"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/account"
    assert (await client.get("/v1/me")).json()["email"] == person.email


async def test_wrong_codes_end_the_half_open_session(
    client: httpx.AsyncClient, db: Database, seed: Seed, settings: Settings
) -> None:
    person = await add_person(db, Role.REFERRER, seed.organisations["hospital"])
    csrf = await web_login(client, person)
    secret = _secret((await client.get("/ui/account/totp")).text)
    await client.post(
        "/ui/account/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf}
    )
    await client.post("/ui/logout", data={"csrf_token": csrf})
    await client.post(
        "/ui/login",
        data={"email": person.email, "password": person.password, "csrf_token": csrf},
    )
    wrong = _other_code(secret)
    for _ in range(settings.login_max_failures_per_email):
        await client.post("/ui/login/totp", data={"code": wrong, "csrf_token": csrf})
    r = await client.post(
        "/ui/login/totp", data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf}
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/login"  # the session is gone


@pytest.fixture
async def production_client(db: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update={"totp_required": True}), database=db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_where_required_a_reader_of_patient_data_must_enrol_first(
    production_client: httpx.AsyncClient, db: Database, seed: Seed
) -> None:
    client = production_client
    triagist = await add_person(db, Role.TRIAGIST, seed.organisations["rap"])
    csrf = await web_login(client, triagist)
    r = await client.get("/ui/board")
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/account/totp?next=/ui/board"
    page = await client.get(r.headers["location"])
    secret = _secret(page.text)
    r = await client.post(
        "/ui/account/totp",
        data={"code": pyotp.TOTP(secret).now(), "csrf_token": csrf, "next": "/ui/board"},
    )
    assert r.headers["location"] == "/ui/board"
    assert (await client.get("/ui/board")).status_code == 200
    await client.post("/ui/logout", data={"csrf_token": csrf})

    client.cookies.clear()
    provider = await add_person(db, Role.PROVIDER, seed.organisations["vvt-leiden"])
    await web_login(client, provider)
    assert (await client.get("/ui/units")).status_code == 200  # no patient data: not required


async def test_password_change_checks_its_fields_and_ends_other_sessions(
    client: httpx.AsyncClient, db: Database, seed: Seed, app: FastAPI
) -> None:
    person = await add_person(db, Role.ANALYST, seed.organisations["rap"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await web_login(other, person)
        assert (await other.get("/ui/kpis")).status_code == 200
        csrf = await web_login(client, person)
        cases = [
            ({"current_password": "wrong one!!", "new_password": "n" * 12}, "current_password"),
            ({"current_password": person.password, "new_password": "short"}, "new_password"),
            (
                {"current_password": person.password, "new_password": person.password},
                "new_password",
            ),
        ]
        for fields, bad in cases:
            data = {**fields, "repeat_password": fields["new_password"], "csrf_token": csrf}
            r = await client.post("/ui/account/password", data=data)
            assert r.status_code == 422
            assert f'id="{bad}-error"' in r.text
        r = await client.post(
            "/ui/account/password",
            data={
                "current_password": person.password,
                "new_password": "a brand new password",
                "repeat_password": "a brand new passwort",
                "csrf_token": csrf,
            },
        )
        assert 'id="repeat_password-error"' in r.text
        r = await client.post(
            "/ui/account/password",
            data={
                "current_password": person.password,
                "new_password": "a brand new password",
                "repeat_password": "a brand new password",
                "csrf_token": csrf,
            },
        )
        assert r.status_code == 303
        assert "Uw wachtwoord is gewijzigd." in (await client.get(r.headers["location"])).text
        # This browser stays logged in; the other one is logged out.
        assert (await client.get("/ui/kpis")).status_code == 200
        assert (await other.get("/ui/kpis")).status_code == 303
    client.cookies.clear()
    page = await client.get("/ui/login")
    r = await client.post(
        "/ui/login",
        data={
            "email": person.email,
            "password": "a brand new password",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert r.headers["location"] == "/ui/kpis"
