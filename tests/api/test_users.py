"""Personal accounts (/v1/users), GET /v1/me for keys and sessions, create-user, demo users."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from app.auth import users as user_service
from app.auth.models import User, WebSession
from app.cli import cli
from app.config import Settings, get_settings
from app.db import Database
from app.enums import Role
from tests.conftest import auth, unique
from tests.factories import Seed, add_person
from tests.helpers import assert_problem, pointers

ROOT = Path(__file__).resolve().parents[2]
JUISTEPLEK = str(Path(sys.executable).parent / "juisteplek")


def _body(seed: Seed, **over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "Petra Planner",
        "email": f"{unique('petra')}@Topaz.NL",
        "organisation_id": str(seed.organisations["vvt-leiden"]),
        "roles": ["provider"],
        "password": "a long enough password",
    }
    body.update(over)
    return body


async def test_admin_creates_reads_lists_and_updates_a_user_with_etags(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    admin = auth(seed.keys["admin"])
    body = _body(seed)
    r = await client.post("/v1/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["email"] == str(body["email"]).lower()
    assert created["roles"] == ["provider"]
    assert created["totp_enrolled"] is False
    assert "password" not in created
    assert r.headers["location"] == f"/v1/users/{created['id']}"
    assert r.headers["etag"] == '"1"'
    async with db.sessionmaker() as session:
        stored = (
            await session.scalars(select(User).where(User.id == uuid.UUID(created["id"])))
        ).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert "a long enough password" not in stored.password_hash

    # The same email in another case is the same account.
    r = await client.post(
        "/v1/users", json={**body, "email": str(body["email"]).upper()}, headers=admin
    )
    assert pointers(assert_problem(r, 409)) == ["#/email"]

    r = await client.get(f"/v1/users/{created['id']}", headers=admin)
    assert r.status_code == 200
    assert r.json()["name"] == "Petra Planner"
    etag = r.headers["etag"]

    # A session of the person ends when an admin changes the roles.
    user = await user_service.authenticate(
        db, str(body["email"]), "a long enough password", client_address="t", settings=settings
    )
    token = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=True
    )
    r = await client.patch(
        f"/v1/users/{created['id']}",
        json={"roles": ["provider", "analyst"], "name": "Petra P."},
        headers={**admin, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["analyst", "provider"]
    assert r.headers["etag"] == '"2"'
    assert await user_service.resolve_session(db, token, settings=settings) is None
    r = await client.patch(
        f"/v1/users/{created['id']}",
        json={"active": False},
        headers={**admin, "If-Match": etag},
    )
    assert_problem(r, 412, type_slug="precondition-failed")

    for _ in range(3):
        r = await client.post(
            "/v1/users", json=_body(seed, email=f"{unique('x')}@example.nl"), headers=admin
        )
        assert r.status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/users", params=params, headers=admin)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4
    assert len(set(seen)) == 4
    assert seen == sorted(seen)


async def test_users_are_admin_only_and_bad_input_is_a_problem(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    for role in ("provider", "triagist", "referrer", "analyst"):
        r = await client.get("/v1/users", headers=auth(seed.keys[role]))
        assert_problem(r, 403, type_slug="forbidden")
        r = await client.post("/v1/users", json=_body(seed), headers=auth(seed.keys[role]))
        assert_problem(r, 403, type_slug="forbidden")
    admin = auth(seed.keys["admin"])
    r = await client.post("/v1/users", json=_body(seed, password="short"), headers=admin)
    assert pointers(assert_problem(r, 422)) == ["#/password"]
    r = await client.post("/v1/users", json=_body(seed, email="not-an-email"), headers=admin)
    assert pointers(assert_problem(r, 422)) == ["#/email"]
    r = await client.post("/v1/users", json=_body(seed, organisation_id=None), headers=admin)
    assert pointers(assert_problem(r, 422)) == ["#/organisation_id"]
    r = await client.post("/v1/users", json=_body(seed, roles=["wizard"]), headers=admin)
    assert pointers(assert_problem(r, 422)) == ["#/roles/0"]
    r = await client.post("/v1/users", json=_body(seed, name="a\x00b"), headers=admin)
    assert pointers(assert_problem(r, 422)) == ["#/name"]
    r = await client.patch(
        "/v1/users/00000000-0000-0000-0000-000000000001", json={"active": False}, headers=admin
    )
    assert_problem(r, 404)
    created = (await client.post("/v1/users", json=_body(seed), headers=admin)).json()
    r = await client.patch(f"/v1/users/{created['id']}", json={"active": None}, headers=admin)
    assert pointers(assert_problem(r, 422)) == ["#/active"]
    r = await client.get("/v1/users", params={"cursor": "@@"}, headers=admin)
    assert_problem(r, 422)


async def test_me_answers_for_a_key_and_for_a_web_session(
    client: httpx.AsyncClient, seed: Seed, db: Database, settings: Settings
) -> None:
    r = await client.get("/v1/me", headers=auth(seed.keys["provider"]))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["kind"] == "key"
    assert me["email"] is None
    assert me["roles"] == ["provider"]
    assert me["organisation_name"] == "Topaz"
    assert {u["name"] for u in me["units"]} == {"ELV HC Leiden", "GRZ Leiden"}
    assert {u["care_type"] for u in me["units"]} == {"elv_high", "grz"}

    person = await add_person(db, Role.PROVIDER, seed.organisations["vvt-den-haag"], name="Piet")
    async with db.sessionmaker() as session:
        user = await user_service.user_by_email(session, person.email)
    assert user is not None
    token = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=True
    )
    client.cookies.set("jp_session", token)
    r = await client.get("/v1/me")
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["kind"] == "person"
    assert me["id"] == str(person.id)
    assert me["email"] == person.email
    assert me["name"] == "Piet"
    assert me["organisation_name"] == "Florence"
    assert [u["name"] for u in me["units"]] == ["ELV HC Den Haag"]

    # A session still owing its second factor, or none at all, is not a caller.
    pending = await user_service.start_session(
        db, user, client_address=None, settings=settings, second_factor_done=False
    )
    # The session cookie opens /v1/me only: other API routes still want a key.
    assert_problem(await client.get("/v1/users"), 401)
    client.cookies.set("jp_session", pending)
    assert_problem(await client.get("/v1/me"), 401)
    client.cookies.clear()
    assert_problem(await client.get("/v1/me"), 401)


async def test_create_user_command_generates_a_password_shown_once(
    db: Database, seed: Seed, database_url: str, settings: Settings
) -> None:
    def run(*args: str) -> tuple[int, str]:
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(
                cli, ["create-user", *args], env={"JUISTEPLEK_DATABASE_URL": database_url}
            )
        finally:
            get_settings.cache_clear()
        return result.exit_code, result.output

    code, out = await asyncio.to_thread(
        run,
        "--name",
        "Tara Triagist",
        "--email",
        "tara@rap.example",
        "--role",
        "triagist",
        "--organisation",
        str(seed.organisations["rap"]),
    )
    assert code == 0, out
    password = re.search(r"password \(shown once\): (\S+)", out)
    assert password is not None, out
    user = await user_service.authenticate(
        db, "tara@rap.example", password.group(1), client_address="cli", settings=settings
    )
    assert user.name == "Tara Triagist"
    code, out = await asyncio.to_thread(
        run, "--name", "Tara", "--email", "TARA@rap.example", "--role", "admin"
    )
    assert code == 1
    assert "already exists" in out
    code, out = await asyncio.to_thread(
        run, "--name", "X", "--email", "x@y.nl", "--role", "provider", "--password", "short"
    )
    assert code == 1
    assert "at least 10 characters" in out


def test_demo_prints_one_web_user_per_role_that_can_log_in(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    outputs = []
    for _ in range(2):
        outputs.append(
            subprocess.run(
                [JUISTEPLEK, "demo", "--database", str(database), "--no-serve"],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            ).stdout
        )
    users = []
    for out in outputs:
        head, _, block = out.partition("Web users (one per role; new passwords on every start):\n")
        assert "API keys (one per role" in head, out
        lines = re.findall(r"^    (\w+)  (\S+@\S+)  (\S+)$", block, re.MULTILINE)
        assert [role for role, _, _ in lines] == [
            "triagist",
            "provider",
            "referrer",
            "analyst",
            "admin",
        ]
        users.append(lines)
    # New passwords on every start; the old one no longer works, the new one does.
    assert [p for *_, p in users[0]] != [p for *_, p in users[1]]

    async def check() -> None:
        db = Database.from_url(f"sqlite+aiosqlite:///{database}")
        settings = Settings(database_url=f"sqlite+aiosqlite:///{database}")
        try:
            _, email, password = users[1][0]
            user = await user_service.authenticate(
                db, email, password, client_address="a", settings=settings
            )
            assert user.roles == "triagist"
            async with db.sessionmaker() as session:
                assert (await session.scalars(select(WebSession))).all() == []
        finally:
            await db.dispose()

    asyncio.run(check())
