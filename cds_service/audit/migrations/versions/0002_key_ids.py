"""Key ids of HMAC-keyed audit links (NULL: a plain SHA-256 link, as every entry before).

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot add a column inside every ALTER form alembic might emit.
    with op.batch_alter_table("audit_entry") as batch:
        batch.add_column(sa.Column("key_id", sa.String(32), nullable=True))
    with op.batch_alter_table("audit_head") as batch:
        batch.add_column(sa.Column("key_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("key_id")
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_column("key_id")
