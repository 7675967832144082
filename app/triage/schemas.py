"""Triage and urgency bodies: rule-set upload and listing, the questionnaire, advice, urgency."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    Field,
    JsonValue,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.enums import CareType, Feature, Sex, TargetGroup
from app.schemas import Schema, Text, UtcDateTime

# Five times west-2026.1; even fully \u-escaped it stays below the 1 MB body limit.
MAX_SOURCE_CHARS = 80_000
UnifiedLevelIn = Annotated[int, Field(ge=0, le=5, strict=True)]

# --- rule sets


class RuleSetUpload(Schema):
    """A region's own rule set: the YAML text (format of app/triage/rulesets/west-2026.1.yaml)."""

    source: Annotated[Text, Field(min_length=1, max_length=MAX_SOURCE_CHARS)] = Field(
        description="The rule set as YAML text; a JSON document is valid YAML too"
    )
    activate: StrictBool = Field(
        default=False, description="Activate at once when the static checks find no errors"
    )


class FindingRead(Schema):
    severity: Literal["error", "warning"]
    code: str = Field(examples=["shadowed_rule"])
    message: str
    rule_id: str | None
    subject: str | None = Field(description="The question or outcome concerned")


class CheckReportRead(Schema):
    activatable: bool = Field(description="No errors: the rule set may be activated")
    errors: int
    warnings: int
    findings: list[FindingRead]


class RuleSetSummary(Schema):
    version: str
    title: str
    active: bool
    builtin: bool
    activatable: bool
    loaded_at: datetime
    loaded_by_key_id: uuid.UUID | None
    activated_at: datetime | None
    activated_by_key_id: uuid.UUID | None
    check_report: CheckReportRead


class RuleSetRead(RuleSetSummary):
    description: str
    source: str = Field(description="The YAML text exactly as loaded")
    questions: int
    outcomes: int
    rules: int


class RuleSetList(Schema):
    active_version: str
    items: list[RuleSetSummary] = Field(description="Every version ever loaded, newest first")


# --- questionnaire


class QuestionRead(Schema):
    id: str
    type: Literal["boolean", "enum"]
    values: list[str] = Field(description="Allowed answers of an enum question")
    text_nl: str
    text_en: str
    help_nl: str | None
    help_en: str | None
    informational: bool = Field(
        description="Recorded (may set the target group) but never decides the outcome"
    )


class Questionnaire(Schema):
    rule_set_version: str
    title: str
    questions: list[QuestionRead] = Field(description="In asking order")


# --- urgency


class UrgencyIn(Schema):
    """Either a native code (`system` + `code`) or a unified level, not both."""

    system: Annotated[str | None, Field(max_length=30, examples=["nts"])] = None
    code: Annotated[str | None, Field(max_length=20, examples=["U3"])] = None
    level: UnifiedLevelIn | None = Field(default=None, description="Unified urgency level 0-5")

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        native = self.system is not None or self.code is not None
        if native and self.level is not None:
            raise ValueError("give either system and code, or level, not both")
        if native and (self.system is None or self.code is None):
            raise ValueError("a native urgency needs both system and code")
        if not native and self.level is None:
            raise ValueError("give system and code, or level")
        return self


class UnifiedUrgencyRead(Schema):
    system: str | None = Field(description="Native system, kept as sent (null: level given)")
    code: str | None = Field(description="Native code, kept as sent")
    level: int = Field(description="Unified urgency level 0-5 (docs/domain.md §7)")
    meaning_nl: str
    meaning_en: str


class LevelRead(Schema):
    level: int
    meaning_nl: str
    meaning_en: str


class NativeCodeRead(Schema):
    code: str
    level: int = Field(description="The unified level this code converts to (its most urgent)")
    covers: list[int] = Field(description="Every unified level the code spans")
    meaning_nl: str
    meaning_en: str


class UrgencySystemRead(Schema):
    id: str
    name: str
    source: str
    codes: list[NativeCodeRead]


class UrgencyMapRead(Schema):
    levels: list[LevelRead]
    systems: list[UrgencySystemRead]


class UrgencyConversion(Schema):
    """``system``+``code`` -> level, or ``level``+``system`` -> the native codes spanning it."""

    system: str
    level: int
    meaning_nl: str
    meaning_en: str
    codes: list[NativeCodeRead] = Field(
        description="code given: that code; level given: every code of the system spanning it"
    )


# --- triage


AnswerId = Annotated[str, Field(max_length=100)]


