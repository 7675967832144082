"""The triage form's live advice: answers in, advice out, nothing stored.

The placement page re-asks this on every answer so the triagist sees the advice and the questions
still open as the form fills in; the triage itself is stored once, through ``service.triage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from app.enums import CareType, TargetGroup
from app.triage.rules import evaluate
from app.triage.schemas import ActionRead, OutcomeRead, QuestionRead
from app.triage.service import _answers, _question_read, active_rule_set


@dataclass(frozen=True)
class TriagePreview:
    rule_set_version: str
    title: str
    questions: list[QuestionRead]  # in asking order
    answers: dict[str, bool | str]
    complete: bool
    outcome: OutcomeRead | None
    care_types: list[CareType]
    target_group: TargetGroup | None
    needs_urgency: bool
    open_questions: list[str]  # ids, in asking order
    rationale_nl: str | None
    rationale_en: str | None
    actions: list[ActionRead]


async def preview(
    session: AsyncSession,
    raw_answers: Mapping[str, JsonValue],
    *,
    urgency_level: int | None,
    now: datetime,
) -> TriagePreview:
    """Advice for (possibly partial) answers under the active rule set; 422 for an answer the
    rule set does not take."""
    active = await active_rule_set(session, now=now)
    await session.commit()
    ruleset = active.ruleset
    answers = _answers(ruleset, raw_answers)
    result = evaluate(ruleset, answers, urgency_level)
    outcome = None if result.outcome is None else ruleset.outcome_map[result.outcome]
    return TriagePreview(
        rule_set_version=active.version,
        title=active.title,
        questions=[_question_read(q) for q in ruleset.questions],
        answers=dict(answers),
        complete=result.complete,
        outcome=None
        if outcome is None
        else OutcomeRead(
            code=outcome.code,
            label_nl=outcome.label_nl,
            label_en=outcome.label_en,
            advice_nl=outcome.advice_nl,
            advice_en=outcome.advice_en,
        ),
        care_types=list(result.care_types),
        target_group=result.target_group,
        needs_urgency=result.needs_urgency,
        open_questions=list(result.open_questions),
        rationale_nl=result.rationale_nl,
        rationale_en=result.rationale_en,
        actions=[
            ActionRead(code=a.code, text_nl=a.text_nl, text_en=a.text_en) for a in result.actions
        ],
    )
