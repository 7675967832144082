"""Capacity tables: the append-only report history and the per-unit current state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class CapacityReport(Base):
    """What a provider says is free, when and by whom. Never updated: the occupancy time series."""

    __tablename__ = "capacity_report"
    __table_args__ = (
        CheckConstraint("free >= 0", name="free_not_negative"),
        CheckConstraint("expected_free_24h IS NULL OR expected_free_24h >= 0", name="expected_ok"),
        Index("ix_capacity_report_unit_reported", "unit_id", "reported_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"))
    free: Mapped[int] = mapped_column(Integer)
    expected_free_24h: Mapped[int | None] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # No foreign key: system loads (demo, simulator) report under a key id that is not stored.
    reported_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    source: Mapped[str] = mapped_column(String(20), default="api")


class UnitCapacity(Base):
    """Current capacity of a unit: its latest report plus the places held against it.

    Derived data, kept in the same transaction as every report and hold, so the search reads one
    row per unit and a hold is one conditional UPDATE (``free - held > 0``) on both backends.
    ``held`` counts holds still active plus holds admitted after the latest report
    (docs/domain.md §3.1).
    """

    __tablename__ = "unit_capacity"
    __table_args__ = (
        # held may exceed free after a report of fewer places; availability is then zero.
        CheckConstraint("held >= 0", name="held_not_negative"),
    )

    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"), primary_key=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("capacity_report.id"))
    free: Mapped[int] = mapped_column(Integer, default=0)
    expected_free_24h: Mapped[int | None] = mapped_column(Integer)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    held: Mapped[int] = mapped_column(Integer, default=0)
    # The unit's current admission status (its latest ``unit_status`` row), kept here so the
    # search and the hold read it without a join: closed when ``closed_reason`` is set and
    # ``closed_until`` is NULL or later than now. Reopening at ``closed_until`` needs no write.
    closed_reason: Mapped[str | None] = mapped_column(String(20))
    closed_detail: Mapped[str | None] = mapped_column(String(500))
    closed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UnitStatus(Base):
    """A change of a unit's admission status: closed (with reason, detail and the expected end)
    or open again. Never updated: the rows are the unit's status history."""

    __tablename__ = "unit_status"
    __table_args__ = (
        CheckConstraint("accepting OR reason IS NOT NULL", name="closed_has_reason"),
        Index("ix_unit_status_unit_changed", "unit_id", "changed_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"))
    accepting: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(String(500))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
