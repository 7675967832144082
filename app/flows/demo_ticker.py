"""Keeps the demo live: its providers go on reporting capacity while the demo runs.

A bed report is stale after ``stale_after_bed_minutes`` (240 by default) and the search leaves stale
reports out, so a demo left running for an afternoon would find nothing. Every
``demo_report_minutes`` the ticker writes a new report, through the same service as
``PUT /v1/units/{id}/capacity``, for each active unit of the demo region whose latest report is
older than ``refresh_after``: the free count drifts by at most one place from the last report,
within the staffed capacity. On in ``juisteplek demo``, off everywhere else.
"""

from __future__ import annotations

import asyncio
import functools
import random
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select

from app.capacity import service as capacity_service
from app.capacity.models import UnitCapacity
from app.capacity.schemas import CapacityReportIn
from app.config import Settings
from app.db import Database, utcnow
from app.enums import Role
from app.errors import DomainError
from app.lifetime import task_while_open
from app.principal import Principal
from app.registry.models import Location, Region, Subregion, Unit

log = structlog.get_logger("juisteplek.demo")

# The demo's providers, acting through the service as an admin acts for any organisation.
DEMO_REPORTER = Principal(
    key_id=uuid.UUID(int=0),
    name="demo providers",
    roles=frozenset({Role.ADMIN}),
    organisation_id=None,
    region_id=None,
)

REFRESH_AFTER = timedelta(minutes=60)


@dataclass(frozen=True)
class Due:
    unit_id: uuid.UUID
    staffed_capacity: int
    free: int | None
    expected_free_24h: int | None


def next_counts(due: Due, rng: random.Random) -> tuple[int, int | None]:
    """A plausible next report: one place more or less than the last one, or the same."""
    cap = due.staffed_capacity
    last = due.free if due.free is not None else rng.randint(0, cap)
    free = min(cap, max(0, last + rng.choice((-1, 0, 0, 1))))
    expected = None
    if due.expected_free_24h is not None:
        expected = min(cap, max(0, free + rng.choice((-1, 0, 1, 1))))
    return free, expected


async def due_units(
    db: Database, *, region_code: str, now: datetime, refresh_after: timedelta
) -> list[Due]:
    """Active units of the region without a report since ``now - refresh_after``."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(
                    Unit.id,
                    Unit.staffed_capacity,
                    UnitCapacity.free,
                    UnitCapacity.expected_free_24h,
                )
                .join(Location, Location.id == Unit.location_id)
                .join(Subregion, Subregion.id == Location.subregion_id)
                .join(Region, Region.id == Subregion.region_id)
                .outerjoin(UnitCapacity, UnitCapacity.unit_id == Unit.id)
                .where(
                    Region.code == region_code,
                    Unit.active.is_(True),
                    or_(
                        UnitCapacity.reported_at.is_(None),
                        UnitCapacity.reported_at < now - refresh_after,
                    ),
                )
                .order_by(Unit.id)
            )
        ).all()
    return [Due(row[0], row[1], row[2], row[3]) for row in rows]


async def tick(
    db: Database,
    settings: Settings,
    *,
    region_code: str,
    now: datetime,
    rng: random.Random,
    refresh_after: timedelta = REFRESH_AFTER,
) -> int:
    """Report for every due unit, one transaction each; returns how many reports were written."""
    written = 0
    for due in await due_units(db, region_code=region_code, now=now, refresh_after=refresh_after):
        free, expected = next_counts(due, rng)
        async with db.sessionmaker() as session:
            try:
                await capacity_service.report_capacity(
                    session,
                    DEMO_REPORTER,
                    due.unit_id,
                    CapacityReportIn(free=free, expected_free_24h=expected, reported_at=now),
                    now=now,
                    settings=settings,
                    source="demo",
                )
                await session.commit()
                written += 1
            except DomainError as exc:  # deactivated or reported meanwhile: skip this unit
                await session.rollback()
                log.info("demo_report_skipped", unit_id=str(due.unit_id), reason=exc.detail)
    return written


async def run_forever(db: Database, settings: Settings, *, region_code: str) -> None:
    rng = random.Random()  # noqa: S311 - demo figures, not security
    while True:
        try:
            written = await tick(db, settings, region_code=region_code, now=utcnow(), rng=rng)
            if written:
                log.info("demo_reports_written", reports=written)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("demo_reports_failed")
        await asyncio.sleep(settings.demo_report_minutes * 60)


def running(db: Database, settings: Settings) -> AbstractAsyncContextManager[None]:
    """Run the ticker for the app's lifetime when ``settings.demo_report_minutes`` > 0."""
    from app.flows.demo import demo_data

    loop = functools.partial(run_forever, db, settings, region_code=demo_data()["region"]["code"])
    return task_while_open(
        loop if settings.demo_report_minutes else None, name="juisteplek-demo-ticker"
    )
