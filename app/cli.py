"""The ``juisteplek`` command: serve, migrate, demo, create-key, export-openapi, import-region,
audit, triage, webhooks."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import asyncpg
import typer
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.models import ApiKey
from app.auth.schemas import ApiKeyCreate
from app.config import Settings, get_settings
from app.db import Database, utcnow
from app.enums import Role
from app.principal import Principal
from app.registry.models import Organisation

cli = typer.Typer(
    help="JuistePlek: regional capacity coordination for acute follow-up care.",
    no_args_is_help=True,
    add_completion=False,
)

DEMO_KEY_PREFIX = "demo "
# Where `juisteplek demo` keeps its SQLite database (relative to the working directory).
DEMO_DATABASE = Path("juisteplek-demo.db")
DEMO_REPORT_MINUTES = 5.0
T = TypeVar("T")


def _echo(text: str = "") -> None:
    typer.echo(text)


def _note(text: str) -> None:
    """Said on stderr, so that stdout stays what a script reads (a key, a report)."""
    typer.echo(text, err=True)


def _fail(text: str) -> NoReturn:
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(1)


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def database_url(*, must_exist: bool) -> str:
    """The database a subcommand works on, named on stderr.

    JUISTEPLEK_DATABASE_URL when set. Otherwise the default SQLite file, or, when that does not
    exist but `juisteplek demo` made its database in this directory, the demo's. With
    ``must_exist`` a missing SQLite file is refused instead of being created empty.
    """
    url = get_settings().database_url
    origin = "JUISTEPLEK_DATABASE_URL"
    if not os.environ.get("JUISTEPLEK_DATABASE_URL"):
        origin = "the default; set JUISTEPLEK_DATABASE_URL to choose"
        default_file = _sqlite_file(url)
        if default_file is not None and not default_file.exists() and DEMO_DATABASE.exists():
            url = f"sqlite+aiosqlite:///{DEMO_DATABASE.resolve()}"
            origin = "the demo's, found in this directory; set JUISTEPLEK_DATABASE_URL to choose"
    _note(f"database: {shown_url(url)} ({origin})")
    path = _sqlite_file(url)
    if must_exist and path is not None and not path.exists():
        _fail(
            f"there is no database at {path.resolve()}: run `juisteplek demo` or "
            "`juisteplek migrate` first, or set JUISTEPLEK_DATABASE_URL"
        )
    return url


def database_problem(exc: BaseException, url: str) -> str:
    """One line that says what is wrong with the database, for a person at a terminal."""
    from app.errors import database_unavailable

    where = shown_url(url)
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = message[0] if message else type(exc).__name__
    if "no such table" in first or ("relation" in first and "does not exist" in first):
        return (
            f"the database {where} has no JuistePlek schema ({first}): "
            "run `juisteplek migrate` first"
        )
    if database_unavailable(exc):
        return f"cannot reach the database {where}: {first}"
    return f"the database {where} refused the command: {first}"


_DATABASE_ERRORS = (SQLAlchemyError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def with_database(action: Callable[[Database], Awaitable[T]], *, url: str) -> T:
    """Run ``action`` on a fresh engine; a database failure is one line on stderr and exit 1."""

    async def run() -> T:
        db = Database.from_url(url)
        try:
            return await action(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except _DATABASE_ERRORS as exc:
        _fail(database_problem(exc, url))


def run_migrations(database_url: str) -> None:
    from alembic import command

    from app.ops.service import alembic_config

    command.upgrade(alembic_config(database_url), "heads")


def _migrate(url: str) -> None:
    path = _sqlite_file(url)
    if path is not None and not path.parent.exists():
        _fail(f"the directory {path.parent.resolve()} of the SQLite database does not exist")
    created = path is not None and not path.exists()
    try:
        run_migrations(url)
    except _DATABASE_ERRORS as exc:
        if created and path is not None:
            path.unlink(missing_ok=True)  # leave no empty database behind
        _fail(database_problem(exc, url))


@cli.command()
def migrate() -> None:
    """Bring the database of JUISTEPLEK_DATABASE_URL to the latest schema.

    On PostgreSQL the upgrade holds an advisory lock, so several instances may run it at once.
    """
    url = get_settings().database_url
    _note(f"database: {shown_url(url)}")
    _migrate(url)
    _echo("database at head")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Worker processes", envvar="JUISTEPLEK_WORKERS", min=1)
    ] = 1,
    migrate_first: Annotated[
        bool, typer.Option("--migrate", help="Run `juisteplek migrate` before serving")
    ] = False,
) -> None:
    """Serve the API (production style: migrate first, or pass --migrate)."""
    import uvicorn

    if migrate_first:
        migrate()
    else:
        url = get_settings().database_url
        _note(f"database: {shown_url(url)}")
        path = _sqlite_file(url)
        if path is not None and not path.exists():
            _fail(
                f"there is no database at {path.resolve()}: run `juisteplek migrate` first, "
                "pass --migrate, or set JUISTEPLEK_DATABASE_URL"
            )

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
    from app.flows.demo import demo_organisation_ids

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


DEMO_USER_DOMAIN = "demo.juisteplek.nl"
# The order the web users are printed in: the triagist first, the README's first login.
DEMO_USER_ROLES = (Role.TRIAGIST, Role.PROVIDER, Role.REFERRER, Role.ANALYST, Role.ADMIN)


async def _issue_demo_users(db: Database) -> list[tuple[str, str, str]]:
    """One web user per role, each with a new password: (role, email, password)."""
    from app.auth import users as user_service
    from app.flows.demo import demo_organisation_ids

    async with db.sessionmaker() as session:
        orgs = await demo_organisation_ids(session)
        owners = {
            Role.TRIAGIST: orgs["rap"],
            Role.PROVIDER: orgs["vvt"],
            Role.REFERRER: orgs["hospital"],
            Role.ANALYST: orgs["rap"],
            Role.ADMIN: None,
        }
        names = {
            Role.TRIAGIST: "Demo Triagist",
            Role.PROVIDER: "Demo Planner",
            Role.REFERRER: "Demo Transferverpleegkundige",
            Role.ANALYST: "Demo Analist",
            Role.ADMIN: "Demo Beheerder",
        }
        printed = []
        for role in DEMO_USER_ROLES:
            email = f"{role.value}@{DEMO_USER_DOMAIN}"
            password = user_service.generate_password()
            user = await user_service.user_by_email(session, email)
            if user is None:
                await user_service.add_user(
                    session,
                    name=names[role],
                    email=email,
                    organisation_id=owners[role],
                    roles=frozenset({role}),
                    password=password,
                )
            else:
                await user_service.reset_password(session, user, password)
            printed.append((role.value, email, password))
        await session.commit()
    return printed


async def _prepare_demo(settings: Settings) -> dict[str, tuple[str, str]]:
    from app.flows.demo import is_loaded, load_demo

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
        keys = await _issue_demo_keys(db)
        keys.update({f"user:{r}": (e, p) for r, e, p in await _issue_demo_users(db)})
        return keys
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
    report_every: Annotated[
        float,
        typer.Option(
            min=0,
            max=1440,
            help="Minutes between rounds of new capacity reports by the demo's providers (0: off)",
        ),
    ] = DEMO_REPORT_MINUTES,
) -> None:
    """Migrate an SQLite file, load region West, print one key per role, and serve.

    While it serves, the demo's providers keep reporting capacity, so searches stay fresh.
    """
    os.environ["JUISTEPLEK_DATABASE_URL"] = f"sqlite+aiosqlite:///{database.resolve()}"
    os.environ["JUISTEPLEK_DEMO_REPORT_MINUTES"] = str(report_every)
    # Task notifications carry absolute Task URLs (docs/exchange.md).
    os.environ.setdefault("JUISTEPLEK_PUBLIC_URL", f"http://{host}:{port}")
    get_settings.cache_clear()
    settings = get_settings()
    _migrate(settings.database_url)
    if simulate_days:
        from app.flows import simulate as kpi_simulate

        asyncio.run(kpi_simulate.run(settings, days=simulate_days, seed=1, echo=_echo))
    prepared = asyncio.run(_prepare_demo(settings))
    keys = {k: v for k, v in prepared.items() if not k.startswith("user:")}
    base = f"http://{host}:{port}"
    _echo(f"JuistePlek demo (region West) on {base}")
    _echo(f"  web app:    {base}/  (log in as a web user below)")
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
    env_file = database.resolve().with_suffix(".env")
    provider_org = asyncio.run(_demo_provider_organisation(settings))
    write_demo_env(env_file, base=base, keys=keys, provider_organisation=provider_org)
    _echo(f"  for a shell: . {_relative(env_file)}   (B = the URL, A P R T N = the keys, PO = the")
    _echo("               provider key's organisation)")
    _echo("Web users (one per role; new passwords on every start):")
    for name, (email, password) in prepared.items():
        if name.startswith("user:"):
            _echo(f"    {name.removeprefix('user:')}  {email}  {password}")
    sys.stdout.flush()
    if not no_serve:
        serve(host=host, port=port, workers=1)


# Shell variable per demo key in the file `juisteplek demo` writes (docs/placements.md uses them).
DEMO_ENV_NAMES = {"admin": "A", "provider": "P", "referrer": "R", "triagist": "T", "analyst": "N"}


def write_demo_env(
    path: Path,
    *,
    base: str,
    keys: dict[str, tuple[str, str]],
    provider_organisation: uuid.UUID,
) -> None:
    """The demo's URL and keys as shell assignments, readable by the owner only."""
    lines = [
        "# Written by `juisteplek demo` (new keys on every start). Use: . ./<this file>",
        f"B={base}",
    ]
    for role, name in DEMO_ENV_NAMES.items():
        lines.append(f"{name}={keys[role][0]}  # {role}, {keys[role][1]}")
    lines.append(f"PO={provider_organisation}  # the provider key's organisation")
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


