"""Static checks on a triage rule set (docs/domain.md §4, §12.1); a set with errors may not go live.

Reachability is decided exhaustively: we walk the decision tree of the first-match table, branching
only on inputs the rules still need, which covers every answer set without enumerating them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.triage.rules import All, Answer, Condition, Question, RuleSet, match_first

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


def check_ruleset(ruleset: RuleSet) -> CheckReport:
    findings = [*_reachability(ruleset), *_inputs(ruleset), *_outcomes(ruleset)]
    return CheckReport(ruleset_version=ruleset.version, findings=tuple(findings))


def _explore(
    conditions: Sequence[Condition], questions: Sequence[Question]
) -> Iterator[tuple[dict[str, Answer], int | None]]:
    """Every leaf of the first-match decision tree: answers that settle it, and what fires."""
    stack: list[dict[str, Answer]] = [{}]
    while stack:
        answers = stack.pop()
        match = match_first(conditions, answers)
        if not match.open:
            yield answers, match.index
            continue
        # Branch on the first open question in asking order, like the questionnaire would.
        question = next(q for q in questions if q.id in match.open)
        stack.extend({**answers, question.id: value} for value in reversed(question.domain))


def _reachability(ruleset: RuleSet) -> Iterator[Finding]:
    conditions = [rule.condition for rule in ruleset.rules]
    leaves = list(_explore(conditions, ruleset.questions))
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
        winners = sorted({i for _, i in _explore(overlaps, ruleset.questions) if i is not None})
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
