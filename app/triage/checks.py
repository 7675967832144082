"""Static checks on a triage rule set (docs/domain.md §4, §12.1); a set with errors may not go live.

Reachability is decided exhaustively: we walk the decision tree of the first-match table, branching
only on inputs the rules still need, which covers every answer set without enumerating them all.
The tree can still grow exponentially with the questions (a rule that needs every answer), so the
walk has a work limit: a set beyond it is refused as too large to check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.triage.rules import (
    All,
    Answer,
    Condition,
    Not,
    Question,
    RuleSet,
    RuleSetError,
    RuleSetProblem,
    _Junction,
    match_first,
)

# Condition nodes judged over the whole reachability walk. The built-in set needs about 15,000,
# with a shadowed rule added about 570,000; the limit keeps the worst case to a few seconds of
# CPU (the upload runs it off the event loop).
MAX_CHECK_WORK = 2_000_000

FindingCode = Literal[
    "no_catch_all",  # some answer set matches no rule
    "shadowed_rule",  # earlier rules always win wherever this rule holds
    "unsatisfiable_rule",  # the condition can never be true
    "informational_input_decides",  # a rule reads an input marked informational
    "unused_input",  # no rule reads a non-informational input
    "missing_care_types",  # a rule leads to an outcome that declares no care-type mapping
    "unused_outcome",  # no rule leads to this outcome
]


class Severity(StrEnum):
    ERROR = "error"  # blocks activation
    WARNING = "warning"


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: FindingCode
    message: str
    rule_id: str | None = None
    subject: str | None = None  # the question or outcome concerned


class CheckReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    ruleset_version: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def activatable(self) -> bool:
        return not self.errors


def check_ruleset(ruleset: RuleSet, *, max_work: int = MAX_CHECK_WORK) -> CheckReport:
    """The findings; a RuleSetError when the decision tree is too large to walk in ``max_work``."""
    budget = _Budget(max_work)
    findings = [*_reachability(ruleset, budget), *_inputs(ruleset), *_outcomes(ruleset)]
    return CheckReport(ruleset_version=ruleset.version, findings=tuple(findings))


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, work: int) -> None:
        self.left -= work
        if self.left < 0:
            message = (
                f"the rules' decision tree is too large to check (more than {self.limit} "
                "condition evaluations): rules that need the answers to many questions at once "
                "multiply the cases; split them or ask fewer questions"
            )
            raise RuleSetError([RuleSetProblem(message=message, location="rules")])


def _size(condition: Condition) -> int:
    if isinstance(condition, Not):
        return 1 + _size(condition.operand)
    if isinstance(condition, _Junction):
        return 1 + sum(_size(operand) for operand in condition.operands)
    return 1


def _explore(
    conditions: Sequence[Condition], questions: Sequence[Question], budget: _Budget
) -> Iterator[tuple[dict[str, Answer], int | None]]:
    """Every leaf of the first-match decision tree: answers that settle it, and what fires."""
    work = 1 + sum(_size(condition) for condition in conditions)
    stack: list[dict[str, Answer]] = [{}]
    while stack:
        budget.spend(work)
        answers = stack.pop()
        match = match_first(conditions, answers)
        if not match.open:
            yield answers, match.index
            continue
        # Branch on the first open question in asking order, like the questionnaire would.
        question = next(q for q in questions if q.id in match.open)
        stack.extend({**answers, question.id: value} for value in reversed(question.domain))


def _reachability(ruleset: RuleSet, budget: _Budget) -> Iterator[Finding]:
    conditions = [rule.condition for rule in ruleset.rules]
    leaves = list(_explore(conditions, ruleset.questions, budget))
    unmatched = next((answers for answers, index in leaves if index is None), None)
    if unmatched is not None:
        yield Finding(
            severity=Severity.ERROR,
            code="no_catch_all",
            message=f"the answers {json.dumps(unmatched)} match no rule; "
            "end the table with an `otherwise: true` rule",
        )
    fired = {index for _, index in leaves}
    for index, rule in enumerate(ruleset.rules):
        if index in fired:
            continue
        # Where this rule holds, the first earlier rule that also holds is the one that wins.
        overlaps = [All((earlier, rule.condition)) for earlier in conditions[:index]]
        winners = sorted(
            {i for _, i in _explore(overlaps, ruleset.questions, budget) if i is not None}
        )
        if winners:
            ids = ", ".join(ruleset.rules[i].id for i in winners)
            yield _rule_error("shadowed_rule", rule.id, f"earlier rules always win: {ids}")
        else:
            yield _rule_error("unsatisfiable_rule", rule.id, "its condition is never true")


def _rule_error(code: FindingCode, rule_id: str, why: str) -> Finding:
    message = f"rule {rule_id} can never fire: {why}"
    return Finding(severity=Severity.ERROR, code=code, message=message, rule_id=rule_id)


def _inputs(ruleset: RuleSet) -> Iterator[Finding]:
    for question in ruleset.questions:
        readers = [rule.id for rule in ruleset.rules if question.id in rule.condition.inputs()]
        if question.informational and readers:
            yield Finding(
                severity=Severity.ERROR,
                code="informational_input_decides",
                message=f"input {question.id} is informational but decides the outcome in "
                f"{', '.join(readers)}; drop informational: true or the reference",
                rule_id=readers[0],
                subject=question.id,
            )
        elif not question.informational and not readers:
            yield Finding(
                severity=Severity.WARNING,
                code="unused_input",
                message=f"no rule reads input {question.id}; remove it or mark it informational",
                subject=question.id,
            )


def _outcomes(ruleset: RuleSet) -> Iterator[Finding]:
    first_use = {rule.outcome: rule.id for rule in reversed(ruleset.rules)}
    for outcome in ruleset.outcomes:
        if outcome.code not in first_use:
            yield Finding(
                severity=Severity.WARNING,
                code="unused_outcome",
                message=f"no rule leads to outcome {outcome.code}",
                subject=outcome.code,
            )
        elif not outcome.declares_care_types:
            yield Finding(
                severity=Severity.ERROR,
                code="missing_care_types",
                message=f"outcome {outcome.code} declares neither care_types (use [] for none) "
                "nor care_types_by_urgency",
                rule_id=first_use[outcome.code],
                subject=outcome.code,
            )
