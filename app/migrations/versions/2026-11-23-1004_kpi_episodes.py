"""kpi episodes: first-event times and declines per placement, capacity census days (issue 5)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 13:10:00.000000+00:00

Adds the KPI summary that the cohort and capacity KPIs read instead of pairing the logs at query
time, and backfills it from ``transfer_event`` and ``capacity_report`` with
the same SQL and function the application uses to rebuild it (``app.kpi.episodes``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db
from app.kpi.episodes import REBUILD_PLACEMENTS_SQL, capacity_day_rows

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FIRST = (
    "kpi_requested_at",
    "kpi_triaged_at",
    "kpi_accepted_at",
    "kpi_ready_at",
    "kpi_cancelled_at",
)


def upgrade() -> None:
    with op.batch_alter_table("placement", schema=None) as batch_op:
        for name in _FIRST:
            batch_op.add_column(sa.Column(name, app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "kpi_escalated", sa.SmallInteger(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "kpi_expired_holds", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.create_index("ix_placement_kpi_requested", ["kpi_requested_at"], unique=False)

    op.create_table(
        "kpi_capacity_day",
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("day_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("report_id", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("free", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["capacity_report.id"],
            name=op.f("fk_kpi_capacity_day_report_id_capacity_report"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit.id"], name=op.f("fk_kpi_capacity_day_unit_id_unit")
        ),
        sa.PrimaryKeyConstraint("unit_id", "day_no", name=op.f("pk_kpi_capacity_day")),
    )
    op.create_table(
        "kpi_placement_decline",
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("declines", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placement.id"],
            name=op.f("fk_kpi_placement_decline_placement_id_placement"),
        ),
        sa.PrimaryKeyConstraint("placement_id", "reason", name=op.f("pk_kpi_placement_decline")),
    )

    # Backfill from the logs.
    bind = op.get_bind()
    for sql in REBUILD_PLACEMENTS_SQL:
        bind.execute(sa.text(sql))
    report = sa.table(
        "capacity_report",
        sa.column("id", sa.BigInteger()),
        sa.column("unit_id", sa.Uuid()),
        sa.column("reported_at", app.db.UTCDateTime(timezone=True)),
        sa.column("free", sa.Integer()),
    )
    day = sa.table(
        "kpi_capacity_day",
        sa.column("unit_id", sa.Uuid()),
        sa.column("day_no", sa.Integer()),
        sa.column("report_id", sa.BigInteger()),
        sa.column("reported_at", app.db.UTCDateTime(timezone=True)),
        sa.column("free", sa.Integer()),
    )
    reports = bind.execute(
        sa.select(report.c.id, report.c.unit_id, report.c.reported_at, report.c.free)
    ).all()
    rows = capacity_day_rows((r[0], r[1], r[2], r[3]) for r in reports)
    if rows:
        bind.execute(day.insert(), rows)


def downgrade() -> None:
    op.drop_table("kpi_placement_decline")
    op.drop_table("kpi_capacity_day")
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_kpi_requested")
        batch_op.drop_column("kpi_expired_holds")
        batch_op.drop_column("kpi_escalated")
        for name in reversed(_FIRST):
            batch_op.drop_column(name)