class TriageRequest(Schema):
    answers: Annotated[dict[AnswerId, JsonValue], Field(max_length=200)] = Field(
        default_factory=dict,
        description="Question id -> answer (true/false, or an enum value). Partial answers are "
        "fine; null or an absent id means not answered.",
        examples=[{"physician_assessed": True, "needs_specialist_care": False}],
    )
    urgency: UrgencyIn | None = Field(
        default=None,
        description="Native system + code (converted, the code kept) or a unified level. With "
        "placement_id and no urgency, the placement's own urgency is used.",
    )
    placement_id: uuid.UUID | None = Field(
        default=None, description="Store the triage on this placement: requested -> triaged"
    )
    occurred_at: UtcDateTime | None = Field(
        default=None, description="With placement_id: clinical time of the triage; default now"
    )
    override_care_type: CareType | None = Field(
        default=None, description="The triagist's choice when it differs from the advice"
    )
    override_reason: Annotated[Text | None, Field(min_length=1, max_length=1000)] = Field(
        default=None, description="Required with an override_care_type that was not advised"
    )
    search: StrictBool = Field(default=False, description="Also return the matching free places")
    subregion: Annotated[
        str | None,
        Field(max_length=64, description="id or code; default: the placement's subregion"),
    ] = None
    near: Annotated[
        str | None,
        Field(
            max_length=64,
            pattern=r"^-?[0-9]{1,2}(\.[0-9]+)?,-?[0-9]{1,3}(\.[0-9]+)?$",
            description="latitude,longitude in degrees, e.g. 52.1601,4.4970",
        ),
    ] = None
    escalate: StrictBool = False
    include_stale: StrictBool = False
    sex: Sex | None = Field(
        default=None,
        description="For the room-sex match of the search; default: the placement's patient",
    )
    features: Annotated[list[Feature], Field(max_length=len(Feature))] = Field(
        default_factory=list,
        description=(
            "Needed unit features (isolation, closed_ward, ...): required in the search, "
            "together with the placement's"
        ),
    )
    limit: Annotated[int, Field(ge=1, le=200, strict=True)] = 50

    @field_validator("override_reason")
    @classmethod
    def _reason_needs_override(cls, reason: str | None, info: ValidationInfo) -> str | None:
        # Fields validate in order; an invalid override_care_type is reported on its own.
        given = info.data.get("override_care_type", ...)
        if reason is not None and given is None:
            raise ValueError("override_reason is only allowed with override_care_type")
        return reason


class OutcomeRead(Schema):
    code: str
    label_nl: str
    label_en: str
    advice_nl: str
    advice_en: str


class ActionRead(Schema):
    code: str
    text_nl: str
    text_en: str


class RuleSetRef(Schema):
    version: str
    title: str


class OverrideRead(Schema):
    care_type: CareType
    reason: str | None
    advised_care_types: list[CareType]


class PlacementRef(Schema):
    id: uuid.UUID
    state: str


# The advice of a triage; the HTTP answer (TriageAdvice, app/flows/triage.py) adds the search.
class Advice(Schema):
    id: uuid.UUID = Field(description="The stored triage record")
    created_at: datetime
    rule_set: RuleSetRef
    complete: bool = Field(
        description="An outcome, no open question that could change it, urgency known if needed"
    )
    outcome: OutcomeRead | None = Field(description="null while open questions decide it")
    rule_id: str | None
    basis: str | None
    rationale_nl: str | None
    rationale_en: str | None
    care_types: list[CareType] = Field(
        description="Advised care types; every candidate while the urgency is still needed"
    )
    care_type: CareType | None = Field(
        description="The care type to place: the override, else the first advised one"
    )
    override: OverrideRead | None
    target_group: TargetGroup | None = Field(
        description="psychogeriatric (from dementia_or_behaviour) restricts the search to units "
        "that take PG patients; null while undecided"
    )
    required_features: list[Feature] = Field(
        description="Unit features the place must have: the needs sent in `features`. None are "
        "derived from the answers: PG suitability is the target group, and a closed ward "
        "(locked door) is a separate need the rule set does not ask about, so send closed_ward "
        "when the patient needs one"
    )
    urgency: UnifiedUrgencyRead | None
    needs_urgency: bool = Field(description="The care type depends on an urgency not given")
    deciding_inputs: dict[str, bool | str]
    open_questions: list[QuestionRead] = Field(
        description=(
            "Exactly the unanswered questions some answer to which could change the advice (the "
            "rule that fires and, when a place is needed, the target group), in asking order: "
            "ask the first one next"
        )
    )
    sets: dict[str, bool | str] = Field(description="Answers the outcome implies")
    actions: list[ActionRead] = Field(description="Follow-up tasks")
    placement: PlacementRef | None
