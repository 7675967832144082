"""Shared Pydantic base and types: no extra fields, NUL-free strings, bounded ints, problems."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

T = TypeVar("T")
_ISO_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")


def _reject_bool(value: Any) -> Any:
    # JSON true/false would otherwise be accepted as 1/0 by lax int parsing.
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


def _reject_nul(value: str) -> str:
    # PostgreSQL text cannot store NUL; refuse it at the edge instead of failing on insert.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _require_iso_text(value: Any) -> Any:
    # Lax parsing would read 0, "1700000000" or "1.5" as a Unix time; the contract says ISO 8601
    # text (in a body or a query). Python callers may pass a datetime.
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_START.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time with offset, e.g. 2026-11-23T09:00:00Z")


# Every date-time the API accepts lies in this range (UTC): far enough inside Python's and the
# databases' limits that converting an offset or adding a day or a year never overflows.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
_RANGE = f"{EARLIEST:%Y-%m-%dT%H:%M:%SZ} to {LATEST:%Y-%m-%dT%H:%M:%SZ}"


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must include a timezone offset, e.g. 2026-11-23T09:00:00Z")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is a day before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"must lie between {_RANGE} (UTC)")
    return utc


def in_range(value: datetime) -> bool:
    """Whether an aware date-time lies in the range every date-time input must keep to."""
    try:
        return EARLIEST <= value.astimezone(UTC) <= LATEST
    except OverflowError:
        return False


def _require_finite(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return value


Count = Annotated[int, BeforeValidator(_reject_bool), Field(ge=0, le=100_000)]
Text = Annotated[str, AfterValidator(_reject_nul)]
Name = Annotated[str, AfterValidator(_reject_nul), Field(min_length=1, max_length=200)]
ShortText = Annotated[str, AfterValidator(_reject_nul), Field(max_length=500)]
# The one date-time input type, in bodies and queries alike: ISO 8601 text with an offset, inside
# EARLIEST..LATEST, converted to UTC.
UtcDateTime = Annotated[
    datetime, BeforeValidator(_require_iso_text), AfterValidator(_require_aware)
]
Latitude = Annotated[
    float, BeforeValidator(_reject_bool), AfterValidator(_require_finite), Field(ge=-90, le=90)
]
Longitude = Annotated[
    float, BeforeValidator(_reject_bool), AfterValidator(_require_finite), Field(ge=-180, le=180)
]


def _normalise_postcode(value: str) -> str:
    # PostNL never issues the letter pairs SA, SD and SS.
    if value[-2:] in {"SA", "SD", "SS"}:
        raise ValueError("letters SA, SD and SS do not occur in Dutch postcodes")
    return f"{value[:4]} {value[-2:]}"


Postcode = Annotated[
    str,
    Field(pattern=r"^[1-9][0-9]{3} ?[A-Z]{2}$", examples=["2333 ZA"]),
    AfterValidator(_normalise_postcode),
]


class Schema(BaseModel):
    """Base for request and response bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ProblemFieldError(BaseModel):
    pointer: str = Field(description="JSON pointer into the body ('#/free'), or 'query:name'")
    detail: str
    # A refused triage rule set names where in its YAML source each error is.
    line: int | None = Field(default=None, description="rule sets: the line in the source")
    location: str | None = Field(default=None, description="rule sets: the path, e.g. rules[3]")
    rule_id: str | None = Field(default=None, description="rule sets: the rule's id")


class Problem(BaseModel):
    """RFC 9457 problem document returned for every error status."""

    type: str = Field(examples=["/problems/validation"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None

    model_config = ConfigDict(extra="allow")


class Page(BaseModel, Generic[T]):
    """A page of a cursor-paginated list; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[T]
    next_cursor: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem documents for the given statuses."""
    return {
        status: {"model": Problem, "content": {"application/problem+json": {}}}
        for status in statuses
    }
