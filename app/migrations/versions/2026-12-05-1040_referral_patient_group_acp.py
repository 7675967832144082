"""referral fields for the KPIs: patient group and advance care planning

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-05 10:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("patient_group", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("advance_care_planning", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.drop_column("advance_care_planning")
        batch_op.drop_column("patient_group")
