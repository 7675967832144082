"""Readiness (database reachable, schema at the migrations' head) and metrics refresh."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from app.capacity import service as capacity_service
from app.db import Database
from app.metrics import OLDEST_REPORT_AGE
from app.realtime.models import OutboxEvent
from app.webhooks.models import WebhookDelivery

# The Alembic revisions ship inside the package, so an installed wheel migrates from any
# working directory (alembic.ini at the checkout's root is for `alembic revision` only).
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@lru_cache
def migration_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def readiness(db: Database) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        async with db.read() as conn:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            versions: frozenset[str] = frozenset(rows.scalars())
    except Exception as exc:
        checks["database"] = f"unreachable or not migrated: {type(exc).__name__}"
        return False, checks
    checks["database"] = "ok"
    heads = migration_heads()
    at_head = versions == heads
    checks["migrations"] = (
        "ok" if at_head else f"at {', '.join(sorted(versions))}; head {', '.join(sorted(heads))}"
    )
    return at_head, checks


async def refresh_metrics(db: Database, now: datetime) -> None:
    for care_type, age in (await capacity_service.report_ages(db, now)).items():
        OLDEST_REPORT_AGE.labels(care_type).set(age)


# --- the instance's health for the administrator's console ------------------------------------

# Background loops by their asyncio task name; the hub starts with the first stream.
LOOPS = {
    "placement-sweeper": "placement sweeper",
    "juisteplek-webhooks": "webhook dispatcher",
    "juisteplek-realtime-hub": "real-time hub",
}


@dataclass(frozen=True, slots=True)
class InstanceHealth:
    """What an administrator checks first: is the instance sound, is work piling up."""

    ready: bool
    checks: dict[str, str]
    loops: dict[str, bool]  # task name -> running in this process
    open_streams: int
    outbox_backlog: int  # events not yet fanned out to webhook subscriptions
    pending_deliveries: int
    failed_deliveries_24h: int
    checked_at: datetime


def running_loops() -> dict[str, bool]:
    names = {task.get_name() for task in asyncio.all_tasks() if not task.done()}
    return {name: name in names for name in LOOPS}


async def instance_health(db: Database, *, open_streams: int, now: datetime) -> InstanceHealth:
    """Readiness plus the background loops, open streams, outbox backlog and webhook failures."""
    ready, checks = await readiness(db)
    backlog = pending = failed = 0
    if checks.get("database") == "ok":
        async with db.read() as conn:
            backlog = int(
                await conn.scalar(
                    select(func.count())
                    .select_from(OutboxEvent)
                    .where(OutboxEvent.webhooks_fanned_out_at.is_(None))
                )
                or 0
            )
            pending = int(
                await conn.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.status == "pending")
                )
                or 0
            )
            failed = int(
                await conn.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(
                        WebhookDelivery.status == "failed",
                        WebhookDelivery.updated_at >= now - timedelta(hours=24),
                    )
                )
                or 0
            )
    return InstanceHealth(
        ready=ready,
        checks=checks,
        loops=running_loops(),
        open_streams=open_streams,
        outbox_backlog=backlog,
        pending_deliveries=pending,
        failed_deliveries_24h=failed,
        checked_at=now,
    )
