"""audit chains: per-object HMAC chains, chain heads, signed checkpoints, no TRUNCATE

Revision ID: 0009
Revises: 0010
Create Date: 2026-12-05 09:00:00.000000+00:00

The access log's one global chain (serialised by an advisory lock held to COMMIT) becomes one
chain per object: ``audit_log.chain``/``chain_seq``, with each chain's head in
``audit_chain_head`` and signed checkpoints in ``audit_checkpoint``/``audit_checkpoint_head``
(docs/audit.md). Existing rows become the chain ``legacy``, positions in id order, their
SHA-256 hashes unchanged. On PostgreSQL the access-log tables also refuse TRUNCATE, and the
checkpoints are append-only like the log.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0009"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROTECTED = ("audit_log", "audit_checkpoint", "audit_checkpoint_head")


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "audit_chain_head",
        sa.Column("chain", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("checkpointed_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chain_head")),
    )
    with op.batch_alter_table("audit_chain_head", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_chain_head_unsigned",
            ["chain"],
            unique=False,
            postgresql_where=sa.text("seq > checkpointed_seq"),
            sqlite_where=sa.text("seq > checkpointed_seq"),
        )
    op.create_table(
        "audit_checkpoint",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heads", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("prev_signature", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_audit_checkpoint")),
    )
    op.create_table(
        "audit_checkpoint_head",
        sa.Column("checkpoint", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("checkpoint", "chain", name=op.f("pk_audit_checkpoint_head")),
    )

    if pg:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("chain_seq", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE audit_log SET chain = 'legacy', chain_seq = n.rn FROM "
        "(SELECT id, row_number() OVER (ORDER BY id) AS rn FROM audit_log) AS n "
        "WHERE n.id = audit_log.id"
    )
    op.execute(
        "INSERT INTO audit_chain_head (chain, seq, hash, checkpointed_seq) "
        "SELECT 'legacy', chain_seq, hash, 0 FROM audit_log "
        "WHERE chain_seq = (SELECT max(chain_seq) FROM audit_log)"
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("chain", existing_type=sa.String(length=100), nullable=False)
        batch_op.alter_column("chain_seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index("uq_audit_log_chain_seq", ["chain", "chain_seq"], unique=True)
    if pg:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        for table in ("audit_checkpoint", "audit_checkpoint_head"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION juisteplek_refuse_change()"
            )
        # Row triggers do not see TRUNCATE; a statement trigger does. (Dropping the trigger or
        # the table needs ownership, which the application's role does not have: docs/audit.md.)
        op.execute(
            """
            CREATE FUNCTION juisteplek_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        for table in _PROTECTED:
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION juisteplek_refuse_truncate()"
            )


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        for table in _PROTECTED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS juisteplek_refuse_truncate()")
        for table in ("audit_checkpoint", "audit_checkpoint_head"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("uq_audit_log_chain_seq")
        batch_op.drop_column("chain_seq")
        batch_op.drop_column("chain")
    op.drop_table("audit_checkpoint_head")
    op.drop_table("audit_checkpoint")
    with op.batch_alter_table("audit_chain_head", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_chain_head_unsigned")
    op.drop_table("audit_chain_head")
