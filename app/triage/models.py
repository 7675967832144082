"""Triage tables: versioned rule sets as data and every triage done (docs/domain.md §4, §12.1).

Rule sets are never deleted or changed once loaded; activation only moves the ``active`` flag, and
a partial unique index keeps at most one row active on both backends.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id, utcnow


class TriageRuleSet(Base):
    """One loaded rule set: its YAML source as uploaded, and the static-check report."""

    __tablename__ = "triage_rule_set"
    __table_args__ = (
        Index(
            "uq_triage_rule_set_one_active",
            "active",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text, doc="the YAML text exactly as loaded")
    source_sha256: Mapped[str] = mapped_column(String(64))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    activatable: Mapped[bool] = mapped_column(Boolean)
    check_report: Mapped[str] = mapped_column(Text, doc="JSON: app.triage.checks.CheckReport")
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    loaded_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_by_key_id: Mapped[uuid.UUID | None] = mapped_column()


class TriageRecord(Base):
    """One ``POST /v1/triage``: the answers, the advice and any override with its reason (§4).

    ``placement_id`` has no foreign key on purpose: the placement tables live in another
    migration branch, and a triage record must survive whatever happens to them. Linked to a
    placement it is patient-related data; the placement service logs that access (NEN 7513).
    """

    __tablename__ = "triage_record"
    __table_args__ = (
        Index("ix_triage_record_placement", "placement_id", "created_at"),
        Index("ix_triage_record_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rule_set_version: Mapped[str] = mapped_column(ForeignKey("triage_rule_set.version"))
    placement_id: Mapped[uuid.UUID | None] = mapped_column()
    answers: Mapped[str] = mapped_column(Text, doc="JSON: question id -> answer, as sent")
    urgency_system: Mapped[str | None] = mapped_column(String(30))
    urgency_code: Mapped[str | None] = mapped_column(String(20))
    urgency_level: Mapped[int | None] = mapped_column(SmallInteger)
    outcome: Mapped[str | None] = mapped_column(String(60))
    rule_id: Mapped[str | None] = mapped_column(String(60))
    complete: Mapped[bool] = mapped_column(Boolean)
    care_types: Mapped[str] = mapped_column(String(300), doc="comma-separated advised care types")
    target_group: Mapped[str | None] = mapped_column(String(30))
    required_features: Mapped[str] = mapped_column(String(300), doc="comma-separated features")
    override_care_type: Mapped[str | None] = mapped_column(String(30))
    override_reason: Mapped[str | None] = mapped_column(Text)
    key_id: Mapped[uuid.UUID] = mapped_column()
    organisation_id: Mapped[uuid.UUID | None] = mapped_column()
