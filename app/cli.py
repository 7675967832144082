"""The ``juisteplek`` command: serve, migrate, demo, create-key, export-openapi."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.auth.schemas import ApiKeyCreate
from app.config import Settings, get_settings
from app.db import Database, utcnow
from app.enums import Role
from app.registry.models import Organisation

cli = typer.Typer(
    help="JuistePlek: regional capacity coordination for acute follow-up care.",
    no_args_is_help=True,
    add_completion=False,
)

DEMO_KEY_PREFIX = "demo "


def _echo(text: str = "") -> None:
    typer.echo(text)


def run_migrations(database_url: str) -> None:
    from alembic import command

    from app.ops.service import alembic_config

    command.upgrade(alembic_config(database_url), "heads")


@cli.command()
def migrate() -> None:
    """Bring the database of JUISTEPLEK_DATABASE_URL to the latest schema."""
    settings = get_settings()
    run_migrations(settings.database_url)
    _echo("database at head")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the API (production style: migrate first with `juisteplek migrate`)."""
    import uvicorn

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=True,
    )


async def _issue_demo_keys(db: Database) -> dict[str, tuple[str, str]]:
    """One fresh key per role: role -> (key, the organisation it acts for)."""
    from app.registry.demo import demo_organisation_ids

    async with db.sessionmaker() as session:
        old = (
            await session.scalars(
                select(ApiKey).where(
                    ApiKey.name.startswith(DEMO_KEY_PREFIX), ApiKey.revoked_at.is_(None)
                )
            )
        ).all()
        for key in old:
            key.revoked_at = utcnow()
        orgs = await demo_organisation_ids(session)
        owners = {
            Role.ADMIN: None,
            Role.PROVIDER: orgs["vvt"],
            Role.REFERRER: orgs["hospital"],
            Role.TRIAGIST: orgs["rap"],
            Role.ANALYST: orgs["rap"],
        }
        names = dict((await session.execute(select(Organisation.id, Organisation.name))).all())
        keys = {}
        for role, org in owners.items():
            issued = await auth_service.issue_key(
                session,
                ApiKeyCreate(
                    name=f"{DEMO_KEY_PREFIX}{role.value}", organisation_id=org, roles=[role]
                ),
            )
            keys[role.value] = (issued.key, "all organisations" if org is None else names[org])
        await session.commit()
    return keys


async def _prepare_demo(settings: Settings) -> dict[str, tuple[str, str]]:
    from app.registry.demo import is_loaded, load_demo

    db = Database.from_url(settings.database_url)
    try:
        async with db.sessionmaker() as session:
            if not await is_loaded(session):
                system = Principal(
                    key_id=uuid.uuid4(),
                    name="demo loader",
                    roles=frozenset({Role.ADMIN}),
                    organisation_id=None,
                    region_id=None,
                )
                counts = await load_demo(session, system, now=utcnow(), settings=settings)
                await session.commit()
                _echo(f"loaded region West: {json.dumps(counts)}")
        return await _issue_demo_keys(db)
    finally:
        await db.dispose()


@cli.command()
def demo(
    database: Annotated[Path, typer.Option(help="SQLite file")] = Path("juisteplek-demo.db"),
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Prepare only")] = False,
    simulate_days: Annotated[
        int, typer.Option(min=0, max=730, help="Also simulate this many past days (KPIs)")
    ] = 0,
) -> None:
    """Migrate an SQLite file, load region West, print one key per role, and serve."""
    os.environ["JUISTEPLEK_DATABASE_URL"] = f"sqlite+aiosqlite:///{database.resolve()}"
    get_settings.cache_clear()
    settings = get_settings()
    run_migrations(settings.database_url)
    if simulate_days:
        from app.kpi import simulate as kpi_simulate

        asyncio.run(kpi_simulate.run(settings, days=simulate_days, seed=1, echo=_echo))
    keys = asyncio.run(_prepare_demo(settings))
    base = f"http://{host}:{port}"
    _echo(f"JuistePlek demo (region West) on {base}")
    _echo(f"  API docs:   {base}/docs")
    _echo(f"  OpenAPI:    {base}/openapi.json")
    _echo(f"  database:   {database.resolve()}")
    _echo("  API keys (one per role; new keys on every start):")
    for role, (key, organisation) in keys.items():
        _echo(f"    {role:<9} {key}  ({organisation})")
    _echo(
        f"  try: curl -H 'Authorization: Bearer {keys['triagist'][0]}' "
        f"'{base}/v1/availability?care_type=elv_high&subregion=leiden&escalate=true'"
    )
    sys.stdout.flush()
    if not no_serve:
        serve(host=host, port=port, workers=1)


