"""Registry tables (docs/domain.md §3). Nothing referenced is hard-deleted: rows are deactivated."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id, utcnow


class Region(Base):
    """ROAZ region (Regionaal Overleg Acute Zorgketen)."""

    __tablename__ = "region"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class RegionNorm(Base):
    """The region's own norm for a care type: hours from a request to a promised place after
    which the request counts as "between the cracks" (docs/domain.md §6.9). A care type without
    a row takes the default norm."""

    __tablename__ = "region_norm"
    __table_args__ = (CheckConstraint("hours BETWEEN 1 AND 8760", name="hours_in_range"),)

    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("region.id"), primary_key=True)
    care_type: Mapped[str] = mapped_column(String(30), primary_key=True)
    hours: Mapped[int] = mapped_column(Integer)


class Subregion(Base):
    """Subregion (verzorgingsgebied); escalation starts here (docs/domain.md §8)."""

    __tablename__ = "subregion"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("region.id"), index=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SubregionNeighbour(Base):
    """Neighbour of a subregion with its rank in the escalation order (1 = first)."""

    __tablename__ = "subregion_neighbour"
    __table_args__ = (
        UniqueConstraint("subregion_id", "rank"),
        CheckConstraint("subregion_id <> neighbour_id", name="not_self"),
    )

    subregion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subregion.id"), primary_key=True)
    neighbour_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subregion.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(SmallInteger)


class Municipality(Base):
    """Municipality (gemeente) to subregion mapping; data, so border cases can move (§12.5)."""

    __tablename__ = "municipality"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    subregion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subregion.id"), index=True)
    # CBS gemeentecode (GM + 4 digits): the municipality's identifier in a region file.
    cbs_code: Mapped[str | None] = mapped_column(String(6), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Organisation(Base):
    __tablename__ = "organisation"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("region.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    agb_code: Mapped[str | None] = mapped_column(String(8))
    ura_number: Mapped[str | None] = mapped_column(String(8))
    kvk_number: Mapped[str | None] = mapped_column(String(8))
    # Stable identifier from the region file (``juisteplek import-region``); unique everywhere.
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Location(Base):
    __tablename__ = "location"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"), index=True)
    subregion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subregion.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(7))
    municipality: Mapped[str] = mapped_column(String(100))
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    phone: Mapped[str | None] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class Unit(Base):
    """A bookable capacity pool at a location (docs/domain.md §3.1).

    Target groups and features are stored as bitmasks over their enums (``app.enums``) so that
    ``(feature_mask & :wanted) = :wanted`` filters identically on SQLite and PostgreSQL.
    """

    __tablename__ = "unit"
    __table_args__ = (
        CheckConstraint("staffed_capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("sex_policy IN ('any', 'male', 'female')", name="sex_policy_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    care_type: Mapped[str] = mapped_column(String(30), index=True)
    target_group_mask: Mapped[int] = mapped_column(Integer)
    feature_mask: Mapped[int] = mapped_column(Integer, default=0)
    sex_policy: Mapped[str] = mapped_column(String(10), default="any")
    staffed_capacity: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Weekly admission hours and exceptions (app.capacity.admission, JSON); null: 24/7.
    admission_hours: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
