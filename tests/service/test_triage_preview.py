"""The triage form's live advice: partial answers show the open questions; nothing is stored."""

from __future__ import annotations

from typing import cast

import pytest
from pydantic import JsonValue
from sqlalchemy import func, select

from app.db import Database, utcnow
from app.errors import InvalidInput
from app.triage.models import TriageRecord
from app.triage.preview import preview
from tests.api.test_triage import ELV_HIGH


async def test_preview_follows_the_answers_and_stores_nothing(db: Database) -> None:
    async with db.sessionmaker() as session:
        partial = await preview(
            session,
            {"physician_assessed": True, "acute_psychiatry": None},
            urgency_level=3,
            now=utcnow(),
        )
        assert (partial.complete, partial.outcome) == (False, None)
        assert partial.open_questions[0] == "needs_specialist_care"
        assert "physician_assessed" not in partial.open_questions
        assert partial.answers == {"physician_assessed": True}
        assert next(q.id for q in partial.questions) == "physician_assessed"

        done = await preview(
            session, cast("dict[str, JsonValue]", ELV_HIGH), urgency_level=3, now=utcnow()
        )
        assert done.complete
        assert done.open_questions == []
        assert done.outcome is not None
        assert done.care_types == ["elv_high"]
        assert done.rationale_en

        with pytest.raises(InvalidInput):
            await preview(session, {"wlz_status": "pending"}, urgency_level=None, now=utcnow())
        stored = await session.scalar(select(func.count()).select_from(TriageRecord))
    assert stored == 0
