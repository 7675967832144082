"""Webhook request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field

from app.schemas import Schema, ShortText
from app.webhooks.policy import EVENT_PATTERN, url_problem


def _check_url(value: str) -> str:
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


TargetUrl = Annotated[
    str,
    Field(min_length=1, max_length=2000, examples=["https://transfer.example.nl/hooks/juisteplek"]),
    AfterValidator(_check_url),
]
EventPattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=60,
        pattern=EVENT_PATTERN.pattern,
        examples=["placement.*", "capacity.reported"],
    ),
]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # out of attempts (dead); POST .../redeliver tries again


class WebhookSubscriptionCreate(Schema):
    url: TargetUrl = Field(description="http(s) endpoint that receives signed POST requests")
    event_types: list[EventPattern] = Field(
        min_length=1,
        max_length=16,
        description="Event types to receive: exact ('capacity.reported'), 'placement.*' or '*'",
    )
    description: ShortText | None = None
    organisation_id: uuid.UUID | None = Field(
        default=None,
        description="Owner; defaults to the key's organisation. Only admin keys may name another.",
    )


class WebhookSubscriptionRead(Schema):
    id: uuid.UUID
    organisation_id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    created_at: datetime
    deleted_at: datetime | None


class WebhookSubscriptionCreated(WebhookSubscriptionRead):
    secret: str = Field(
        description=(
            "Signing secret (Standard Webhooks format: whsec_ + base64). Shown only in this "
            "response; store it now. JuistePlek keeps it encrypted."
        )
    )


class WebhookAttemptRead(Schema):
    attempt: int
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None = Field(
        description=(
            "Outcome category: refused_url, refused_address, dns_failed, connect_failed, "
            "tls_failed, timeout, protocol_error, send_failed or http_<status>"
        )
    )
    outcome: str = Field(description="delivered | retry | failed")


class WebhookDeliveryRead(Schema):
    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID = Field(
        description="Sent as webhook-id (and JuistePlek-Event-Id); dedupe on it"
    )
    event_type: str
    sequence: int = Field(description="The outbox id: the SSE event id of the same change")
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[WebhookAttemptRead] = Field(description="Oldest attempt first")