def _relative(path: Path) -> str:
    try:
        return "./" + str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


async def _demo_provider_organisation(settings: Settings) -> uuid.UUID:
    from app.flows.demo import demo_organisation_ids

    db = Database.from_url(settings.database_url)
    try:
        async with db.sessionmaker() as session:
            org: uuid.UUID = (await demo_organisation_ids(session))["vvt"]
            return org
    finally:
        await db.dispose()


@cli.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, max=730, help="Days to simulate, ending now")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same year")] = 1,
) -> None:
    """Simulate past days for region West through the services, then print headline KPIs."""
    from app.flows import simulate as kpi_simulate

    settings = get_settings()
    _note(f"database: {shown_url(settings.database_url)}")
    _migrate(settings.database_url)
    asyncio.run(kpi_simulate.run(settings, days=days, seed=seed, echo=_echo))


@cli.command("create-key")
def create_key(
    name: Annotated[str, typer.Option(help="Who or what the key is for")],
    role: Annotated[list[Role], typer.Option(help="Role (repeatable)")],
    organisation: Annotated[str | None, typer.Option(help="Organisation id")] = None,
) -> None:
    """Issue an API key directly in the database (bootstrap or break-glass)."""

    try:
        organisation_id = uuid.UUID(organisation) if organisation else None
    except ValueError:
        _fail(f"--organisation {organisation!r} is not an organisation id (a UUID)")

    async def run(db: Database) -> str:
        async with db.sessionmaker() as session:
            issued = await auth_service.issue_key(
                session,
                ApiKeyCreate(name=name, roles=role, organisation_id=organisation_id),
            )
            await session.commit()
            return issued.key

    _echo(with_database(run, url=database_url(must_exist=True)))


