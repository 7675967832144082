"""KPI tables: local-midnight calendar, loaded baselines, inflow aggregates (docs/domain.md §6)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id, utcnow


class KpiCalendar(Base):
    """One row per local date in Europe/Amsterdam with the UTC instant of the midnight that
    starts it (docs/domain.md §6.1). Lets the midnight census run as the same integer arithmetic on
    SQLite (no time zones) and PostgreSQL. Filled 2015-2040 by the migration;
    ``app.kpi.queries.ensure_calendar`` extends it on demand."""

    __tablename__ = "kpi_calendar"

    day_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    local_date: Mapped[date] = mapped_column(Date, unique=True)
    midnight_utc: Mapped[datetime] = mapped_column(UTCDateTime, unique=True)


class KpiBaseline(Base):
    """A fixed reference figure per KPI, year and scope, with its source (docs/domain.md §12.2)."""

    __tablename__ = "kpi_baseline"
    __table_args__ = (UniqueConstraint("kpi", "year", "scope"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kpi: Mapped[str] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(SmallInteger)
    scope: Mapped[str] = mapped_column(String(60))
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(500))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    loaded_by_key_id: Mapped[uuid.UUID | None] = mapped_column()


# The natural key of an inflow line: a re-sent line with the same key replaces the count.
INFLOW_KEY = (
    "source",
    "organisation_id",
    "period_start",
    "period_end",
    "age_band",
    "urgency_native",
    "contact_type",
)


class InflowCount(Base):
    """One aggregate line of an SEH/HAP/RAV inflow report (docs/domain.md §6.2); no persons.

    The natural key is (source, organisation, period, age band, native urgency, contact type);
    a re-sent line replaces the stored count (upsert) and bumps ``version``.
    """

    __tablename__ = "inflow_count"
    __table_args__ = (
        UniqueConstraint(*INFLOW_KEY, name="uq_inflow_count_natural_key"),
        CheckConstraint("count >= 0", name="count_not_negative"),
        CheckConstraint("period_end > period_start", name="period_ordered"),
        Index("ix_inflow_count_period_source", "period_start", "source"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    source: Mapped[str] = mapped_column(String(10))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    subregion_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subregion.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    age_band: Mapped[str] = mapped_column(String(10))
    urgency_native: Mapped[str] = mapped_column(String(10))
    contact_type: Mapped[str] = mapped_column(String(30))
    count: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reported_by_key_id: Mapped[uuid.UUID | None] = mapped_column()


class KpiCapacityDay(Base):
    """The capacity census summary (KPI capacity, docs/domain.md §6.4): per unit and census day, the
    unit's latest report among those taken since the previous local midnight.

    ``day_no`` is the first local midnight at or after ``reported_at`` (``kpi_calendar.day_no``
    numbering), so the report in force at the midnight that starts day ``D`` is this table's row
    with the greatest ``day_no <= D``. Kept in the same transaction as each report
    (``app.kpi.episodes.track_capacity_report``), greatest ``(reported_at, report_id)`` wins;
    rebuilt from ``capacity_report`` by ``app.kpi.episodes.rebuild_capacity_days``.
    """

    __tablename__ = "kpi_capacity_day"

    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"), primary_key=True)
    day_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    report_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("capacity_report.id"))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    free: Mapped[int] = mapped_column(Integer)


class KpiPlacementDecline(Base):
    """Declined offers per placement and reason code (``offer_declined`` events; no reason counts
    as ``other``), for the escalations KPI (docs/domain.md §6.4). Kept by ``app.kpi.episodes`` in
    the
    transaction of each event, like the placement's ``kpi_*`` columns."""

    __tablename__ = "kpi_placement_decline"

    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placement.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    declines: Mapped[int] = mapped_column(Integer)


class KpiReadyInterval(Base):
    """The wrong-bed summary (docs/domain.md §6.1): one row per ready interval of a placement, as
    ``app.kpi.formulas.ready_intervals`` pairs them (walking the log in ``seq`` order).

    ``start_seq`` is the ``seq`` of the ``medically_ready`` event that opened it, ``start_at`` its
    clinical time, ``start_day`` / ``start_year`` its local (Europe/Amsterdam) day number
    (``kpi_calendar.day_no`` numbering) and year; the age at the ready moment is ``start_year``
    minus the placement's birth year. ``end_at`` / ``end_day`` / ``end_kind`` describe the event
    that closed it (``revoked``, ``hospital_transfer``, ``transferred``, ``died``, ``cancelled``;
    all NULL while it is open). ``backdated`` (0/1): its start or end event was recorded more than
    48 h after it occurred. Kept in the transaction of each transfer event
    (``app.kpi.episodes.track_event``); rebuilt from the log by
    ``app.kpi.episodes.rebuild_ready_intervals`` (migration 0007 backfills with it).
    """

    __tablename__ = "kpi_ready_interval"

    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placement.id"), primary_key=True)
    start_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_day: Mapped[int] = mapped_column(Integer)
    start_year: Mapped[int] = mapped_column(SmallInteger)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_day: Mapped[int | None] = mapped_column(Integer)
    end_kind: Mapped[str | None] = mapped_column(String(20))
    backdated: Mapped[int] = mapped_column(SmallInteger)


class ShortageEvent(Base):
    """A moment of shortage (docs/domain.md §6.10), append-only: a hold refused because the unit
    had no place left (``hold_refused``), or a search that found no unit (``search_empty``, one
    row per care type searched). Written in the refused or empty request itself, one insert, only
    when it happens; ``day_no`` is the local date (``formulas.local_day``)."""

    __tablename__ = "shortage_event"
    __table_args__ = (
        CheckConstraint("kind IN ('hold_refused', 'search_empty')", name="kind_known"),
        Index("ix_shortage_event_day", "day_no"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    region_id: Mapped[uuid.UUID | None] = mapped_column()
    subregion_id: Mapped[uuid.UUID | None] = mapped_column()
    care_type: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    day_no: Mapped[int] = mapped_column(Integer)
