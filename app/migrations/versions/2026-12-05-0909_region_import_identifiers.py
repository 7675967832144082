"""region import identifiers: the stable external identifiers of a region file

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:09:10.023591+00:00

Organisations, locations and units get an ``external_id`` (unique), organisations their URA and
KvK numbers, municipalities their CBS code, and subregions and municipalities an ``active`` flag
(an import deactivates what its file no longer lists; existing rows start active).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_location_external_id"), ["external_id"])

    with op.batch_alter_table("municipality", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cbs_code", sa.String(length=6), nullable=True))
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.create_unique_constraint(batch_op.f("uq_municipality_cbs_code"), ["cbs_code"])

    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ura_number", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("kvk_number", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_organisation_external_id"), ["external_id"]
        )

    with op.batch_alter_table("subregion", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )

    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_unit_external_id"), ["external_id"])

    # The models set ``active`` on insert; the server default only filled the existing rows.
    for table in ("municipality", "subregion"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("active", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("unit", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_unit_external_id"), type_="unique")
        batch_op.drop_column("external_id")

    with op.batch_alter_table("subregion", schema=None) as batch_op:
        batch_op.drop_column("active")

    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_organisation_external_id"), type_="unique")
        batch_op.drop_column("external_id")
        batch_op.drop_column("kvk_number")
        batch_op.drop_column("ura_number")

    with op.batch_alter_table("municipality", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_municipality_cbs_code"), type_="unique")
        batch_op.drop_column("active")
        batch_op.drop_column("cbs_code")

    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_location_external_id"), type_="unique")
        batch_op.drop_column("external_id")