@cli.command("create-user")
def create_user(
    name: Annotated[str, typer.Option(help="The person's name")],
    email: Annotated[str, typer.Option(help="Email address (the login name)")],
    role: Annotated[list[Role], typer.Option(help="Role (repeatable)")],
    organisation: Annotated[
        str | None, typer.Option(help="Organisation id (not needed for admin only)")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Password (at least 10 characters); omitted: generated, printed once"),
    ] = None,
) -> None:
    """Create a person's web account directly in the database (bootstrap or break-glass)."""
    from pydantic import ValidationError

    from app.auth import users as user_service
    from app.auth.schemas import UserCreate
    from app.errors import DomainError

    generated = password is None
    secret = password if password is not None else user_service.generate_password()
    try:
        organisation_id = uuid.UUID(organisation) if organisation else None
        body = UserCreate(
            name=name,
            email=email,
            roles=role,
            organisation_id=organisation_id,
            password=secret,
        )
    except (ValueError, ValidationError) as exc:
        _echo(f"refused: {exc}")
        raise typer.Exit(1) from exc

    async def run() -> str:
        db = Database.from_url(get_settings().database_url)
        try:
            async with db.sessionmaker() as session:
                user = await user_service.create_user(session, CLI_ADMIN, body)
                await session.commit()
                return str(user.id)
        finally:
            await db.dispose()

    try:
        user_id = asyncio.run(run())
    except DomainError as exc:
        _echo(f"refused: {exc.detail}")
        raise typer.Exit(1) from exc
    _echo(f"created user {user_id} ({body.email})")
    if generated:
        _echo(f"password (shown once): {secret}")


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

    async def run(db: Database) -> bool:
        result = await audit_service.verify(db)
        if result.ok and result.checkpoints < min_checkpoints:
            result.ok, result.problems = False, 1
            result.problem = (
                f"only {result.checkpoints} signed checkpoints, an earlier verification saw "
                f"{min_checkpoints} (the log was rolled back)"
            )
        signed = await audit_service.checkpoint_all(db) if result.ok and checkpoint else []
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

    if not with_database(run, url=database_url(must_exist=True)):
        raise typer.Exit(1)


