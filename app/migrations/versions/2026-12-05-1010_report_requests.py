"""report requests: "report now", a triagist asks providers for fresh capacity reports

Revision ID: 0020
Revises: 0009
Create Date: 2026-12-05 10:10:00+00:00

Adds ``report_request`` and the units each one targeted (``report_request_unit``). Answers are
the units' capacity reports, found by query: nothing to backfill.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0020"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("region_id", sa.Uuid(), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_organisation_id", sa.Uuid(), nullable=True),
        sa.Column("care_types", sa.String(length=400), nullable=False),
        sa.Column("subregion_ids", sa.String(length=2000), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("within_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "within_minutes BETWEEN 1 AND 10080", name=op.f("ck_report_request_within_range")
        ),
        sa.ForeignKeyConstraint(
            ["region_id"], ["region.id"], name=op.f("fk_report_request_region_id_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_request")),
    )
    with op.batch_alter_table("report_request", schema=None) as batch_op:
        batch_op.create_index("ix_report_request_created", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_report_request_region_created", ["region_id", "created_at"], unique=False
        )
    op.create_table(
        "report_request_unit",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_report_request_unit_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["report_request.id"],
            name=op.f("fk_report_request_unit_request_id_report_request"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_report_request_unit_unit_id_unit")
        ),
        sa.PrimaryKeyConstraint("request_id", "unit_id", name=op.f("pk_report_request_unit")),
    )
    with op.batch_alter_table("report_request_unit", schema=None) as batch_op:
        batch_op.create_index(
            "ix_report_request_unit_organisation", ["organisation_id"], unique=False
        )
        batch_op.create_index("ix_report_request_unit_unit", ["unit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_request_unit", schema=None) as batch_op:
        batch_op.drop_index("ix_report_request_unit_unit")
        batch_op.drop_index("ix_report_request_unit_organisation")
    op.drop_table("report_request_unit")
    with op.batch_alter_table("report_request", schema=None) as batch_op:
        batch_op.drop_index("ix_report_request_region_created")
        batch_op.drop_index("ix_report_request_created")
    op.drop_table("report_request")
