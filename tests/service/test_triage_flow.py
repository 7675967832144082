"""The triage flow writes everything in its caller's transaction: nothing is kept unless the
caller commits (no commit halfway), and a committed triage keeps all of it."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from app.audit.models import AuditLog
from app.audit.service import AuditContext
from app.auth.service import KeyResolver
from app.config import Settings
from app.db import Database, utcnow
from app.enums import CareType
from app.flows import triage as triage_flow
from app.kpi.models import ShortageEvent
from app.placement.models import Placement
from app.triage.models import TriageRecord
from app.triage.schemas import TriageRequest
from tests.factories import Seed, create_placements


async def _counts(db: Database, placement_id: uuid.UUID) -> tuple[int, int, int, str]:
    async with db.sessionmaker() as session:
        audit = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(AuditLog.object_id == str(placement_id))
        )
        records = await session.scalar(
            select(func.count())
            .select_from(TriageRecord)
            .where(TriageRecord.placement_id == placement_id)
        )
        shortages = await session.scalar(
            select(func.count())
            .select_from(ShortageEvent)
            .where(ShortageEvent.care_type == CareType.WLZ_CRISIS.value)
        )
        state = await session.scalar(select(Placement.state).where(Placement.id == placement_id))
    return int(audit or 0), int(records or 0), int(shortages or 0), str(state)


async def test_triage_writes_nothing_until_the_caller_commits(
    db: Database, settings: Settings, seed: Seed
) -> None:
    (placement_id,) = await create_placements(db, settings, seed, 1, triage=None)
    principal = await KeyResolver(db, ttl=0).resolve(f"Bearer {seed.keys['triagist']}")
    ctx = AuditContext(principal=principal, access_point="127.0.0.1")
    # No unit of this care type in the seed: the search finds nothing and counts a shortage.
    body = TriageRequest.model_validate(
        {
            "answers": {},
            "placement_id": str(placement_id),
            "override_care_type": CareType.WLZ_CRISIS.value,
            "override_reason": "crisis bed agreed with the GP",
            "search": True,
            "subregion": next(iter(seed.subregions)),
        }
    )
    before = await _counts(db, placement_id)
    assert before[3] == "requested"

    async with db.sessionmaker() as session:
        advice = await triage_flow.triage(session, db, ctx, body, now=utcnow(), settings=settings)
        assert advice.availability is not None
        assert advice.availability.count == 0
        assert advice.placement is not None
        assert advice.placement.state == "triaged"
        await session.rollback()
    # The placement read's access-log row, the record, the transition and the shortage count
    # were all in the one transaction the caller rolled back.
    assert await _counts(db, placement_id) == before

    async with db.sessionmaker() as session:
        await triage_flow.triage(session, db, ctx, body, now=utcnow(), settings=settings)
        await session.commit()
    audit, records, shortages, state = await _counts(db, placement_id)
    assert audit > before[0]
    assert records == before[1] + 1
    assert shortages == before[2] + 1
    assert state == "triaged"
