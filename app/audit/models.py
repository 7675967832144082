"""The NEN 7513 access log (docs/domain.md §10.1): append-only rows chained by SHA-256."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class AuditLog(Base):
    """Who read or changed which patient's placement data, when, from where, and why.

    ``hash`` = SHA-256 over ``prev_hash`` and the row's own fields (app.audit.chain); appends are
    serialised, so the rows in id order form one chain that ``juisteplek audit verify`` checks.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_patient_key", "patient_key", "id"),
        Index("ix_audit_log_object_id", "object_id", "id"),
        Index("ix_audit_log_user_id", "user_id", "id"),
        Index("ix_audit_log_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_code: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(1), doc="C/R/U/D/E (EventActionCode)")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(10), doc="success | failure")
    user_id: Mapped[uuid.UUID | None] = mapped_column()
    user_display: Mapped[str] = mapped_column(String(200))
    on_behalf_of: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column()
    access_point: Mapped[str | None] = mapped_column(String(64), doc="client IP address")
    source: Mapped[str] = mapped_column(String(60), doc="AuditSourceID: service instance")
    object_type: Mapped[str] = mapped_column(String(30))
    object_id: Mapped[str | None] = mapped_column(String(64))
    patient_key: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="{}", doc="JSON: query, status, reason")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
