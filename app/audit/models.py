"""The NEN 7513 access log (docs/audit.md): append-only rows in HMAC-linked chains."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class AuditLog(Base):
    """Who read or changed which patient's placement data, when, from where, and why.

    ``chain``/``chain_seq``: the row's chain (its object, or the acting key) and position in it;
    ``hash`` = HMAC over the id, chain, position, ``prev_hash`` and fields (app.audit.chain).
    Appends to one chain are serialised by its ``audit_chain_head`` row, so writes about
    different placements never wait on each other.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_patient_key", "patient_key", "id"),
        Index("ix_audit_log_object_id", "object_id", "id"),
        Index("ix_audit_log_user_id", "user_id", "id"),
        Index("ix_audit_log_occurred_at", "occurred_at"),
        Index("uq_audit_log_chain_seq", "chain", "chain_seq", unique=True),
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
    chain: Mapped[str] = mapped_column(String(100))
    chain_seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last position and hash of each chain, kept apart from the rows: a removed tail
    leaves the head ahead of the rows. ``checkpointed_seq``: how far a signed checkpoint
    covers the chain."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (
        Index(
            "ix_audit_chain_head_unsigned",
            "chain",
            postgresql_where=text("seq > checkpointed_seq"),
            sqlite_where=text("seq > checkpointed_seq"),
        ),
    )

    chain: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    checkpointed_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditCheckpoint(Base):
    """A signed record of chain heads: number n signs n-1's signature, so checkpoints chain too."""

    __tablename__ = "audit_checkpoint"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heads: Mapped[int] = mapped_column(Integer, doc="how many chain heads it records")
    key_id: Mapped[str] = mapped_column(String(16), doc="fingerprint of the signing key")
    prev_signature: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))


class AuditCheckpointHead(Base):
    """One chain head a checkpoint signs: the row at (chain, seq) must exist with this hash."""

    __tablename__ = "audit_checkpoint_head"

    checkpoint: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chain: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
