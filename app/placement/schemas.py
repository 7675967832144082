"""Placement bodies: referral in, placement out, actions, holds, transfer events.

The states and actions: docs/domain.md §13.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from app.enums import (
    AdvanceCarePlanning,
    CareType,
    Feature,
    PatientGroup,
    Sex,
    SexPolicy,
    TargetGroup,
)
from app.placement.states import Action, CancelReason, DeclineReason, EventType, State
from app.schemas import Schema, ShortText, Text, UtcDateTime


class OriginSetting(StrEnum):
    """Where the patient is referred from."""

    SEH = "seh"  # emergency department
    HAP = "hap"  # out-of-hours GP post
    RAV = "rav"  # ambulance service
    HOSPITAL_WARD = "hospital_ward"  # in-patient (transfer desk); has medically_ready_at
    GGZ_CLINIC = "ggz_clinic"  # in-patient of a mental-health clinic; has medically_ready_at
    GP = "gp"
    HOME = "home"


class EscalationLevel(StrEnum):
    SUBREGION = "subregion"
    REGION = "region"
    NATIONAL = "national"


PatientIdentifier = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description=(
            "The referrer's patient identifier (BSN or hospital number). Only its HMAC is kept "
            "(patient_key); the identifier itself is never stored."
        ),
        examples=["999999990"],
    ),
]
BirthYear = Annotated[int, Field(ge=1890, le=2200, strict=True)]
Reference = Annotated[str, Field(min_length=1, max_length=64)]


class UrgencyIn(Schema):
    system: Annotated[str, Field(min_length=1, max_length=30, examples=["nts"])]
    code: Annotated[str, Field(min_length=1, max_length=20, examples=["U3"])]


class UrgencyRead(Schema):
    system: str
    code: str
    level: int = Field(description="Unified urgency level 0-5 (docs/domain.md §7)")


class TriageIn(Schema):
    """A triage done elsewhere (the referrer's own instrument), embedded in the request."""

    care_type: CareType = Field(description="The care type the triage advises")
    rule_set: Annotated[str, Field(min_length=1, max_length=60)] = "external"
    outcome: Annotated[str | None, Field(max_length=40)] = None


class PlacementCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "origin_setting": "hospital_ward",
                    "patient_identifier": "999990123",
                    "birth_year": 1941,
                    "sex": "female",
                    "target_group": "somatic",
                    "care_type": "elv_high",
                    "urgency": {"system": "nts", "code": "U4"},
                    "medically_ready_at": "2026-11-23T08:00:00Z",
                    "subregion": "leiden",
                    "consent_given_at": "2026-11-23T09:00:00Z",
                    "triage": {"care_type": "elv_high", "rule_set": "west-2026.1"},
                }
            ]
        }
    )

    referrer_organisation_id: uuid.UUID | None = Field(
        default=None, description="Default: the key's organisation (required for admin keys)"
    )
    origin_setting: OriginSetting
    patient_identifier: PatientIdentifier
    birth_year: BirthYear
    sex: Sex
    target_group: TargetGroup
    care_type: CareType = Field(description="Desired care type")
    patient_group: PatientGroup | None = Field(
        default=None, description="Patient group, for bottlenecks by group (absent: unknown)"
    )
    advance_care_planning: AdvanceCarePlanning | None = Field(
        default=None,
        description="Whether advance care planning is recorded for the patient (absent: unknown)",
    )
    features: Annotated[list[Feature], Field(default_factory=list, max_length=len(Feature))]
    room_sex: SexPolicy | None = None
    care_needs: ShortText | None = Field(
        default=None, description="Short free text on care needs; never names or identifiers"
    )
    urgency: UrgencyIn
    medically_ready_at: UtcDateTime | None = Field(
        default=None, description="Hospital in-patients: when the patient was medically ready"
    )
    subregion: Annotated[str | None, Field(max_length=64, description="id or code")] = None
    consent_given_at: UtcDateTime | None = Field(
        default=None, description="Consent to share with follow-up care; required before a hold"
    )
    triage: TriageIn | None = None
    occurred_at: UtcDateTime | None = None


class OccurredIn(Schema):
    occurred_at: UtcDateTime | None = Field(
        default=None, description="Clinical time; default now, not in the future"
    )


class HoldCreate(OccurredIn):
    unit_id: uuid.UUID


class DeclineIn(OccurredIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "staff_shortage"}]})

    reason: DeclineReason
    reason_text: Annotated[Text | None, Field(max_length=500)] = None

    @model_validator(mode="after")
    def _other_needs_text(self) -> Self:
        if self.reason == "other" and not (self.reason_text or "").strip():
            raise ValueError("reason 'other' needs reason_text")
        return self


class CancelIn(OccurredIn):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "recovered"}]})

    reason: CancelReason
    reason_text: Annotated[Text | None, Field(max_length=500)] = None

    @model_validator(mode="after")
    def _other_needs_text(self) -> Self:
        if self.reason == "other" and not (self.reason_text or "").strip():
            raise ValueError("reason 'other' needs reason_text")
        return self


