"""unit status: a unit that takes no admissions for a while, and its history

Revision ID: 0011
Revises: 0007
Create Date: 2026-12-05 08:57:44.339860+00:00

Adds the append-only ``unit_status`` history and the unit's current status on ``unit_capacity``
(reason, detail, until), which the search and the hold read without a join. Every unit starts
accepting (all new columns NULL), so there is nothing to backfill.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0011"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_status",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("accepting", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("changed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by_key_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "accepting OR reason IS NOT NULL", name=op.f("ck_unit_status_closed_has_reason")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"], name=op.f("fk_unit_status_unit_id_unit")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_status")),
    )
    with op.batch_alter_table("unit_status", schema=None) as batch_op:
        batch_op.create_index(
            "ix_unit_status_unit_changed", ["unit_id", "changed_at"], unique=False
        )

    with op.batch_alter_table("unit_capacity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("closed_detail", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("closed_until", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("status_changed_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("unit_capacity", schema=None) as batch_op:
        batch_op.drop_column("status_changed_at")
        batch_op.drop_column("closed_until")
        batch_op.drop_column("closed_detail")
        batch_op.drop_column("closed_reason")

    with op.batch_alter_table("unit_status", schema=None) as batch_op:
        batch_op.drop_index("ix_unit_status_unit_changed")

    op.drop_table("unit_status")
