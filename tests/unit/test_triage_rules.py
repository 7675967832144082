"""Rule set west-2026.1 as a table (docs/domain.md §4): each rule, first-match order, partial
answers."""

from pathlib import Path

import pytest
import yaml

from app.enums import CareType, TargetGroup
from app.triage import rules
from app.triage.rules import (
    All,
    Answer,
    AnyOf,
    Is,
    Not,
    RuleSetError,
    Verdict,
    builtin_ruleset_names,
    evaluate,
    load_builtin_ruleset,
    load_ruleset_text,
    parse_condition,
)

WEST = load_builtin_ruleset("west-2026.1")

# A patient for whom no rule before the catch-all holds; each example changes only what it names.
NEUTRAL: dict[str, Answer] = {
    "physician_assessed": True,
    "needs_specialist_care": False,
    "acute_psychiatry": False,
    "wlz_status": "none",
    "crisis_criteria_met": False,
    "permanent_24h_need": False,
    "life_expectancy_lt_3m": False,
    "rehab_goals": False,
    "trainable": False,
    "return_home_expected": False,
    "hospital_stay_ended_le_7d_or_acute_geriatric_assessment": False,
    "lived_in_nursing_home": False,
    "medical_instability": False,
    "unplannable_nursing": False,
    "adl_takeover": False,
    "needs_multidisciplinary_so_treatment": False,
    "carer_unavailable": False,
    "home_safe_with_nursing": False,
    "dementia_or_behaviour": False,
}
GRZ_CANDIDATE: dict[str, Answer] = {
    "rehab_goals": True,
    "trainable": True,
    "return_home_expected": True,
    "hospital_stay_ended_le_7d_or_acute_geriatric_assessment": True,
}

OWN_EXAMPLES = [
    ("R0", {"physician_assessed": False}, "stop_assess_first", ()),
    ("R1", {"needs_specialist_care": True}, "hospital", ()),
    ("R2", {"acute_psychiatry": True}, "ggz_crisis", (CareType.GGZ_CRISIS,)),
    (
        "R3",
        {"wlz_status": "granted", "crisis_criteria_met": True},
        "wlz_crisis",
        (CareType.WLZ_CRISIS,),
    ),
    ("R4", {"wlz_status": "granted"}, "wlz_regular", ()),
    (
        "R5",
        {"permanent_24h_need": True, "crisis_criteria_met": True},
        "wlz_crisis",
        (CareType.WLZ_CRISIS,),
    ),
    ("R6", {"life_expectancy_lt_3m": True}, "elv_palliative", (CareType.ELV_PALLIATIVE,)),
    ("R7", GRZ_CANDIDATE, "grz", (CareType.GRZ,)),
    (
        "R8",
        {"unplannable_nursing": True, "needs_multidisciplinary_so_treatment": True},
        "elv_high",
        (CareType.ELV_HIGH,),
    ),
    ("R9", {"adl_takeover": True}, "elv_low", (CareType.ELV_LOW,)),
    ("R10", {"carer_unavailable": True}, "respite_wmo", ()),
    ("R11", {"home_safe_with_nursing": True}, "district_nursing", (CareType.DISTRICT_NURSING,)),
    ("R12", {}, "home_advice", ()),
]


def test_builtin_rule_sets_are_listed_and_activatable() -> None:
    assert builtin_ruleset_names() == ["west-2026.1"]
    assert (WEST.version, WEST.activatable) == ("west-2026.1", True)
    assert [rule.id for rule in WEST.rules] == [f"R{i}" for i in range(13)]


def test_own_examples_cover_every_rule() -> None:
    assert [rule_id for rule_id, *_ in OWN_EXAMPLES] == [rule.id for rule in WEST.rules]


@pytest.mark.parametrize(
    ("rule_id", "changes", "outcome", "care_types"),
    OWN_EXAMPLES,
    ids=[example[0] for example in OWN_EXAMPLES],
)
def test_each_rule_fires_on_its_own_example(
    rule_id: str, changes: dict[str, Answer], outcome: str, care_types: tuple[CareType, ...]
) -> None:
    result = evaluate(WEST, NEUTRAL | changes, unified_urgency=4)

    assert (result.rule_id, result.outcome, result.care_types) == (rule_id, outcome, care_types)
    assert (result.complete, result.open_questions) == (True, ())