class EventIn(OccurredIn):
    """A clinical event, consent, or a manual escalation (docs/domain.md §8, §13)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "medically_ready"},
                {"type": "escalated", "level": "region", "reason": "no place in subregion"},
            ]
        }
    )

    type: Literal[
        "medically_ready", "ready_revoked", "hospital_admitted", "consent_given", "escalated"
    ]
    level: EscalationLevel | None = Field(default=None, description="escalated only")
    reason: Annotated[Text | None, Field(max_length=500)] = None

    @model_validator(mode="after")
    def _level_only_for_escalation(self) -> Self:
        if self.type == "escalated":
            if self.level is None or self.level == EscalationLevel.SUBREGION:
                raise ValueError("escalated needs level 'region' or 'national'")
            if not (self.reason or "").strip():
                raise ValueError("escalated needs a reason")
        elif self.level is not None:
            raise ValueError("level is only allowed with type 'escalated'")
        return self


class HoldRead(Schema):
    id: uuid.UUID
    placement_id: uuid.UUID
    unit_id: uuid.UUID
    organisation_id: uuid.UUID
    status: Literal["active", "admitted", "declined", "expired", "cancelled"]
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    admitted_at: datetime | None = None
    released_at: datetime | None = None
    release_reason: str | None = None


class OwnerRead(Schema):
    """The case owner (docs/domain.md §15): a person or key, or the referring organisation."""

    id: uuid.UUID | None = Field(
        description="The person's user id or the key's id; null when the referring organisation "
        "as a whole owns the case"
    )
    name: str = Field(description="Display name of the person, key or organisation")
    organisation_id: uuid.UUID | None
    since: datetime


class OwnerIn(Schema):
    """Take the case, or hand it over to a person (user id) or back to the referrer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"action": "take"},
                {"action": "hand_over", "to": "3f0c1c52-4c1e-4bd0-9a59-1d5f3f1c2a10"},
                {"action": "hand_over", "to": "referrer"},
            ]
        }
    )

    action: Literal["take", "hand_over"]
    to: uuid.UUID | Literal["referrer"] | None = Field(
        default=None,
        description="hand_over only: a user id (a triagist of the region or a person of the "
        "referring organisation), or 'referrer' for the referring organisation",
    )

    @model_validator(mode="after")
    def _to_only_for_hand_over(self) -> Self:
        if self.action == "hand_over" and self.to is None:
            raise ValueError("hand_over needs 'to': a user id or 'referrer'")
        if self.action == "take" and self.to is not None:
            raise ValueError("'to' is only allowed with action 'hand_over'")
        return self


class NoteIn(Schema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"text": "Daughter reachable after 18:00."}]}
    )

    text: Annotated[Text, Field(min_length=1, max_length=4000)]

    @model_validator(mode="after")
    def _not_blank(self) -> Self:
        if not self.text.strip():
            raise ValueError("text must not be blank")
        return self


class NoteRead(Schema):
    id: int
    placement_id: uuid.UUID
    author_id: uuid.UUID
    author_name: str
    author_organisation_id: uuid.UUID | None
    created_at: datetime
    text: str


class PlacementRead(Schema):
    id: uuid.UUID
    state: State
    allowed_actions: list[Action]
    version: int
    referrer_organisation_id: uuid.UUID
    region_id: uuid.UUID
    subregion_id: uuid.UUID | None
    origin_setting: OriginSetting
    patient_key: str = Field(description="HMAC-SHA256 of the identifier the referrer sent")
    birth_year: int
    sex: Sex
    target_group: TargetGroup
    care_type: CareType
    patient_group: PatientGroup | None = Field(
        default=None, description="null: not given (unknown)"
    )
    advance_care_planning: AdvanceCarePlanning | None = Field(
        default=None, description="null: not given (unknown)"
    )
    features: list[Feature]
    room_sex: SexPolicy | None
    care_needs: str | None
    urgency: UrgencyRead
    triage_rule_set: str | None
    triage_outcome: str | None
    consent_given_at: datetime | None
    medically_ready_at: datetime | None
    escalation_level: EscalationLevel
    escalation_due_at: datetime | None
    current_hold: HoldRead | None
    created_at: datetime
    updated_at: datetime
    triaged_at: datetime | None
    accepted_at: datetime | None
    transferred_at: datetime | None
    cancelled_at: datetime | None
    owner: OwnerRead | None = Field(
        default=None, description="The case owner; null while nobody owns the case"
    )
    unowned_overdue: bool = Field(
        default=False,
        description="Open, without an owner, and waiting longer than its urgency allows",
    )


class HistoryItem(Schema):
    """An earlier placement of the same patient, with its case notes."""

    id: uuid.UUID
    state: State
    referrer_organisation_id: uuid.UUID
    care_type: CareType
    urgency: UrgencyRead
    triage_outcome: str | None
    created_at: datetime
    transferred_at: datetime | None
    cancelled_at: datetime | None
    notes: list[NoteRead]


class HistoryRead(Schema):
    placement_id: uuid.UUID
    previous_placements: list[HistoryItem]


class TransferEventRead(Schema):
    id: int
    placement_id: uuid.UUID
    seq: int
    type: EventType
    occurred_at: datetime
    recorded_at: datetime
    actor_key_id: uuid.UUID | None
    actor_organisation_id: uuid.UUID | None
    from_state: State | None
    to_state: State
    unit_id: uuid.UUID | None
    hold_id: uuid.UUID | None
    reason: str | None
    level: EscalationLevel | None
    payload: dict[str, Any]


class SweepResult(Schema):
    expired_holds: int
    escalated: int
    unowned_overdue: int = 0
