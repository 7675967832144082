"""The access log is tamper-evident end to end (docs/audit.md): ``juisteplek audit verify``
names the first bad position after a removed tail, a deleted middle row, a rewritten and
re-chained row, a reordering, or a truncation; and says "intact" on an untouched log.

The attacker here has full write access to the database (a superuser session with triggers
off), but not the signing key, which the service and the verifier read from the environment.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.audit.chain import row_hash, row_mac
from app.audit.service import DEVELOPMENT_SIGNING_KEY
from app.cli import cli
from app.config import get_settings
from app.db import Database
from tests.conftest import auth
from tests.factories import Seed, placement_body

KEY = "test-audit-signing-key-" + "k" * 24


@pytest.fixture(autouse=True)
def signing_key(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("JUISTEPLEK_AUDIT_SIGNING_KEY", KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _cli(url: str, *args: str) -> tuple[int, str]:
    def run() -> tuple[int, str]:
        get_settings.cache_clear()
        env = {"JUISTEPLEK_DATABASE_URL": url, "JUISTEPLEK_AUDIT_SIGNING_KEY": KEY}
        result = CliRunner().invoke(cli, ["audit", "verify", *args], env=env)
        get_settings.cache_clear()
        return result.exit_code, result.output

    return await asyncio.to_thread(run)


async def _rows(db: Database, where: str = "1 = 1") -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT * FROM audit_log WHERE {where} ORDER BY id"))
        return [dict(r) for r in rows.mappings()]


async def _tamper(db: Database, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run ``statements`` as an attacker with write access: triggers off on PostgreSQL."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for sql, params in statements:
            await conn.execute(text(sql), params)


@pytest.fixture
async def log(client: httpx.AsyncClient, seed: Seed) -> list[str]:
    """Three placements, each a chain of 4 rows: create, two reads, a search."""
    chains = []
    for _ in range(3):
        r = await client.post(
            "/v1/placements", json=placement_body(), headers=auth(seed.keys["referrer"])
        )
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        for _ in range(2):
            r = await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["referrer"]))
            assert r.status_code == 200
        chains.append(f"placement:{pid}")
    r = await client.get("/v1/placements", headers=auth(seed.keys["triagist"]))
    assert r.status_code == 200
    return chains


def _broken(out: str, row: int | None, chain: str, position: int) -> None:
    assert "BROKEN" in out, out
    if row is not None:
        assert f"at row {row} " in out, out
    assert f"(chain {chain}, position {position})" in out, out


async def test_untouched_log_is_intact_and_a_checkpoint_is_signed(
    log: list[str], db: Database, database_url: str
) -> None:
    code, out = await _cli(database_url)
    assert code == 0, out
    assert "audit log intact: 12 rows in 3 chains" in out
    assert "signed checkpoint #1 of 3 chain heads" in out
    assert "development key" not in out
    code, out = await _cli(database_url)
    assert code == 0, out
    assert "1 signed checkpoints, 0 rows after the latest checkpoint" in out


async def test_removed_tail_is_reported(log: list[str], db: Database, database_url: str) -> None:
    chain = log[1]
    rows = await _rows(db, f"chain = '{chain}'")
    await _tamper(db, ("DELETE FROM audit_log WHERE chain = :c AND chain_seq >= 3", {"c": chain}))
    code, out = await _cli(database_url)
    assert code == 1, out
    _broken(out, rows[1]["id"], chain, 3)
    assert "positions 3..4 missing at the end of the chain (tail removed)" in out


async def test_removed_tail_with_the_head_rewound_is_caught_by_the_checkpoint(
    log: list[str], db: Database, database_url: str
) -> None:
    code, out = await _cli(database_url)  # signs checkpoint #1
    assert code == 0, out
    chain = log[2]
    rows = await _rows(db, f"chain = '{chain}'")
    await _tamper(
        db,
        ("DELETE FROM audit_log WHERE id = :i", {"i": rows[-1]["id"]}),
        (
            "UPDATE audit_chain_head SET seq = 3, hash = :h, checkpointed_seq = 3 WHERE chain = :c",
            {"h": rows[2]["hash"], "c": chain},
        ),
    )
    code, out = await _cli(database_url)
    assert code == 1, out
    _broken(out, rows[2]["id"], chain, 4)
    assert "position 4, signed by checkpoint #1, is missing (tail removed)" in out


async def test_deleted_middle_row_is_reported(
    log: list[str], db: Database, database_url: str
) -> None:
    chain = log[0]
    rows = await _rows(db, f"chain = '{chain}'")
    await _tamper(db, ("DELETE FROM audit_log WHERE id = :i", {"i": rows[1]["id"]}))
    code, out = await _cli(database_url)
    assert code == 1, out
    _broken(out, rows[2]["id"], chain, 2)
    assert "position 2 missing" in out


@pytest.mark.parametrize("attacker_key", ["none", "development", "guessed"])
async def test_rewritten_and_rechained_row_is_reported(
    log: list[str], db: Database, database_url: str, attacker_key: str
) -> None:
    """The row is altered, every later hash recomputed, the head set to the new last hash."""
    chain = log[1]
    rows = await _rows(db, f"chain = '{chain}'")
    rows[1]["user_display"] = "someone else"
    prev = rows[0]["hash"]
    statements: list[tuple[str, dict[str, Any]]] = []
    for row in rows[1:]:
        if attacker_key == "none":
            new = row_hash(prev, row)
        else:
            key = DEVELOPMENT_SIGNING_KEY if attacker_key == "development" else b"guess" * 8
            new = row_mac(
                key, row_id=row["id"], chain=chain, seq=row["chain_seq"], prev=prev, row=row
            )
        statements.append(
            (
                "UPDATE audit_log SET user_display = :u, prev_hash = :p, hash = :h WHERE id = :i",
                {"u": row["user_display"], "p": prev, "h": new, "i": row["id"]},
            )
        )
        prev = new
    statements.append(
        ("UPDATE audit_chain_head SET hash = :h WHERE chain = :c", {"h": prev, "c": chain})
    )
    await _tamper(db, *statements)
    code, out = await _cli(database_url)
    assert code == 1, out
    _broken(out, rows[1]["id"], chain, 2)
    assert "hash does not match the row" in out


async def test_reordered_rows_are_reported(log: list[str], db: Database, database_url: str) -> None:
    """Two neighbouring rows of the log (different chains) swap ids: the order of the log."""
    rows = await _rows(db)
    a, b = rows[2], rows[3]
    assert a["chain"] != b["chain"]
    await _tamper(
        db,
        ("UPDATE audit_log SET id = -1 WHERE id = :a", {"a": a["id"]}),
        ("UPDATE audit_log SET id = :a WHERE id = :b", {"a": a["id"], "b": b["id"]}),
        ("UPDATE audit_log SET id = :b WHERE id = -1", {"b": b["id"]}),
    )
    code, out = await _cli(database_url)
    assert code == 1, out
    assert f"BROKEN at row {a['id']} " in out, out
    assert "hash does not match the row" in out


async def test_rows_swapped_within_a_chain_are_reported(
    log: list[str], db: Database, database_url: str
) -> None:
    chain = log[0]
    rows = await _rows(db, f"chain = '{chain}'")
    await _tamper(
        db,
        ("UPDATE audit_log SET chain_seq = -1 WHERE id = :i", {"i": rows[1]["id"]}),
        ("UPDATE audit_log SET chain_seq = 2 WHERE id = :i", {"i": rows[2]["id"]}),
        ("UPDATE audit_log SET chain_seq = 3 WHERE id = :i", {"i": rows[1]["id"]}),
    )
    code, out = await _cli(database_url)
    assert code == 1, out
    _broken(out, rows[2]["id"], chain, 2)


async def test_truncated_log_is_reported_after_a_checkpoint(
    log: list[str], db: Database, database_url: str
) -> None:
    code, out = await _cli(database_url)
    assert code == 0, out
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="TRUNCATE refused"):
                await conn.execute(text("TRUNCATE audit_log"))
    await _tamper(
        db,
        ("DELETE FROM audit_log", {}),
        ("DELETE FROM audit_chain_head", {}),
    )
    code, out = await _cli(database_url)
    assert code == 1, out
    assert "signed by checkpoint #1, is missing (tail removed)" in out, out


async def test_an_altered_checkpoint_is_reported(
    log: list[str], db: Database, database_url: str
) -> None:
    code, out = await _cli(database_url)
    assert code == 0, out
    await _tamper(db, ("UPDATE audit_checkpoint_head SET seq = 1", {}))
    code, out = await _cli(database_url)
    assert code == 1, out
    assert "checkpoint #1 does not verify (altered)" in out


async def test_a_log_signed_with_another_key_is_reported(
    log: list[str], db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verifying with the wrong key fails; with the old key listed as previous, it passes."""

    def run(env: dict[str, str]) -> tuple[int, str]:
        get_settings.cache_clear()
        result = CliRunner().invoke(
            cli,
            ["audit", "verify", "--no-checkpoint"],
            env={"JUISTEPLEK_DATABASE_URL": database_url, **env},
        )
        get_settings.cache_clear()
        return result.exit_code, result.output

    other = "another-key-" + uuid.uuid4().hex
    code, out = await asyncio.to_thread(run, {"JUISTEPLEK_AUDIT_SIGNING_KEY": other})
    assert code == 1, out
    code, out = await asyncio.to_thread(
        run,
        {"JUISTEPLEK_AUDIT_SIGNING_KEY": other, "JUISTEPLEK_AUDIT_PREVIOUS_SIGNING_KEYS": KEY},
    )
    assert code == 0, out