@cli.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, max=730, help="Days to simulate, ending now")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same year")] = 1,
) -> None:
    """Simulate past days for region West through the services, then print headline KPIs."""
    from app.kpi import simulate as kpi_simulate

    settings = get_settings()
    run_migrations(settings.database_url)
    asyncio.run(kpi_simulate.run(settings, days=days, seed=seed, echo=_echo))


@cli.command("create-key")
def create_key(
    name: Annotated[str, typer.Option(help="Who or what the key is for")],
    role: Annotated[list[Role], typer.Option(help="Role (repeatable)")],
    organisation: Annotated[str | None, typer.Option(help="Organisation id")] = None,
) -> None:
    """Issue an API key directly in the database (bootstrap or break-glass)."""

    async def run() -> str:
        db = Database.from_url(get_settings().database_url)
        try:
            async with db.sessionmaker() as session:
                issued = await auth_service.issue_key(
                    session,
                    ApiKeyCreate(
                        name=name,
                        roles=role,
                        organisation_id=uuid.UUID(organisation) if organisation else None,
                    ),
                )
                await session.commit()
                return issued.key
        finally:
            await db.dispose()

    _echo(asyncio.run(run()))


@cli.command("export-openapi")
def export_openapi(
    output: Annotated[Path, typer.Option(help="Target file")] = Path("openapi/openapi.json"),
) -> None:
    """Write the OpenAPI document of the app (sorted keys, for the drift check)."""
    from app.main import create_app

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n")
    _echo(f"wrote {output}")


