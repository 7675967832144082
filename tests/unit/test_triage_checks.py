"""Rule-set validation on load and the static checks (docs/domain.md §12.1); refusals name the rule
and the line."""

import pytest
import yaml

from app.triage.checks import CheckReport, Finding, FindingCode, Severity, check_ruleset
from app.triage.rules import (
    RuleSet,
    RuleSetError,
    RuleSetProblem,
    evaluate,
    load_ruleset_text,
)

QUESTIONS = """\
  - {id: a, type: boolean, text_nl: Vraag a, text_en: Question a}
  - {id: b, type: boolean, text_nl: Vraag b, text_en: Question b}
  - {id: kind, type: enum, values: [x, y, z], text_nl: Soort, text_en: Kind}
  - {id: pg, type: boolean, informational: true, text_nl: PG, text_en: PG}
"""
OUTCOMES = """\
  - {code: place, label_nl: P, label_en: P, advice_nl: P, advice_en: P, care_types: [elv_low]}
  - {code: other, label_nl: O, label_en: O, advice_nl: O, advice_en: O, care_types: []}
  - {code: rest, label_nl: R, label_en: R, advice_nl: R, advice_en: R, care_types: []}
"""


def rule(rule_id: str, when: str, outcome: str = "place") -> str:
    """A rule in block style; `when` may span lines (indent continuation lines by 6)."""
    return (
        f"  - id: {rule_id}\n    when: {when}\n    outcome: {outcome}\n"
        "    basis: test\n    rationale_nl: n\n    rationale_en: e\n"
    )


CATCH_ALL = rule("R9", "{}", "rest").replace("when: {}", "otherwise: true")
# Reads every non-informational input, uses every outcome and ends in a catch-all: checks clean.
CLEAN_RULES = (
    rule("R1", "{all: [a, b]}") + rule("R2", "{input: kind, in: [x, y]}", "other") + CATCH_ALL
)


def ruleset_text(
    rules: str = CLEAN_RULES, *, questions: str = QUESTIONS, outcomes: str = OUTCOMES
) -> str:
    return (
        "version: test-1\ntitle: Test\ndescription: Test rule set\n"
        f"questions:\n{questions}outcomes:\n{outcomes}"
        "target_group:\n  default: somatic\n"
        "  rules:\n    - {when: pg, target_group: psychogeriatric}\n"
        f"rules:\n{rules}"
    )


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def refusal(text: str) -> RuleSetProblem:
    with pytest.raises(RuleSetError) as caught:
        load_ruleset_text(text)
    (problem,) = caught.value.problems
    return problem


def report_on(rules: str) -> CheckReport:
    return check_ruleset(load_ruleset_text(ruleset_text(rules)))


def error(code: FindingCode, message: str, rule_id: str | None = None) -> Finding:
    return Finding(severity=Severity.ERROR, code=code, message=message, rule_id=rule_id)


def test_clean_rule_set_has_no_findings() -> None:
    ruleset = load_ruleset_text(ruleset_text())

    assert check_ruleset(ruleset) == CheckReport(ruleset_version="test-1", findings=())
    assert ruleset.activatable is True


# --- Refused on load


def test_unknown_input_is_refused_at_its_line() -> None:
    text = ruleset_text(rule("R1", "\n      all:\n        - a\n        - bb") + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message="unknown input 'bb'; did you mean 'b'?",
        rule_id="R1",
        line=line_of(text, "- bb"),
        location="rules[0].when.all[1]",
    )


def test_unknown_outcome_is_refused() -> None:
    text = ruleset_text(rule("R1", "a", "hospital") + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message="unknown outcome 'hospital'; declared: place, other, rest",
        rule_id="R1",
        line=line_of(text, "outcome: hospital"),
        location="rules[0].outcome",
    )


