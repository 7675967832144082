"""the region's own "between the cracks" norm per care type; an outbox event names any number
of organisations (a report-now request to more than ten organisations overflowed 400 characters)

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 12:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "region_norm",
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("care_type", sa.String(length=30), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.CheckConstraint("hours BETWEEN 1 AND 8760", name=op.f("ck_region_norm_hours_in_range")),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_region_norm_region_id_region")
        ),
        sa.PrimaryKeyConstraint("region_id", "care_type", name=op.f("pk_region_norm")),
    )
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.alter_column(
            "organisation_ids",
            existing_type=sa.String(length=400),
            type_=sa.Text(),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.alter_column(
            "organisation_ids",
            existing_type=sa.Text(),
            type_=sa.String(length=400),
            existing_nullable=False,
        )
    op.drop_table("region_norm")
