"""referral fields for the KPIs: patient group and advance care planning; shortage events

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-05 10:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0023"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_group", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("advance_care_planning", sa.String(length=20), nullable=True))
    op.create_table(
        "shortage_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("region_id", sa.Uuid(), nullable=True),
        sa.Column("subregion_id", sa.Uuid(), nullable=True),
        sa.Column("care_type", sa.String(length=30), nullable=False),
        sa.Column("occurred_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("day_no", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('hold_refused', 'search_empty')", name=op.f("ck_shortage_event_kind_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shortage_event")),
    )
    op.create_index("ix_shortage_event_day", "shortage_event", ["day_no"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shortage_event_day", table_name="shortage_event")
    op.drop_table("shortage_event")
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.drop_column("advance_care_planning")
        batch_op.drop_column("patient_group")
