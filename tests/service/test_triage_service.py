"""Triage service on both backends: first use stores the built-in rule set once; the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import cli, run_migrations
from app.config import get_settings
from app.db import Database, utcnow
from app.errors import Conflict
from app.triage import service as triage_service
from app.triage.models import TriageRuleSet
from app.triage.schemas import RuleSetUpload
from app.triage.service import _builtin_source
from tests.factories import ADMIN


async def test_concurrent_first_use_stores_the_builtin_once(db: Database) -> None:
    async def first_use() -> str:
        async with db.sessionmaker() as session:
            active = await triage_service.active_rule_set(session, now=utcnow())
            await session.commit()
            return active.version

    assert await asyncio.gather(*(first_use() for _ in range(8))) == ["west-2026.1"] * 8
    async with db.sessionmaker() as session:
        rows = (await session.execute(select(TriageRuleSet.version, TriageRuleSet.active))).all()
    assert [tuple(row) for row in rows] == [("west-2026.1", True)]


async def test_concurrent_activations_leave_exactly_one_active(db: Database) -> None:
    async with db.sessionmaker() as session:
        for version in ("west-a", "west-b", "west-c"):
            source = _builtin_source().replace("version: west-2026.1", f"version: {version}")
            await triage_service.load_rule_set(
                session, ADMIN, RuleSetUpload(source=source), now=utcnow()
            )
        await session.commit()

    async def activate(version: str) -> None:
        async with db.sessionmaker() as session:
            try:
                await triage_service.activate_rule_set(session, ADMIN, version, now=utcnow())
                await session.commit()
            except Conflict:
                await session.rollback()  # a concurrent activation won: a 409, never a 500

    await asyncio.gather(*(activate(v) for v in ("west-a", "west-b", "west-c", "west-2026.1")))
    async with db.sessionmaker() as session:
        active = await session.scalar(
            select(func.count()).select_from(TriageRuleSet).where(TriageRuleSet.active)
        )
    assert active == 1


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    run_migrations(url)
    monkeypatch.setenv("JUISTEPLEK_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_database")
def test_cli_loads_reports_and_activates(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(_builtin_source().replace("version: west-2026.1", "version: west-2026.9"))
    shadowed = tmp_path / "shadowed.yaml"
    shadowed.write_text(
        _builtin_source()
        .replace("version: west-2026.1", "version: west-shadow")
        .replace(
            "  - id: R10\n",
            "  - id: R9b\n    when: adl_takeover\n    outcome: elv_low\n    basis: t\n"
            "    rationale_nl: n\n    rationale_en: n\n\n  - id: R10\n",
        )
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text(_builtin_source().replace("outcome: grz\n", "outcome: rehab\n"))

    result = runner.invoke(cli, ["triage", "load", str(good)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("west-2026.9 (ROAZ regio West triage 2026.1): inactive")

    result = runner.invoke(cli, ["triage", "load", str(shadowed)])
    assert result.exit_code == 0, result.output
    assert "NOT activatable" in result.output
    assert "error: rule R9b can never fire: earlier rules always win: R0, R1" in result.output

    result = runner.invoke(cli, ["triage", "activate", "west-shadow"])
    assert result.exit_code == 1
    assert "refused: Rule set west-shadow has 1 check error(s)" in result.output

    result = runner.invoke(cli, ["triage", "load", str(broken)])
    assert result.exit_code == 1
    assert "rule R7" in result.output
    assert "unknown outcome 'rehab'" in result.output

    result = runner.invoke(cli, ["triage", "activate", "west-2026.9"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("west-2026.9 (ROAZ regio West triage 2026.1): active,")

    result = runner.invoke(cli, ["triage", "list"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert sorted(lines) == [
        "west-2026.1 (ROAZ regio West triage 2026.1): inactive, activatable",
        "west-2026.9 (ROAZ regio West triage 2026.1): active, activatable",
        "west-shadow (ROAZ regio West triage 2026.1): inactive, NOT activatable",
    ]
