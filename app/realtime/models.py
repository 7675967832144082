"""The transactional outbox: one row per committed change, written in the change's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class OutboxEvent(Base):
    """A change to publish (server-sent events, webhooks). Its id is the stream's event id."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        # The webhook dispatcher's work queue: rows not yet fanned out to subscriptions.
        Index(
            "ix_outbox_event_webhook_pending",
            "id",
            postgresql_where=text("webhooks_fanned_out_at IS NULL"),
            sqlite_where=text("webhooks_fanned_out_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    topic: Mapped[str] = mapped_column(String(20), doc="capacity | placement")
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[str] = mapped_column(Text, doc="JSON document")
    region_id: Mapped[uuid.UUID | None] = mapped_column()
    organisation_ids: Mapped[str] = mapped_column(
        Text, default="", doc="comma-separated organisations the event concerns (any number)"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set once the webhook dispatcher has created the event's deliveries. A marker per row (not
    # a high-water mark) because PostgreSQL ids can commit out of order.
    webhooks_fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
