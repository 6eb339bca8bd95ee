"""Audit chain, card index, chain head and JWT replay cache.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entry_key", sa.String(128), nullable=False),
        sa.Column("hook_instance", sa.String(64), nullable=True),
        sa.Column("card_uuid", sa.String(128), nullable=True),
        sa.Column("occurred_at", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("kind", "entry_key", name="uq_audit_entry_kind_key"),
    )
    op.create_index("ix_audit_entry_hook_instance", "audit_entry", ["hook_instance"])
    op.create_index("ix_audit_entry_card_uuid", "audit_entry", ["card_uuid"])
    op.create_index("ix_audit_entry_occurred_at", "audit_entry", ["occurred_at"])
    op.create_table(
        "audit_card",
        sa.Column("card_uuid", sa.String(128), primary_key=True),
        sa.Column("hook_instance", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "jwt_replay",
        sa.Column("iss", sa.String(512), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_jwt_replay_expires_at", "jwt_replay", ["expires_at"])


def downgrade() -> None:
    op.drop_table("jwt_replay")
    op.drop_table("audit_card")
    op.drop_table("audit_entry")
    op.drop_table("audit_head")