@pytest.mark.parametrize(
    ("when", "message", "location"),
    [
        (
            "{alll: [a]}",
            "unknown condition form with keys ['alll']; use one of {all: [...]}, {any: [...]}, "
            "{not: ...}, {input: x, equals: v}, {input: x, in: [...]} or x",
            "rules[0].when",
        ),
        ("{all: []}", "all takes a non-empty list of conditions", "rules[0].when.all"),
        ("{any: a}", "any takes a non-empty list of conditions", "rules[0].when.any"),
        (
            "{not: 3}",
            "a condition is an input name or a mapping with all, any, not or input",
            "rules[0].when.not",
        ),
        (
            "kind",
            "input 'kind' is not boolean; write {input: kind, equals: ...}",
            "rules[0].when",
        ),
        (
            "{input: kind, equals: w}",
            "input 'kind' takes one of x, y, z, not 'w'",
            "rules[0].when.equals",
        ),
        (
            "{input: kind, in: [x, true]}",
            "input 'kind' takes one of x, y, z, not True",
            "rules[0].when.in[1]",
        ),
        ("{input: kind, in: x}", "in takes a non-empty list of values", "rules[0].when.in"),
        (
            "{input: a, equals: 'yes'}",
            "input 'a' takes true or false, not 'yes'",
            "rules[0].when.equals",
        ),
        ("{input: 7, equals: true}", "unknown input 7", "rules[0].when.input"),
    ],
)
def test_malformed_condition_is_refused_naming_the_rule(
    when: str, message: str, location: str
) -> None:
    text = ruleset_text(rule("R1", when) + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message=message, rule_id="R1", line=line_of(text, f"when: {when}"), location=location
    )


def test_duplicate_rule_id_is_refused() -> None:
    text = ruleset_text(rule("R1", "a") + rule("R1", "b") + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message="duplicate rule id 'R1'",
        rule_id="R1",
        line=line_of(text, "when: b") - 1,  # the second R1 starts on the line above
        location="rules[1]",
    )


@pytest.mark.parametrize(
    "rule_text",
    [
        rule("R1", "a").replace("    outcome:", "    otherwise: true\n    outcome:"),
        rule("R1", "a").replace("    when: a\n", ""),
    ],
    ids=["both", "neither"],
)
def test_rule_needs_exactly_one_of_when_and_otherwise(rule_text: str) -> None:
    text = ruleset_text(rule_text + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message="a rule has either a when condition or otherwise: true",
        rule_id="R1",
        line=line_of(text, "id: R1"),
        location="rules[0]",
    )


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ("{kind: w}", "input 'kind' takes one of x, y, z, not 'w'"),
        ("{kinds: x}", "unknown input 'kinds'; did you mean 'kind'?"),
        ("{a: 1}", "input 'a' takes true or false, not 1"),
    ],
)
def test_sets_must_name_known_inputs_and_values(sets: str, message: str) -> None:
    text = ruleset_text(rule("R1", "a") + f"    sets: {sets}\n" + CATCH_ALL)

    problem = refusal(text)

    assert (problem.rule_id, problem.line, problem.message) == (
        "R1",
        line_of(text, "sets:"),
        message,
    )


def test_sets_must_be_a_mapping() -> None:
    text = ruleset_text(rule("R1", "a") + "    sets: [a]\n" + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message="Input should be a valid dictionary",
        rule_id="R1",
        line=line_of(text, "sets:"),
        location="rules[0].sets",
    )


def test_rule_without_id_is_located_by_line() -> None:
    text = ruleset_text(rule("R1", "a").replace("  - id: R1\n    when", "  - when") + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message="Field required", line=line_of(text, "- when: a"), location="rules[0].id"
    )


def test_missing_field_points_at_the_rule() -> None:
    text = ruleset_text(rule("R1", "a").replace("    basis: test\n", "") + CATCH_ALL)

    assert refusal(text) == RuleSetProblem(
        message="Field required",
        rule_id="R1",
        line=line_of(text, "id: R1"),
        location="rules[0].basis",
    )


