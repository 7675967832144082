"""webhook secrets encrypted, idempotency purge index, coarse delivery-log errors

Revision ID: 0008
Revises: 0012
Create Date: 2026-12-05 09:00:00.000000+00:00

- ``webhook_subscription.secret`` grows to 500 characters: it now holds ``enc:v1:<Fernet
  token>`` (now app/secretbox.py). Existing plaintext secrets stay readable as they are;
  ``juisteplek webhooks reencrypt`` encrypts them with the configured key.
- ``idempotency_record.created_at`` gets an index: the background sweep purges records older
  than ``JUISTEPLEK_IDEMPOTENCY_RETENTION_HOURS``.
- The delivery log shows outcome categories, not raw connection errors (those could map another
  host's ports for a tenant): earlier rows are rewritten to ``http_<status>`` or ``send_failed``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=100), type_=sa.String(length=500)
        )
    op.create_index(op.f("ix_idempotency_record_created_at"), "idempotency_record", ["created_at"])
    op.execute(
        "UPDATE webhook_attempt SET error = 'http_' || CAST(status_code AS VARCHAR(10)) "
        "WHERE error IS NOT NULL AND status_code IS NOT NULL"
    )
    op.execute(
        "UPDATE webhook_attempt SET error = 'send_failed' "
        "WHERE error IS NOT NULL AND status_code IS NULL"
    )
    op.execute(
        "UPDATE webhook_delivery SET last_error = 'http_' || CAST(last_status_code AS VARCHAR(10)) "
        "WHERE last_error IS NOT NULL AND last_status_code IS NOT NULL"
    )
    op.execute(
        "UPDATE webhook_delivery SET last_error = 'send_failed' "
        "WHERE last_error IS NOT NULL AND last_status_code IS NULL "
        "AND last_error <> 'subscription deleted'"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_record_created_at"), table_name="idempotency_record")
    with op.batch_alter_table("webhook_subscription") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=500), type_=sa.String(length=100)
        )