audit_cli = typer.Typer(help="The NEN 7513 access log.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


@audit_cli.command("verify")
def audit_verify(
    checkpoint: Annotated[
        bool,
        typer.Option(help="When intact, sign a checkpoint of the chain heads (docs/audit.md)"),
    ] = True,
    min_checkpoints: Annotated[
        int,
        typer.Option(
            min=0,
            help="Fail when fewer checkpoints exist than this: the count an earlier run printed "
            "(a log rolled back to an older state loses checkpoints)",
        ),
    ] = 0,
) -> None:
    """Check every chain of the access log against its head and the signed checkpoints; exit 1
    naming the first altered, re-chained, reordered or missing row (JUISTEPLEK_AUDIT_SIGNING_KEY
    must be the key the service signs with)."""
    from app.audit import service as audit_service

    async def run() -> bool:
        db = Database.from_url(get_settings().database_url)
        try:
            result = await audit_service.verify(db)
            if result.ok and result.checkpoints < min_checkpoints:
                result.ok, result.problems = False, 1
                result.problem = (
                    f"only {result.checkpoints} signed checkpoints, an earlier verification saw "
                    f"{min_checkpoints} (the log was rolled back)"
                )
            signed = await audit_service.checkpoint_all(db) if result.ok and checkpoint else []
        finally:
            await db.dispose()
        if result.ok:
            _echo(
                f"audit log intact: {result.rows} rows in {result.chains} chains, "
                f"{result.checkpoints} signed checkpoints, {result.unsigned_rows} rows after the "
                "latest checkpoint"
            )
            if signed:
                total = signed[-1].number
                numbers = (
                    f"checkpoint #{signed[0].number}"
                    if len(signed) == 1
                    else f"checkpoints #{signed[0].number}..#{signed[-1].number}"
                )
                _echo(f"signed {numbers} of {sum(c.heads for c in signed)} chain heads")
                _echo(f"keep for the next run: --min-checkpoints {total}")
        else:
            where = (
                f"row {result.first_bad_id}"
                if result.first_bad_id is not None
                else ("a row" if result.chain else "the checkpoints")
            )
            at = f" (chain {result.chain}, position {result.position})" if result.chain else ""
            _echo(
                f"audit log BROKEN at {where}{at}: {result.problem}; "
                f"{result.problems} problem(s) in {result.rows} rows"
            )
        if result.development_key:
            _echo(
                "warning: no JUISTEPLEK_AUDIT_SIGNING_KEY; the public development key was used, "
                "so anyone could have re-signed the log"
            )
        return result.ok

    if not asyncio.run(run()):
        raise typer.Exit(1)


triage_cli = typer.Typer(help="Triage rule sets (domain.md §12.1).", no_args_is_help=True)
cli.add_typer(triage_cli, name="triage")

# The command line acts as an admin without a key: loaded_by_key_id is the nil UUID.
CLI_ADMIN = Principal(
    key_id=uuid.UUID(int=0),
    name="command line",
    roles=frozenset({Role.ADMIN}),
    organisation_id=None,
    region_id=None,
)


def _triage_command(action: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    """Run one triage service call in its own transaction; a refusal prints why and exits 1."""
    from app.errors import DomainError

    async def run() -> Any:
        db = Database.from_url(get_settings().database_url)
        try:
            async with db.sessionmaker() as session:
                result = await action(session)
                await session.commit()
                return result
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        _echo(f"refused: {exc.detail}")
        for error in exc.errors or []:
            _echo(f"  {error['detail']}")
        for finding in exc.extra.get("check_report", {}).get("findings", []):
            _echo(f"  {finding['severity']}: {finding['message']}")
        raise typer.Exit(1) from None


def _echo_rule_set(rule_set: Any) -> None:
    state = "active" if rule_set.active else "inactive"
    report = rule_set.check_report
    verdict = "activatable" if report.activatable else "NOT activatable"
    _echo(f"{rule_set.version} ({rule_set.title}): {state}, {verdict}")
    for finding in report.findings:
        _echo(f"  {finding.severity}: {finding.message}")


@triage_cli.command("load")
def triage_load(
    file: Annotated[Path, typer.Argument(help="Rule set YAML file", exists=True, dir_okay=False)],
    activate: Annotated[bool, typer.Option(help="Activate when the checks pass")] = False,
) -> None:
    """Load a rule set and print its check report; exit 1 when it is refused."""
    from app.triage import service as triage_service
    from app.triage.schemas import RuleSetUpload

    body = RuleSetUpload(source=file.read_text("utf-8"), activate=activate)
    _echo_rule_set(
        _triage_command(
            lambda session: triage_service.load_rule_set(session, CLI_ADMIN, body, now=utcnow())
        )
    )


@triage_cli.command("activate")
def triage_activate(version: Annotated[str, typer.Argument(help="Rule-set version")]) -> None:
    """Make VERSION the rule set every triage uses; exit 1 when it has check errors."""
    from app.triage import service as triage_service

    _echo_rule_set(
        _triage_command(
            lambda session: triage_service.activate_rule_set(
                session, CLI_ADMIN, version, now=utcnow()
            )
        )
    )


@triage_cli.command("list")
def triage_list() -> None:
    """Every loaded rule-set version, newest first, with its check verdict."""
    from app.triage import service as triage_service

    listing = _triage_command(lambda session: triage_service.list_rule_sets(session, now=utcnow()))
    for item in listing.items:
        _echo_rule_set(item)


def main() -> None:
    cli()
