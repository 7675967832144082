"""kpi ready intervals: the wrong-bed summary, one row per ready interval (issue 5)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 14:00:00.000000+00:00

Adds ``kpi_ready_interval``, which wrong-bed days read instead of pairing the transfer log's
boundary events at query time, and backfills it from ``transfer_event`` with
the SQL the application uses to rebuild it (``app.kpi.episodes.rebuild_ready_intervals_sql``; on
SQLite its day numbers come from ``kpi_calendar``, filled 2015-2040 by migration 0004).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db
from app.kpi.episodes import rebuild_ready_intervals_sql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kpi_ready_interval",
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column("start_seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("start_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("start_day", sa.Integer(), nullable=False),
        sa.Column("start_year", sa.SmallInteger(), nullable=False),
        sa.Column("end_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_day", sa.Integer(), nullable=True),
        sa.Column("end_kind", sa.String(length=20), nullable=True),
        sa.Column("backdated", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placement.id"],
            name=op.f("fk_kpi_ready_interval_placement_id_placement"),
        ),
        sa.PrimaryKeyConstraint("placement_id", "start_seq", name=op.f("pk_kpi_ready_interval")),
    )

    # Backfill from the transfer log.
    bind = op.get_bind()
    for sql in rebuild_ready_intervals_sql(bind.dialect.name):
        bind.execute(sa.text(sql))


def downgrade() -> None:
    op.drop_table("kpi_ready_interval")
