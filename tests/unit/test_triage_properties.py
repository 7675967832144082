"""Properties of the triage evaluator on west-2026.1 (docs/domain.md §4): one outcome per complete
answer
set, explanations that replay, and partial answers that never claim what a completion would change.
"""

from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from app.triage import rules
from app.triage.rules import Answer, evaluate, load_builtin_ruleset

WEST = load_builtin_ruleset("west-2026.1")
# The raw YAML, read independently of the loader, feeds the reference evaluator below.
RAW = yaml.safe_load(
    (Path(rules.__file__).parent / "rulesets" / "west-2026.1.yaml").read_text("utf-8")
)

complete_answers = st.fixed_dictionaries(
    {question.id: st.sampled_from(question.domain) for question in WEST.questions}
)
urgency_levels = st.none() | st.integers(min_value=0, max_value=5)
question_ids = st.sets(st.sampled_from([question.id for question in WEST.questions]))


def holds(condition: Any, answers: dict[str, Answer]) -> bool:
    """Two-valued reference semantics of the condition language, straight from the YAML."""
    if isinstance(condition, str):
        return answers[condition] is True
    if "not" in condition:
        return not holds(condition["not"], answers)
    if "all" in condition:
        return all(holds(c, answers) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, answers) for c in condition["any"])
    return answers[condition["input"]] in condition.get("in", [condition.get("equals")])


def first_rule(answers: dict[str, Answer]) -> dict[str, Any]:
    return next(r for r in RAW["rules"] if r.get("otherwise") or holds(r["when"], answers))


@given(complete_answers, st.integers(min_value=0, max_value=5))
def test_complete_answers_give_exactly_one_outcome(answers: dict[str, Answer], level: int) -> None:
    result = evaluate(WEST, answers, unified_urgency=level)

    expected = first_rule(answers)
    assert (result.rule_id, result.outcome) == (expected["id"], expected["outcome"])
    assert (result.complete, result.open_questions) == (True, ())


@given(complete_answers, question_ids, urgency_levels)
def test_deciding_inputs_alone_replay_the_result(
    full: dict[str, Answer], dropped: set[str], level: int | None
) -> None:
    result = evaluate(WEST, {k: v for k, v in full.items() if k not in dropped}, level)

    replay = evaluate(WEST, result.deciding_inputs, level)

    if result.rule_id is not None:
        assert (replay.rule_id, replay.care_types, replay.complete) == (
            result.rule_id,
            result.care_types,
            result.complete,
        )
    if result.target_group is not None:
        assert replay.target_group == result.target_group


@given(complete_answers, question_ids, urgency_levels)
def test_partial_answers_never_claim_what_a_completion_changes(
    full: dict[str, Answer], dropped: set[str], level: int | None
) -> None:
    partial = {k: v for k, v in full.items() if k not in dropped}

    claimed = evaluate(WEST, partial, level)
    actual = evaluate(WEST, full, level)

    assert set(claimed.open_questions) <= dropped
    if claimed.rule_id is not None:
        assert (actual.rule_id, actual.outcome) == (claimed.rule_id, claimed.outcome)
    else:
        assert claimed.open_questions != ()
    if claimed.target_group is not None:
        assert actual.target_group == claimed.target_group


@given(complete_answers, st.integers(min_value=0, max_value=5))
def test_asking_only_open_questions_reaches_the_full_result(
    full: dict[str, Answer], level: int
) -> None:
    asked: dict[str, Answer] = {}
    result = evaluate(WEST, asked, level)
    for _ in WEST.questions:  # bounded: a question that stays open would loop forever
        if not result.open_questions:
            break
        question = result.open_questions[0]
        asked[question] = full[question]
        result = evaluate(WEST, asked, level)

    actual = evaluate(WEST, full, level)
    assert (result.rule_id, result.care_types, result.complete) == (
        actual.rule_id,
        actual.care_types,
        True,
    )
    # The target group is asked only when a place must be found.
    assert result.target_group == (actual.target_group if actual.care_types else None)
