"""case owner on placements, append-only case notes, unit admission hours

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("owner_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("owner_organisation_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("owner_since", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("unowned_alerted_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_placement_owner_id"), ["owner_id"], unique=False)

    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("admission_hours", sa.Text(), nullable=True))

    op.create_table(
        "placement_note",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("author_organisation_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["placement_id"],
            ["placement.id"],
            name=op.f("fk_placement_note_placement_id_placement"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_note")),
    )
    with op.batch_alter_table("placement_note", schema=None) as batch_op:
        batch_op.create_index("ix_placement_note_placement", ["placement_id", "id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # Case notes are append-only like the transfer log: the same refusing trigger function.
        op.execute(
            "CREATE TRIGGER placement_note_append_only BEFORE UPDATE OR DELETE ON placement_note "
            "FOR EACH ROW EXECUTE FUNCTION juisteplek_refuse_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS placement_note_append_only ON placement_note")
    with op.batch_alter_table("placement_note", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_note_placement")
    op.drop_table("placement_note")
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_column("admission_hours")
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_owner_id"))
        batch_op.drop_column("unowned_alerted_at")
        batch_op.drop_column("owner_since")
        batch_op.drop_column("owner_organisation_id")
        batch_op.drop_column("owner_name")
        batch_op.drop_column("owner_id")
