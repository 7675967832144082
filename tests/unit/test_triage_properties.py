"""Properties of the triage evaluator on west-2026.1 (docs/domain.md §4): one outcome per complete
answer
set, explanations that replay, and partial answers that never claim what a completion would change.
"""

import itertools
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


def reference_advice(answers: dict[str, Answer]) -> tuple[str, str | None]:
    """The rule that fires and, when its outcome needs a place, the target group (from the YAML)."""
    rule = first_rule(answers)
    outcome = next(o for o in RAW["outcomes"] if o["code"] == rule["outcome"])
    needs_place = bool(outcome.get("care_types") or outcome.get("care_types_by_urgency"))
    if not needs_place:
        return rule["id"], None
    groups = RAW["target_group"]
    group = next(
        (g["target_group"] for g in groups.get("rules", []) if holds(g["when"], answers)),
        groups["default"],
    )
    return rule["id"], group


@given(complete_answers, st.sets(st.sampled_from(sorted(q.id for q in WEST.questions)), max_size=9))
def test_open_questions_are_exactly_those_whose_answer_can_change_the_advice(
    full: dict[str, Answer], dropped: set[str]
) -> None:
    partial = {k: v for k, v in full.items() if k not in dropped}
    missing = sorted(dropped)
    domains = [WEST.question_map[name].domain for name in missing]
    # Every completion of the partial answers, by brute force.
    advice = {
        values: reference_advice(partial | dict(zip(missing, values, strict=True)))
        for values in itertools.product(*domains)
    }
    changes_advice = {
        name
        for i, name in enumerate(missing)
        if any(
            len({advice[(*values[:i], other, *values[i + 1 :])] for other in domains[i]}) > 1
            for values in advice
        )
    }

    result = evaluate(WEST, partial)

    assert set(result.open_questions) == changes_advice
    assert result.open_questions == WEST.in_asking_order(changes_advice)