@pytest.mark.parametrize(
    ("changes", "rule_id"),
    [
        pytest.param({k: True for k, v in NEUTRAL.items() if v is False}, "R1", id="all-true"),
        pytest.param(
            {"physician_assessed": False, "needs_specialist_care": True}, "R0", id="R0-before-R1"
        ),
        pytest.param(
            {"needs_specialist_care": True, "acute_psychiatry": True}, "R1", id="R1-before-R2"
        ),
        pytest.param(
            {"wlz_status": "granted", "crisis_criteria_met": True, "permanent_24h_need": True},
            "R3",
            id="R3-before-R5",
        ),
        pytest.param(
            {"wlz_status": "expected", "crisis_criteria_met": True, "permanent_24h_need": True},
            "R5",
            id="R5-when-wlz-only-expected",
        ),
        pytest.param(
            {"wlz_status": "granted", "life_expectancy_lt_3m": True}, "R4", id="wlz-excludes-elv"
        ),
        pytest.param(GRZ_CANDIDATE | {"life_expectancy_lt_3m": True}, "R6", id="R6-before-R7"),
        pytest.param(GRZ_CANDIDATE | {"adl_takeover": True}, "R7", id="grz-before-elv"),
        pytest.param(
            GRZ_CANDIDATE | {"lived_in_nursing_home": True, "adl_takeover": True},
            "R9",
            id="no-grz-after-nursing-home",
        ),
        pytest.param(
            {"medical_instability": True, "needs_multidisciplinary_so_treatment": True},
            "R8",
            id="R8-before-R9",
        ),
        pytest.param(
            {"medical_instability": True, "carer_unavailable": True}, "R9", id="unstable-no-respite"
        ),
        pytest.param(
            {"carer_unavailable": True, "home_safe_with_nursing": True}, "R10", id="R10-before-R11"
        ),
        pytest.param(
            {"needs_multidisciplinary_so_treatment": True, "dementia_or_behaviour": True},
            "R12",
            id="no-elv-indication",
        ),
    ],
)
def test_first_match_wins(changes: dict[str, Answer], rule_id: str) -> None:
    assert evaluate(WEST, NEUTRAL | changes, unified_urgency=5).rule_id == rule_id


def test_explanation_names_only_the_deciding_inputs() -> None:
    result = evaluate(WEST, NEUTRAL | {"adl_takeover": True})

    # R5 fails on permanent_24h_need alone, R7 on rehab_goals, R8 on the SO-treatment question.
    assert result.deciding_inputs == {
        "physician_assessed": True,
        "needs_specialist_care": False,
        "acute_psychiatry": False,
        "wlz_status": "none",
        "permanent_24h_need": False,
        "life_expectancy_lt_3m": False,
        "rehab_goals": False,
        "adl_takeover": True,
        "needs_multidisciplinary_so_treatment": False,
        "dementia_or_behaviour": False,
    }
    assert (result.basis, result.rationale_en) == (
        "LHV Afwegingsinstrument ELV (https://www.lhv.nl/afwegingsinstrument)",
        "Medical instability, unplannable care or taking over daily living activities calls for "
        "a short stay with 24-hour care nearby.",
    )


def test_r5_records_expected_wlz_and_starts_a_ciz_request() -> None:
    result = evaluate(WEST, NEUTRAL | {"permanent_24h_need": True, "crisis_criteria_met": True})

    assert result.sets == {"wlz_status": "expected"}
    assert [action.code for action in result.actions] == [
        "start_ciz_request",
        "report_admission_vecozo",
    ]


def test_dementia_sets_the_target_group_not_the_outcome() -> None:
    plain = evaluate(WEST, NEUTRAL | {"adl_takeover": True})
    dementia = evaluate(WEST, NEUTRAL | {"adl_takeover": True, "dementia_or_behaviour": True})

    assert (plain.outcome, plain.target_group) == ("elv_low", TargetGroup.SOMATIC)
    assert (dementia.outcome, dementia.target_group) == ("elv_low", TargetGroup.PSYCHOGERIATRIC)


