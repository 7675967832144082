"""Report-now tables (docs/report-requests.md): a request and the units it targeted.

The targeted units are a snapshot taken when the request is made. Whether and when a unit
answered is not stored: it is the unit's first capacity report recorded at or after the
request's ``created_at`` (``capacity_report.recorded_at``), found by query, so no capacity write
path has to know about requests.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id


class ReportRequest(Base):
    __tablename__ = "report_request"
    __table_args__ = (
        CheckConstraint("within_minutes BETWEEN 1 AND 10080", name="within_range"),
        Index("ix_report_request_region_created", "region_id", "created_at"),
        Index("ix_report_request_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("region.id"))
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by_organisation_id: Mapped[uuid.UUID | None] = mapped_column()
    # Comma-separated filters as asked (empty: all care types / the whole region).
    care_types: Mapped[str] = mapped_column(String(400), default="")
    subregion_ids: Mapped[str] = mapped_column(String(2000), default="")
    message: Mapped[str | None] = mapped_column(String(500))
    within_minutes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReportRequestUnit(Base):
    """One unit a request targeted, with its organisation at the time."""

    __tablename__ = "report_request_unit"
    __table_args__ = (
        Index("ix_report_request_unit_unit", "unit_id"),
        Index("ix_report_request_unit_organisation", "organisation_id"),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report_request.id"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"), primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
