"""Report-now request and answer bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.enums import CareType
from app.schemas import Schema, ShortText

SubregionRef = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ReportRequestCreate(Schema):
    care_types: list[CareType] = Field(
        default_factory=list,
        max_length=len(CareType),
        description="Ask the units of these care types; empty: every care type",
    )
    subregions: list[
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    ] = Field(
        default_factory=list,
        max_length=100,
        description="Subregion ids or codes; empty: the whole region",
    )
    within_minutes: int = Field(
        ge=1, le=10_080, description="Report within this many minutes", examples=[30]
    )
    message: ShortText | None = None
    region_id: uuid.UUID | None = Field(
        default=None, description="Admin keys name the region; a triagist asks its own"
    )


class ReportRequestUnitRead(Schema):
    unit_id: uuid.UUID
    unit_name: str
    care_type: str
    organisation_id: uuid.UUID
    organisation_name: str
    answered_at: datetime | None = Field(
        description="When the unit's first capacity report after the request arrived"
    )
    answer_seconds: float | None
    within_deadline: bool | None = Field(
        description="Answered by the deadline; null while unanswered before the deadline"
    )


class ReportRequestProgress(Schema):
    targeted: int
    answered: int
    answered_within_deadline: int
    overdue: bool = Field(description="The deadline passed and some units have not answered")


class ReportRequestRead(Schema):
    id: uuid.UUID
    region_id: uuid.UUID
    care_types: list[str]
    subregion_ids: list[uuid.UUID]
    message: str | None
    within_minutes: int
    created_at: datetime
    deadline_at: datetime
    created_by_organisation_id: uuid.UUID | None
    progress: ReportRequestProgress
    units: list[ReportRequestUnitRead] = Field(
        description="The targeted units (a provider sees its own organisation's)"
    )


class ReportResponseRead(Schema):
    organisation_id: uuid.UUID
    organisation_name: str
    targeted: int
    answered: int
    answered_within_deadline: int
    share_within_deadline: float | None
    median_answer_seconds: float | None


class ReportResponsesAnswer(Schema):
    kpi: str = "report_requests"
    period_from: str
    period_to: str
    rows: list[ReportResponseRead]
    notes: list[str]
    computed_at: datetime
