"""NEN 7513 access log (docs/domain.md §10.1): each placement route leaves a row; chain verifies."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.audit import service as audit_service
from app.cli import cli
from app.config import get_settings
from app.db import Database
from tests.conftest import auth
from tests.factories import GRZ, Seed, placement_body

Call = Callable[[httpx.AsyncClient, Seed, str], Awaitable[httpx.Response]]


async def _placement(client: httpx.AsyncClient, seed: Seed, *, state: str = "triaged") -> str:
    r = await client.post(
        "/v1/placements", json=placement_body(**GRZ), headers=auth(seed.keys["referrer"])
    )
    pid: str = r.json()["id"]
    unit = {"unit_id": str(seed.units["leiden-grz"])}
    if state in ("offered", "accepted"):
        r = await client.post(
            f"/v1/placements/{pid}/holds", json=unit, headers=auth(seed.keys["triagist"])
        )
        assert r.status_code == 201, r.text
    if state == "accepted":
        r = await client.post(f"/v1/placements/{pid}/accept", headers=auth(seed.keys["provider"]))
        assert r.status_code == 200, r.text
    return pid


# (method, OpenAPI path) -> (placement state needed, key role, request body)
ROUTES: dict[tuple[str, str], tuple[str | None, str, dict[str, Any] | None]] = {
    ("post", "/v1/placements"): (None, "referrer", placement_body()),
    ("get", "/v1/placements"): (None, "triagist", None),
    ("get", "/v1/placements/{placement_id}"): ("triaged", "referrer", None),
    ("post", "/v1/placements/{placement_id}/holds"): ("triaged", "triagist", {"unit_id": ""}),
    ("post", "/v1/placements/{placement_id}/accept"): ("offered", "provider", None),
    ("post", "/v1/placements/{placement_id}/decline"): (
        "offered",
        "provider",
        {"reason": "staff_shortage"},
    ),
    ("post", "/v1/placements/{placement_id}/admit"): ("accepted", "provider", None),
    ("post", "/v1/placements/{placement_id}/cancel"): ("triaged", "referrer", {"reason": "died"}),
    ("post", "/v1/placements/{placement_id}/events"): (
        "triaged",
        "referrer",
        {"type": "hospital_admitted"},
    ),
    ("get", "/v1/placements/{placement_id}/events"): ("triaged", "triagist", None),
    ("get", "/v1/placements/{placement_id}/availability"): ("triaged", "triagist", None),
    ("put", "/v1/placements/{placement_id}/owner"): ("triaged", "triagist", {"action": "take"}),
    ("post", "/v1/placements/{placement_id}/notes"): ("triaged", "triagist", {"text": "n"}),
    ("get", "/v1/placements/{placement_id}/notes"): ("triaged", "referrer", None),
    ("get", "/v1/placements/{placement_id}/history"): ("triaged", "triagist", None),
}


async def _audit_rows(db: Database) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM audit_log ORDER BY id"))).mappings().all()
    return [dict(r) for r in rows]


async def test_every_placement_route_writes_an_audit_row(
    app: FastAPI, client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    paths = app.openapi()["paths"]
    routes = {
        (method, path)
        for path, ops in paths.items()
        if path.startswith("/v1/placements")
        for method in ops
    }
    assert routes == set(ROUTES), "a placement route without an access-log check"
    for (method, path), (state, role, body) in ROUTES.items():
        pid = await _placement(client, seed, state=state) if state else None
        if body is not None and "unit_id" in body:
            body = {"unit_id": str(seed.units["leiden-grz"])}
        url = path.replace("{placement_id}", pid or "")
        if method == "post" and path == "/v1/placements":
            body = placement_body()
        before = len(await _audit_rows(db))
        headers = auth(seed.keys[role]) | {"X-On-Behalf-Of": "dr. J. Jansen (UZI 123)"}
        r = await client.request(method.upper(), url, json=body, headers=headers)
        assert r.status_code < 300, (method, path, r.text)
        rows = (await _audit_rows(db))[before:]
        assert rows, f"{method} {path} left no audit row"
        row = rows[-1]
        assert row["outcome"] == "success"
        assert row["on_behalf_of"] == "dr. J. Jansen (UZI 123)"
        assert row["role"] == role
        assert row["access_point"] == "127.0.0.1"
        assert row["purpose"] == "treatment"
        expected_action = {"get": "R" if "{" in path else "E"}.get(
            method, "C" if path == "/v1/placements" else "U"
        )
        assert row["action"] == expected_action, (method, path)
        if pid is not None:
            assert row["object_id"] == pid
            assert row["patient_key"] is not None
            assert len(row["patient_key"]) == 64

        # The same route refused (analyst: no placement access) is logged as a failure.
        before = len(await _audit_rows(db))
        body2 = placement_body() if path == "/v1/placements" and method == "post" else body
        r = await client.request(
            method.upper(), url, json=body2, headers=auth(seed.keys["analyst"])
        )
        assert r.status_code == 403, (method, path, r.text)
        rows = (await _audit_rows(db))[before:]
        assert len(rows) == 1, (method, path)
        assert rows[0]["outcome"] == "failure"
        assert rows[0]["role"] == "analyst"
        if pid is not None:
            assert rows[0]["object_id"] == pid
            assert rows[0]["patient_key"] is not None
    assert (await audit_service.verify(db)).ok


async def test_audit_endpoint_lists_who_accessed_a_patient(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    created = (
        await client.post(
            "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
        )
    ).json()
    pid, key = created["id"], created["patient_key"]
    await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["triagist"]))
    await client.get(f"/v1/placements/{pid}", headers=auth(seed.other_provider_key))  # 403
    r = await client.get("/v1/audit", params={"patient_key": key}, headers=auth(seed.keys["admin"]))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["event_code"], i["action"], i["outcome"], i["role"]) for i in items] == [
        ("placement.create", "C", "success", "referrer"),
        ("placement.read", "R", "success", "triagist"),
        ("placement.get_placement", "R", "failure", "provider"),
    ]
    assert items[2]["detail"]["status"] == 403
    r = await client.get(
        "/v1/audit", params={"outcome": "failure", "limit": 1}, headers=auth(seed.keys["admin"])
    )
    assert len(r.json()["items"]) == 1
    assert r.json()["next_cursor"] is None
    # Reading the log is logged; non-admins are refused (and that is logged too).
    r = await client.get("/v1/audit", headers=auth(seed.keys["triagist"]))
    assert r.status_code == 403
    r = await client.get("/v1/audit", params={"object_id": pid}, headers=auth(seed.keys["admin"]))
    assert [i["event_code"] for i in r.json()["items"]] == [
        "placement.create",
        "placement.read",
        "placement.get_placement",
    ]
    r = await client.get(
        "/v1/audit", params={"patient_key": "xyz"}, headers=auth(seed.keys["admin"])
    )
    assert r.status_code == 422
    r = await client.get("/v1/audit", params={"cursor": "@@"}, headers=auth(seed.keys["admin"]))
    assert r.status_code == 422


async def _cli_verify(url: str) -> tuple[int, str]:
    def run() -> tuple[int, str]:
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(
                cli, ["audit", "verify"], env={"JUISTEPLEK_DATABASE_URL": url}
            )
        finally:
            get_settings.cache_clear()
        return result.exit_code, result.output

    return await asyncio.to_thread(run)


async def test_chain_verifies_and_detects_tampering(
    client: httpx.AsyncClient, seed: Seed, db: Database, database_url: str
) -> None:
    for _ in range(3):
        pid = (
            await client.post(
                "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
            )
        ).json()["id"]
        await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["referrer"]))
    await client.get("/v1/placements", headers=auth(seed.keys["triagist"]))
    result = await audit_service.verify(db)
    assert result.ok
    assert result.rows == 9  # 3 creates, 3 reads, one search row per listed placement
    code, out = await _cli_verify(database_url)
    assert code == 0, out
    assert "intact: 9 rows" in out

    rows = await _audit_rows(db)
    victim = rows[4]["id"]
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            with pytest.raises(DBAPIError, match="append-only"):
                async with conn.begin_nested():
                    await conn.execute(text("UPDATE audit_log SET role = 'admin'"))
            await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        await conn.execute(
            text("UPDATE audit_log SET user_display = 'someone else' WHERE id = :i"), {"i": victim}
        )
        if db.dialect == "postgresql":
            await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    result = await audit_service.verify(db)
    assert not result.ok
    assert result.first_bad_id == victim
    assert result.problem is not None
    assert "altered" in result.problem
    code, out = await _cli_verify(database_url)
    assert code == 1
    assert f"BROKEN at row {victim}" in out


@pytest.mark.postgres_only
async def test_transfer_log_is_append_only_on_postgresql(
    client: httpx.AsyncClient, seed: Seed, db: Database
) -> None:
    await client.post("/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"]))
    for statement in ("UPDATE transfer_event SET reason = 'x'", "DELETE FROM transfer_event"):
        async with db.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(statement))