@pytest.mark.parametrize(
    ("level", "care_types"),
    [
        (0, (CareType.DISTRICT_NURSING_ACUTE,)),
        (3, (CareType.DISTRICT_NURSING_ACUTE,)),
        (4, (CareType.DISTRICT_NURSING,)),
        (5, (CareType.DISTRICT_NURSING,)),
    ],
)
def test_district_nursing_is_acute_up_to_urgency_3(
    level: int, care_types: tuple[CareType, ...]
) -> None:
    result = evaluate(WEST, NEUTRAL | {"home_safe_with_nursing": True}, unified_urgency=level)

    assert (result.care_types, result.needs_urgency, result.complete) == (care_types, False, True)


def test_district_nursing_without_urgency_offers_both_and_is_incomplete() -> None:
    result = evaluate(WEST, NEUTRAL | {"home_safe_with_nursing": True})

    assert result.care_types == (CareType.DISTRICT_NURSING_ACUTE, CareType.DISTRICT_NURSING)
    assert (result.outcome, result.needs_urgency, result.complete) == (
        "district_nursing",
        True,
        False,
    )


def test_no_answers_leave_everything_open() -> None:
    result = evaluate(WEST, {})

    assert (result.outcome, result.rule_id, result.target_group) == (None, None, None)
    assert result.open_questions == tuple(q.id for q in WEST.questions)
    assert (result.deciding_inputs, result.care_types, result.complete) == ({}, (), False)


def test_one_answer_can_decide_and_no_place_means_no_target_group_question() -> None:
    result = evaluate(WEST, {"physician_assessed": False})

    assert (result.rule_id, result.complete, result.open_questions) == ("R0", True, ())
    assert (result.deciding_inputs, result.target_group) == ({"physician_assessed": False}, None)


def test_undecided_rule_keeps_outcome_open_and_asks_only_what_decides_it() -> None:
    answers = {k: v for k, v in NEUTRAL.items() if k not in {"wlz_status", "crisis_criteria_met"}}

    result = evaluate(WEST, answers)

    assert (result.outcome, result.complete) == (None, False)
    assert result.open_questions == ("wlz_status", "crisis_criteria_met")
    assert result.deciding_inputs == {
        "physician_assessed": True,
        "needs_specialist_care": False,
        "acute_psychiatry": False,
        "dementia_or_behaviour": False,
    }


def test_missing_answer_that_cannot_matter_is_not_asked() -> None:
    # Without a Wlz entitlement or a permanent 24h need, the crisis question decides nothing.
    answers = {k: v for k, v in NEUTRAL.items() if k != "crisis_criteria_met"}

    result = evaluate(WEST, answers)

    assert (result.rule_id, result.open_questions, result.complete) == ("R12", (), True)


def test_with_a_wlz_entitlement_only_the_crisis_question_decides() -> None:
    # R3 (crisis) and R4 (no crisis) cover every case with an entitlement: nothing after them can
    # fire, so their questions are not asked. A crisis bed needs a place, hence the target group.
    answers = {
        "physician_assessed": True,
        "needs_specialist_care": False,
        "acute_psychiatry": False,
    }

    result = evaluate(WEST, answers | {"wlz_status": "granted"})

    assert result.open_questions == ("crisis_criteria_met", "dementia_or_behaviour")
    assert (result.outcome, result.complete) == (None, False)


def test_a_question_shared_by_two_undecided_rules_is_asked_once_it_matters() -> None:
    # Crisis met, entitlement unknown: R3 (granted) and R5 (permanent need) both give a crisis
    # bed but not the same advice (R5 starts the CIZ request), so both questions stay open.
    answers = {k: v for k, v in NEUTRAL.items() if k not in {"wlz_status", "permanent_24h_need"}}

    result = evaluate(WEST, answers | {"crisis_criteria_met": True})

    assert result.open_questions == ("wlz_status", "permanent_24h_need")