@pytest.mark.parametrize(
    ("section", "added", "message", "location"),
    [
        (
            "questions",
            "{id: a, type: boolean, text_nl: A, text_en: A}",
            "duplicate question id 'a'",
            "questions[4]",
        ),
        (
            "questions",
            "{id: c, type: enum, values: [x], text_nl: C, text_en: C}",
            "an enum question needs at least two distinct values",
            "questions[4].values",
        ),
        (
            "questions",
            "{id: c, type: boolean, values: [x, y], text_nl: C, text_en: C}",
            "a boolean question takes no values",
            "questions[4].values",
        ),
        (
            "outcomes",
            "{code: rest, label_nl: R, label_en: R, advice_nl: R, advice_en: R}",
            "duplicate outcome code 'rest'",
            "outcomes[3]",
        ),
        (
            "outcomes",
            "{code: both, label_nl: B, label_en: B, advice_nl: B, advice_en: B, care_types: [], "
            "care_types_by_urgency: [{max_level: 5, care_types: [grz]}]}",
            "declare care_types or care_types_by_urgency, not both",
            "outcomes[3]",
        ),
        (
            "outcomes",
            "{code: gap, label_nl: G, label_en: G, advice_nl: G, advice_en: G, "
            "care_types_by_urgency: [{max_level: 3, care_types: [grz]}]}",
            "care_types_by_urgency needs ascending max_level ending at 5",
            "outcomes[3].care_types_by_urgency",
        ),
    ],
)
def test_questions_and_outcomes_are_validated(
    section: str, added: str, message: str, location: str
) -> None:
    parts = {"questions": QUESTIONS, "outcomes": OUTCOMES}
    parts[section] += f"  - {added}\n"
    text = ruleset_text(**parts)

    assert refusal(text) == RuleSetProblem(
        message=message, line=line_of(text, added), location=location
    )


def test_unknown_care_type_is_refused() -> None:
    text = ruleset_text(outcomes=OUTCOMES.replace("[elv_low]", "[elv_medium]"))

    problem = refusal(text)

    assert (problem.location, problem.line) == (
        "outcomes[0].care_types[0]",
        line_of(text, "elv_medium"),
    )
    assert problem.message.startswith("Input should be 'elv_low', 'elv_high'")


NOT_A_MAPPING = "a rule set is a mapping with version, title, questions, outcomes and rules"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "version: [",
            RuleSetProblem(
                message="not valid YAML: expected the node content, but found '<stream end>'",
                line=1,
            ),
        ),
        ("", RuleSetProblem(message=NOT_A_MAPPING)),
        ("- a\n- b\n", RuleSetProblem(message=NOT_A_MAPPING, line=1)),
    ],
    ids=["syntax", "empty", "list"],
)
def test_unreadable_documents_are_refused(text: str, problem: RuleSetProblem) -> None:
    assert refusal(text) == problem


def test_error_message_lists_every_problem_with_its_place() -> None:
    text = ruleset_text(rule("R1", "bb") + rule("R2", "a", "nowhere") + CATCH_ALL)

    with pytest.raises(RuleSetError) as caught:
        load_ruleset_text(text)

    assert str(caught.value) == (
        f"line {line_of(text, 'when: bb')}, rule R1, at rules[0].when: unknown input 'bb'; "
        "did you mean 'b'?\n"
        f"line {line_of(text, 'outcome: nowhere')}, rule R2, at rules[1].outcome: "
        "unknown outcome 'nowhere'; declared: place, other, rest"
    )


def test_rule_sets_are_only_built_by_the_loader() -> None:
    with pytest.raises(ValueError, match=r"rule sets are built with load_ruleset_text\(\)"):
        RuleSet.model_validate(yaml.safe_load(ruleset_text()))


# --- Reported by the static checks


def test_shadowed_rule_is_reported_with_the_rules_that_win() -> None:
    rules = rule("R1", "a") + rule("R2", "{all: [a, b]}") + rule("R3", "{input: kind, equals: x}")

    assert report_on(rules + CATCH_ALL).errors == (
        error("shadowed_rule", "rule R2 can never fire: earlier rules always win: R1", "R2"),
    )


def test_rule_shadowed_by_several_earlier_rules_names_them_all() -> None:
    rules = rule("R1", "a") + rule("R2", "{not: a}", "other")
    rules += rule("R3", "{input: kind, in: [x, y, z]}")

    report = report_on(rules + CATCH_ALL)

    assert report.errors == (
        error("shadowed_rule", "rule R3 can never fire: earlier rules always win: R1, R2", "R3"),
        error("shadowed_rule", "rule R9 can never fire: earlier rules always win: R1, R2", "R9"),
    )
    assert report.warnings == (
        Finding(
            severity=Severity.WARNING,
            code="unused_input",
            message="no rule reads input b; remove it or mark it informational",
            subject="b",
        ),
    )
    assert report.activatable is False


