"""Governance facts: a row per call, card and feedback item, backfilled from the chain.

Revision ID: 0003
Revises: 0002
Create Date: 2026-06-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PERIODS = ("day", "week", "month")
# As in schema.py, where each is explained.
_SLICE = ["service_id", "day"]
_CALL_INDEXES = {
    "ix_gov_call_day": ["day", "service_id", "catalogue_version", "http_status", "user_key"],
    "ix_gov_call_duration": ["duration_ms", *_SLICE],
    "ix_gov_call_patient": ["patient_key", *_SLICE],
    "ix_gov_call_user": ["user_key", *_SLICE],
    **{f"ix_gov_call_{p}_{what}": [p, column, *(c for c in _SLICE if c != p)]
       for p in _PERIODS
       for what, column in (("duration", "duration_ms"), ("patient", "patient_key"),
                            ("user", "user_key"))},
    "ix_gov_call_catalogue": ["catalogue_version", "received_at"],
}


def _period_columns() -> list[sa.Column[str]]:
    return [sa.Column(name, sa.String(10), nullable=False) for name in _PERIODS]


def upgrade() -> None:
    op.create_table(
        "gov_call",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hook_instance", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        *_period_columns(),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("patient_key", sa.String(32), nullable=True),
        sa.Column("user_key", sa.String(32), nullable=True),
        sa.Column("catalogue_version", sa.Text, nullable=True),
    )
    for name, columns in _CALL_INDEXES.items():
        op.create_index(name, "gov_call", columns)
    op.create_table(
        "gov_card",
        sa.Column("card_uuid", sa.String(128), primary_key=True),
        sa.Column("hook_instance", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        *_period_columns(),
        sa.Column("day_no", sa.Integer, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("rule_version", sa.Text, nullable=False),
        sa.Column("patient_key", sa.String(32), nullable=True),
        sa.Column("device_ref", sa.Text, nullable=True),
        sa.Column("n_suggestions", sa.Integer, nullable=False),
        sa.Column("suggestions", sa.Text, nullable=False),
        sa.Column("override_reasons", sa.Text, nullable=True),
        sa.Column("last_refill_day", sa.Integer, nullable=True),
        sa.Column("alarm_day", sa.Integer, nullable=True),
        sa.Column("eos_day", sa.Integer, nullable=True),
        sa.Column("booked_day", sa.Integer, nullable=True),
        sa.Column("booked", sa.Integer, nullable=False),
        sa.Column("response_outcome", sa.String(16), nullable=True),
        sa.Column("response_reason", sa.Text, nullable=True),
        sa.Column("response_accepted", sa.Integer, nullable=True),
        sa.Column("response_at", sa.String(32), nullable=True),
        sa.Column("response_seq", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_gov_card_kind", "gov_card", [
        "day", "service_id", "rule", "outcome", "tier", "rule_version", "n_suggestions",
        "response_outcome", "response_accepted"])
    op.create_index("ix_gov_card_response", "gov_card", [
        "response_outcome", "day", "service_id", "rule", "outcome", "tier", "rule_version",
        "response_reason"])
    op.create_index("ix_gov_card_pump", "gov_card", ["rule", "patient_key", "device_ref"])
    op.create_table(
        "gov_feedback",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("card_uuid", sa.String(128), nullable=False),
        sa.Column("hook_instance", sa.String(64), nullable=True),
        sa.Column("service_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_at", sa.String(32), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        *_period_columns(),
        sa.Column("reason_system", sa.Text, nullable=True),
        sa.Column("reason_code", sa.Text, nullable=True),
        sa.Column("reason_display", sa.Text, nullable=True),
        sa.Column("n_accepted", sa.Integer, nullable=False),
        sa.Column("flags", sa.String(128), nullable=False),
    )
    op.create_index("ix_gov_feedback_day", "gov_feedback", ["day"])

    # The entries already in the chain get their facts now, from their hashed bodies.
    from cds_service.audit.backfill import backfill

    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("gov_feedback")
    op.drop_table("gov_card")
    op.drop_table("gov_call")