def test_outcome_known_but_target_group_open() -> None:
    answers = {k: v for k, v in NEUTRAL.items() if k != "dementia_or_behaviour"}

    result = evaluate(WEST, answers | {"adl_takeover": True})

    assert (result.outcome, result.target_group) == ("elv_low", None)
    assert (result.open_questions, result.complete) == (("dementia_or_behaviour",), False)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"physician": True}, "unknown input 'physician' in rule set west-2026.1"),
        (
            {"physician_assessed": "yes"},
            "input 'physician_assessed' takes true or false, not 'yes'",
        ),
        ({"wlz_status": True}, "input 'wlz_status' takes one of none, expected, granted, not True"),
        (
            {"wlz_status": "pending"},
            "input 'wlz_status' takes one of none, expected, granted, not 'pending'",
        ),
    ],
)
def test_invalid_answers_are_refused(answers: dict[str, Answer], message: str) -> None:
    with pytest.raises(rules.InvalidAnswer) as caught:
        evaluate(WEST, answers)

    assert (str(caught.value), caught.value.input_id) == (message, next(iter(answers)))


def test_urgency_outside_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^unified urgency level must be 0\.\.5, got 6$"):
        evaluate(WEST, NEUTRAL, unified_urgency=6)


@pytest.mark.parametrize(
    ("condition", "answers", "verdict"),
    [
        (
            All((Is("a", frozenset({True})), Is("b", frozenset({True})))),
            {"a": False},
            Verdict(False, frozenset({"a"})),
        ),
        (
            All((Is("a", frozenset({True})), Is("b", frozenset({True})))),
            {"a": True},
            Verdict(None, frozenset({"b"})),
        ),
        (
            AnyOf((Is("a", frozenset({True})), Is("b", frozenset({True})))),
            {"b": True},
            Verdict(True, frozenset({"b"})),
        ),
        (
            AnyOf((Is("a", frozenset({True})), Is("b", frozenset({True})))),
            {"a": False, "b": False},
            Verdict(False, frozenset({"a", "b"})),
        ),
        (Not(Is("a", frozenset({True}))), {}, Verdict(None, frozenset({"a"}))),
        (All(()), {}, Verdict(True, frozenset())),
    ],
)
def test_conditions_follow_three_valued_logic(
    condition: All | AnyOf | Not, answers: dict[str, Answer], verdict: Verdict
) -> None:
    assert condition.judge(answers) == verdict


@pytest.mark.parametrize(
    "data",
    [
        "physician_assessed",
        {"not": "physician_assessed"},
        {"input": "physician_assessed", "equals": False},
        {"input": "wlz_status", "in": ["expected", "none"]},
        {"any": ["trainable", {"all": ["rehab_goals", {"input": "wlz_status", "equals": "none"}]}]},
    ],
)
def test_conditions_round_trip_through_their_yaml_form(data: object) -> None:
    condition = parse_condition(data, WEST.question_map)

    assert condition.to_data() == data
    assert parse_condition(condition.to_data(), WEST.question_map) == condition


def test_rule_set_round_trips_through_yaml() -> None:
    dumped = yaml.safe_dump(WEST.model_dump(mode="json", exclude_none=True), allow_unicode=True)

    assert load_ruleset_text(dumped) == WEST


def test_unknown_builtin_rule_set_is_refused() -> None:
    with pytest.raises(RuleSetError, match=r"^no rule set 'west-1999'; available: west-2026\.1$"):
        load_builtin_ruleset("west-1999")


def test_builtin_file_must_carry_its_own_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (Path(rules.__file__).parent / "rulesets" / "west-2026.1.yaml").read_text("utf-8")
    (tmp_path / "west-2027.1.yaml").write_text(text, "utf-8")
    monkeypatch.setattr(rules, "_RULESETS", tmp_path)

    with pytest.raises(RuleSetError) as caught:
        load_builtin_ruleset("west-2027.1")

    assert str(caught.value) == "at version: west-2027.1.yaml declares version 'west-2026.1'"


@pytest.mark.parametrize("bad", ["version: x\ntitle: \x07\n", "version: x\n\x9ftitle: y\n"])
def test_control_characters_are_a_rule_set_error_with_a_line(bad: str) -> None:
    with pytest.raises(RuleSetError) as caught:
        load_ruleset_text(bad)
    [problem] = caught.value.problems
    assert problem.message.startswith("not valid YAML")
    assert problem.line == 2