triage_cli = typer.Typer(help="Triage rule sets (docs/domain.md §4, §12.1).", no_args_is_help=True)
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

    async def run(db: Database) -> Any:
        async with db.sessionmaker() as session:
            result = await action(session)
            await session.commit()
            return result

    try:
        return with_database(run, url=database_url(must_exist=True))
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


@cli.command("import-region")
def import_region(
    file: Annotated[Path, typer.Argument(help="Region file (YAML or JSON)", dir_okay=False)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only print what would change; write nothing")
    ] = False,
) -> None:
    """Create or update a region from a region file (docs/exchange.md) and print the diff;
    an inconsistent file is refused with every problem named (exit 1), nothing written."""
    from app.errors import DomainError
    from app.flows import region_import as importer

    async def run() -> Any:
        settings = get_settings()
        db = Database.from_url(settings.database_url)
        try:
            return await importer.import_file(
                db, CLI_ADMIN, file, dry_run=dry_run, settings=settings
            )
        finally:
            await db.dispose()

    try:
        diff = asyncio.run(run())
    except DomainError as exc:
        errors = exc.errors or []
        if len(errors) > 1:
            _echo(f"refused: the region file has {len(errors)} problems; nothing was imported")
        else:
            _echo(f"refused: {exc.detail}")
        for error in errors:
            _echo(f"  {error['pointer']}: {error['detail']}")
        raise typer.Exit(1) from None
    for line in importer.describe(diff):
        _echo(line)


webhooks_cli = typer.Typer(
    help="Webhook signing secrets at rest (docs/webhooks.md).", no_args_is_help=True
)
cli.add_typer(webhooks_cli, name="webhooks")


@webhooks_cli.command("new-key")
def webhooks_new_key() -> None:
    """Print a new random key for JUISTEPLEK_SECRETS_KEY."""
    from app.secretbox import new_key

    _echo(new_key())


@webhooks_cli.command("reencrypt")
def webhooks_reencrypt() -> None:
    """Encrypt every webhook secret under JUISTEPLEK_SECRETS_KEY (after a rotation or upgrade).

    Old keys in JUISTEPLEK_SECRETS_OLD_KEYS decrypt; secrets stored in plain text by earlier
    versions are encrypted. Exit 1 when a secret decrypts with none of the configured keys.
    """
    from app.webhooks.service import reencrypt_secrets

    settings = get_settings()

    async def run() -> tuple[int, int, list[uuid.UUID]]:
        db = Database.from_url(settings.database_url)
        try:
            result = await reencrypt_secrets(db, settings.secret_box())
        finally:
            await db.dispose()
        return result.subscriptions, result.reencrypted, result.unreadable

    total, changed, unreadable = asyncio.run(run())
    _echo(f"webhook secrets: {total} subscriptions, {changed} re-encrypted")
    if unreadable:
        _echo(
            f"{len(unreadable)} secrets decrypt with no configured key (add the old key to "
            "JUISTEPLEK_SECRETS_OLD_KEYS): " + ", ".join(str(i) for i in unreadable)
        )
        raise typer.Exit(1)


def main() -> None:
    cli()
