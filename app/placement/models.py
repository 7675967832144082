"""Placement tables: referral, holds on units, append-only transfer log (docs/domain.md §5, §13).

No patient identifier or name is stored anywhere: a placement carries the pseudonymous
``patient_key`` (HMAC-SHA256 of the identifier the referrer sent), a birth year and a sex.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id, utcnow


class Placement(Base):
    """A referral for one patient moving through the states of docs/domain.md §13.

    Also the cheap episode summary the KPIs need: the timestamps of the
    milestones are kept here, in the same transaction as the transfer event that sets them.
    """

    __tablename__ = "placement"
    __table_args__ = (
        CheckConstraint(
            "state IN ('requested', 'triaged', 'offered', 'accepted', 'transferred', 'cancelled')",
            name="state_known",
        ),
        CheckConstraint("urgency_level BETWEEN 0 AND 5", name="urgency_level_range"),
        Index("ix_placement_region_created", "region_id", "created_at"),
        Index("ix_placement_referrer_created", "referrer_organisation_id", "created_at"),
        Index("ix_placement_escalation_due", "escalation_due_at"),
        Index("ix_placement_kpi_requested", "kpi_requested_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    region_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("region.id"))
    referrer_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    subregion_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subregion.id"), index=True)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column()
    origin_setting: Mapped[str] = mapped_column(String(20))
    patient_key: Mapped[str] = mapped_column(String(64), index=True)
    birth_year: Mapped[int] = mapped_column(SmallInteger)
    sex: Mapped[str] = mapped_column(String(10))
    target_group: Mapped[str] = mapped_column(String(30))
    care_type: Mapped[str] = mapped_column(String(30), index=True)
    # Optional referral fields for the KPIs of docs/domain.md §6.8 (null: not given, unknown).
    patient_group: Mapped[str | None] = mapped_column(String(20))
    advance_care_planning: Mapped[str | None] = mapped_column(String(20))
    feature_mask: Mapped[int] = mapped_column(Integer, default=0)
    room_sex: Mapped[str | None] = mapped_column(String(10))
    care_needs: Mapped[str | None] = mapped_column(String(500))
    urgency_system: Mapped[str] = mapped_column(String(30))
    urgency_code: Mapped[str] = mapped_column(String(20))
    urgency_level: Mapped[int] = mapped_column(SmallInteger)
    triage_rule_set: Mapped[str | None] = mapped_column(String(60))
    triage_outcome: Mapped[str | None] = mapped_column(String(40))
    consent_given_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(20), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    current_hold_id: Mapped[uuid.UUID | None] = mapped_column()
    escalation_level: Mapped[str] = mapped_column(String(20), default="subregion")
    escalation_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    medically_ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The KPI episode summary (docs/domain.md §6.4; app.kpi.episodes): the clinical time
    # (``occurred_at``) of the placement's first event of each type, first by ``seq`` as the
    # reference defines it (not the earliest: a back-dated event does not move it), the highest
    # escalation reached (0 none, 1 below national, 2 national) and the expired holds. Written
    # by ``events.append`` in the transaction of each event; never by the ORM.
    kpi_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kpi_triaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kpi_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kpi_ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kpi_cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    kpi_escalated: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    kpi_expired_holds: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # The case owner (docs/domain.md §15): a person or key (its id and display name) and its
    # organisation; only the organisation when the case lies with the referring organisation as a
    # whole; all null while nobody owns it. Changed only by ``owner_taken`` / ``owner_handed_over``.
    owner_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    owner_name: Mapped[str | None] = mapped_column(String(200))
    owner_organisation_id: Mapped[uuid.UUID | None] = mapped_column()
    owner_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the sweeper announced the case as unowned and overdue (``placement.unowned_overdue``,
    # once per placement).
    unowned_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Every change is an optimistic UPDATE ... WHERE version = :seen (the hold path does the same
    # in SQL), so two writers can never both move a placement out of one state.
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class PlacementHold(Base):
    """One place reserved on one unit for one placement (docs/domain.md §12.6).

    ``active`` holds (offered or accepted) and ``admitted`` holds newer than the unit's latest
    report are what ``unit_capacity.held`` counts; the expiry is data, so a restart loses nothing.
    """

    __tablename__ = "placement_hold"
    __table_args__ = (
        CheckConstraint(
            "status IN ('active', 'admitted', 'declined', 'expired', 'cancelled')",
            name="status_known",
        ),
        # At most one live hold per placement, enforced by the database on both backends.
        Index(
            "uq_placement_hold_one_active",
            "placement_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_placement_hold_unit_status", "unit_id", "status"),
        Index("ix_placement_hold_status_expires", "status", "expires_at"),
        Index("ix_placement_hold_organisation", "organisation_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placement.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisation.id"))
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_reason: Mapped[str | None] = mapped_column(String(40))


class TransferEvent(Base):
    """Immutable transfer-log row (docs/domain.md §5): every state change and clinical event.

    Append-only: no code path updates or deletes it; on PostgreSQL a trigger refuses both.
    ``seq`` numbers a placement's events; (placement_id, seq) is unique, so two concurrent writers
    can never interleave a placement's history.
    """

    __tablename__ = "transfer_event"
    __table_args__ = (
        UniqueConstraint("placement_id", "seq"),
        Index("ix_transfer_event_type_occurred", "event_type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placement.id"))
    seq: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_organisation_id: Mapped[uuid.UUID | None] = mapped_column()
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[uuid.UUID | None] = mapped_column()
    hold_id: Mapped[uuid.UUID | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(String(40))
    level: Mapped[str | None] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text, default="{}", doc="JSON document")


class PlacementNote(Base):
    """A case note (docs/domain.md §15): append-only, like the transfer log; a trigger on
    PostgreSQL refuses UPDATE and DELETE. Its text is patient data: every read is logged."""

    __tablename__ = "placement_note"
    __table_args__ = (Index("ix_placement_note_placement", "placement_id", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    placement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("placement.id"))
    author_id: Mapped[uuid.UUID] = mapped_column()
    author_name: Mapped[str] = mapped_column(String(200))
    author_organisation_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text)
