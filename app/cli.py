"""The ``juisteplek`` command: serve, migrate, demo, create-key, export-openapi."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from app.auth import service as auth_service
from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.auth.schemas import ApiKeyCreate
from app.config import Settings, get_settings
from app.db import Database, utcnow
from app.enums import Role

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


async def _issue_demo_keys(db: Database) -> dict[str, str]:
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
        keys = {}
        for role, org in owners.items():
            issued = await auth_service.issue_key(
                session,
                ApiKeyCreate(
                    name=f"{DEMO_KEY_PREFIX}{role.value}", organisation_id=org, roles=[role]
                ),
            )
            keys[role.value] = issued.key
        await session.commit()
    return keys


async def _prepare_demo(settings: Settings) -> dict[str, str]:
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
) -> None:
    """Migrate an SQLite file, load region West, print one key per role, and serve."""
    os.environ["JUISTEPLEK_DATABASE_URL"] = f"sqlite+aiosqlite:///{database.resolve()}"
    get_settings.cache_clear()
    settings = get_settings()
    run_migrations(settings.database_url)
    keys = asyncio.run(_prepare_demo(settings))
    base = f"http://{host}:{port}"
    _echo(f"JuistePlek demo (region West) on {base}")
    _echo(f"  API docs:   {base}/docs")
    _echo(f"  OpenAPI:    {base}/openapi.json")
    _echo(f"  database:   {database.resolve()}")
    _echo("  API keys (one per role; new keys on every start):")
    for role, key in keys.items():
        _echo(f"    {role:<9} {key}")
    _echo(
        f"  try: curl -H 'Authorization: Bearer {keys['triagist']}' "
        f"'{base}/v1/availability?care_type=elv_high&subregion=leiden&escalate=true'"
    )
    sys.stdout.flush()
    if not no_serve:
        serve(host=host, port=port, workers=1)


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


def main() -> None:
    cli()