async def test_a_rollback_to_an_older_checkpoint_is_caught_with_the_recorded_count(
    log: list[str], db: Database, database_url: str, client: httpx.AsyncClient, seed: Seed
) -> None:
    """Removing the newest checkpoint, the rows after the one before and rewinding the heads
    leaves a consistent older log; only a count kept outside the database tells."""
    code, out = await _cli(database_url)
    assert "--min-checkpoints 1" in out, out
    chain = log[0]
    pid = chain.split(":", 1)[1]
    r = await client.get(f"/v1/placements/{pid}", headers=auth(seed.keys["referrer"]))
    assert r.status_code == 200
    code, out = await _cli(database_url)
    assert code == 0, out
    assert "--min-checkpoints 2" in out, out
    rows = await _rows(db, f"chain = '{chain}'")
    await _tamper(
        db,
        ("DELETE FROM audit_checkpoint_head WHERE checkpoint = 2", {}),
        ("DELETE FROM audit_checkpoint WHERE number = 2", {}),
        ("DELETE FROM audit_log WHERE id = :i", {"i": rows[-1]["id"]}),
        (
            "UPDATE audit_chain_head SET seq = :s, hash = :h, checkpointed_seq = :s "
            "WHERE chain = :c",
            {"s": rows[-2]["chain_seq"], "h": rows[-2]["hash"], "c": chain},
        ),
    )
    code, out = await _cli(database_url, "--no-checkpoint")
    assert code == 0, out  # consistent on its own
    code, out = await _cli(database_url, "--no-checkpoint", "--min-checkpoints", "2")
    assert code == 1, out
    assert "BROKEN at the checkpoints: only 1 signed checkpoints" in out, out
