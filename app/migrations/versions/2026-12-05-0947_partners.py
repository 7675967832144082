"""partners: partner regions, the cache of their units, holds forwarded to them

Revision ID: 0019
Revises: 0021
Create Date: 2026-12-05 09:47:31.767290+00:00

Federation (docs/federation.md): a partner is another instance (its key stored encrypted);
partner_unit holds read-only copies of its units; partner_hold links a local placement to the
placement and hold a forwarded hold created at the partner.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0019"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("key_sealed", sa.String(length=1000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("last_fetch_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner")),
    )
    op.create_table(
        "partner_unit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("remote_unit_id", sa.Uuid(), nullable=False),
        sa.Column("unit_name", sa.String(length=200), nullable=False),
        sa.Column("care_type", sa.String(length=30), nullable=False),
        sa.Column("target_groups", sa.JSON(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("sex_policy", sa.String(length=10), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_name", sa.String(length=200), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.Column("location_name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=False),
        sa.Column("municipality", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("subregion_code", sa.String(length=64), nullable=False),
        sa.Column("staffed", sa.Integer(), nullable=False),
        sa.Column("free", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("expected_free_24h", sa.Integer(), nullable=True),
        sa.Column("accepting", sa.Boolean(), nullable=False),
        sa.Column("not_accepting_reason", sa.String(length=30), nullable=True),
        sa.Column("not_accepting_detail", sa.String(length=500), nullable=True),
        sa.Column("not_accepting_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reported_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("fetched_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_partner_unit_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_unit")),
        sa.UniqueConstraint(
            "partner_id", "remote_unit_id", name=op.f("uq_partner_unit_partner_id_remote_unit_id")
        ),
    )
    with op.batch_alter_table("partner_unit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_unit_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_partner_unit_remote_unit_id"), ["remote_unit_id"], unique=False
        )

    op.create_table(
        "partner_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.Column("remote_unit_id", sa.Uuid(), nullable=False),
        sa.Column("remote_placement_id", sa.Uuid(), nullable=False),
        sa.Column("remote_hold_id", sa.Uuid(), nullable=False),
        sa.Column("remote_state", sa.String(length=30), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_partner_hold_partner_id_partner")
        ),
        sa.ForeignKeyConstraint(
            ["placement_id"], ["placement.id"], name=op.f("fk_partner_hold_placement_id_placement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_hold")),
    )
    with op.batch_alter_table("partner_hold", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_hold_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_partner_hold_placement_id"), ["placement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("partner_hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_hold_placement_id"))
        batch_op.drop_index(batch_op.f("ix_partner_hold_partner_id"))

    op.drop_table("partner_hold")
    with op.batch_alter_table("partner_unit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_unit_remote_unit_id"))
        batch_op.drop_index(batch_op.f("ix_partner_unit_partner_id"))

    op.drop_table("partner_unit")
    op.drop_table("partner")
