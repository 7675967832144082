"""A report-now request to the whole demo region concerns dozens of organisations: its outbox
event names them all (the column once held ten at most, so PostgreSQL refused the request with
a server error); on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.enums import Role
from app.flows import simulate
from app.flows.demo import load_demo
from app.principal import Principal
from app.realtime.models import OutboxEvent
from app.realtime.service import parse_organisation_ids
from app.registry.models import Region
from app.reportnow import service as reportnow_service
from app.reportnow.schemas import ReportRequestCreate

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


async def test_a_region_wide_request_names_every_organisation(
    db: Database, settings: Settings
) -> None:
    async with db.sessionmaker() as session:
        await load_demo(session, simulate.SIMULATOR, now=NOW, settings=settings)
        await session.commit()
        region = await session.scalar(select(Region.id))
    triagist = Principal(
        key_id=uuid.uuid4(),
        name="Triagist",
        roles=frozenset({Role.TRIAGIST}),
        organisation_id=None,
        region_id=region,
    )
    async with db.sessionmaker() as session:
        made = await reportnow_service.create(
            session, triagist, ReportRequestCreate(within_minutes=30), now=NOW
        )
        await session.commit()
    async with db.read() as conn:
        stored = (
            await conn.execute(
                select(OutboxEvent.organisation_ids).where(
                    OutboxEvent.event_type == reportnow_service.EVENT_CREATED
                )
            )
        ).scalar_one()
    named = parse_organisation_ids(stored)
    assert len(named) > 10
    assert named == {u.organisation_id for u in made.units}