def test_contradictory_rule_is_unsatisfiable() -> None:
    rules = rule("R1", "{all: [a, {not: a}]}") + rule("R2", "{all: [b, {input: kind, equals: x}]}")

    assert report_on(rules + CATCH_ALL).errors == (
        error("unsatisfiable_rule", "rule R1 can never fire: its condition is never true", "R1"),
    )


def test_missing_catch_all_is_reported_with_an_unmatched_answer_set() -> None:
    rules = rule("R1", "{all: [a, b]}") + rule("R2", "{input: kind, equals: x}", "other")
    rules += rule("R3", "{not: b}", "rest")

    assert report_on(rules).findings == (
        error(
            "no_catch_all",
            'the answers {"a": false, "b": true, "kind": "y"} match no rule; '
            "end the table with an `otherwise: true` rule",
        ),
    )


def test_empty_table_matches_nothing() -> None:
    assert report_on("  []\n").errors == (
        error(
            "no_catch_all",
            "the answers {} match no rule; end the table with an `otherwise: true` rule",
        ),
    )


def test_exhaustive_table_needs_no_otherwise() -> None:
    rules = rule("R1", "{all: [a, b, {input: kind, equals: x}]}") + rule("R2", "{not: a}", "other")
    rules += rule("R3", "a", "rest")

    assert report_on(rules).findings == ()


def test_informational_input_must_not_decide_the_outcome() -> None:
    assert report_on(CLEAN_RULES.replace("{all: [a, b]}", "{all: [a, b, pg]}")).findings == (
        Finding(
            severity=Severity.ERROR,
            code="informational_input_decides",
            message="input pg is informational but decides the outcome in R1; "
            "drop informational: true or the reference",
            rule_id="R1",
            subject="pg",
        ),
    )


def test_outcome_without_care_type_mapping_is_an_error_and_unused_outcome_a_warning() -> None:
    outcomes = OUTCOMES.replace(", care_types: []}", "}")
    outcomes += "  - {code: spare, label_nl: S, label_en: S, advice_nl: S, advice_en: S}\n"

    report = check_ruleset(load_ruleset_text(ruleset_text(outcomes=outcomes)))

    assert report.findings == (
        Finding(
            severity=Severity.ERROR,
            code="missing_care_types",
            message="outcome other declares neither care_types (use [] for none) "
            "nor care_types_by_urgency",
            rule_id="R2",
            subject="other",
        ),
        Finding(
            severity=Severity.ERROR,
            code="missing_care_types",
            message="outcome rest declares neither care_types (use [] for none) "
            "nor care_types_by_urgency",
            rule_id="R9",
            subject="rest",
        ),
        Finding(
            severity=Severity.WARNING,
            code="unused_outcome",
            message="no rule leads to outcome spare",
            subject="spare",
        ),
    )


def test_an_input_written_into_a_rule_that_cannot_change_it_is_not_asked() -> None:
    # R1 reads a, but both answers to a leave R1 firing exactly when b holds: only b decides.
    redundant = rule("R1", "{any: [{all: [a, b]}, {all: [{not: a}, b]}]}", "other") + CATCH_ALL
    ruleset = load_ruleset_text(ruleset_text(redundant))

    assert evaluate(ruleset, {}).open_questions == ("b",)
    assert evaluate(ruleset, {"a": True}).open_questions == ("b",)


def test_a_rule_set_too_large_to_check_is_refused_naming_the_limit() -> None:
    ruleset = load_ruleset_text(ruleset_text())

    with pytest.raises(RuleSetError, match="too large to check"):
        check_ruleset(ruleset, max_work=1)


def test_a_rule_set_with_too_many_questions_is_refused() -> None:
    many = "".join(
        f"  - {{id: q{i}, type: boolean, text_nl: V{i}, text_en: Q{i}}}\n" for i in range(41)
    )

    problem = refusal(ruleset_text(questions=QUESTIONS + many))

    assert "at most 40 questions" in problem.message
