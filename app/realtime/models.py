"""The transactional outbox: one row per committed change, written in the change's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class OutboxEvent(Base):
    """A change to publish (server-sent events, webhooks). Its id is the stream's event id."""

    __tablename__ = "outbox_event"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    topic: Mapped[str] = mapped_column(String(20), doc="capacity | placement")
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[str] = mapped_column(Text, doc="JSON document")
    region_id: Mapped[uuid.UUID | None] = mapped_column()
    organisation_ids: Mapped[str] = mapped_column(
        String(400), default="", doc="comma-separated organisations the event concerns"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
