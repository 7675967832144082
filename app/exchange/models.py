"""Federation tables: partner regions and the read-only cache of their units.

A partner is another JuistePlek instance; its key (issued by the partner) is stored encrypted
(``enc:v1:`` + Fernet, app/secretbox.py). ``partner_unit`` holds read-only copies of the
partner's own units as its capacity snapshot last showed them: they live in their own table, so
the exports of this instance (snapshot, FHIR) never carry them and two partners cannot loop.
``partner_hold`` links a local placement to the placement and hold a forwarded hold created at
the partner.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id, utcnow


class Partner(Base):
    __tablename__ = "partner"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    label: Mapped[str] = mapped_column(String(100), doc="the partner's region name, shown on hits")
    base_url: Mapped[str] = mapped_column(String(500))
    key_sealed: Mapped[str] = mapped_column(String(1000), doc="the partner's key, encrypted")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reachable: Mapped[bool] = mapped_column(Boolean, default=False)
    last_fetch_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, doc="the last successful pull"
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class PartnerUnit(Base):
    """A partner's own unit as its snapshot showed it at ``fetched_at`` (read-only copy)."""

    __tablename__ = "partner_unit"
    __table_args__ = (UniqueConstraint("partner_id", "remote_unit_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partner.id"), index=True)
    remote_unit_id: Mapped[uuid.UUID] = mapped_column(index=True)
    unit_name: Mapped[str] = mapped_column(String(200))
    care_type: Mapped[str] = mapped_column(String(30))
    target_groups: Mapped[list[str]] = mapped_column(JSON)
    features: Mapped[list[str]] = mapped_column(JSON)
    sex_policy: Mapped[str] = mapped_column(String(10))
    organisation_id: Mapped[uuid.UUID]
    organisation_name: Mapped[str] = mapped_column(String(200))
    location_id: Mapped[uuid.UUID]
    location_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    postcode: Mapped[str] = mapped_column(String(10))
    municipality: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(50))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    subregion_code: Mapped[str] = mapped_column(String(64))
    staffed: Mapped[int] = mapped_column(Integer)
    free: Mapped[int] = mapped_column(Integer)
    held: Mapped[int] = mapped_column(Integer)
    available: Mapped[int] = mapped_column(Integer)
    expected_free_24h: Mapped[int | None] = mapped_column(Integer)
    accepting: Mapped[bool] = mapped_column(Boolean)
    not_accepting_reason: Mapped[str | None] = mapped_column(String(30))
    not_accepting_detail: Mapped[str | None] = mapped_column(String(500))
    not_accepting_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, doc="at the partner")
    stale: Mapped[bool] = mapped_column(Boolean, doc="stale by the partner's own freshness rules")
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PartnerHold(Base):
    """A hold forwarded to a partner: the placement and hold it created there."""

    __tablename__ = "partner_hold"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placement.id"), index=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("partner.id"), index=True)
    remote_unit_id: Mapped[uuid.UUID]
    remote_placement_id: Mapped[uuid.UUID]
    remote_hold_id: Mapped[uuid.UUID]
    remote_state: Mapped[str] = mapped_column(String(30), doc="the partner placement's state")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
