"""The audit tables (SQLAlchemy Core). The alembic migrations own their creation.

``audit_entry`` is the record: ``body`` is exactly the hashed text, the other columns are
indexes the verifier checks against ``body``. ``audit_card`` is a derived index (card uuid to
call) for joining feedback; ``audit_head`` holds the last link so a truncated tail is noticed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),  # the key of the head's link
)

audit_entry = Table(
    "audit_entry",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("entry_key", String(128), nullable=False),
    Column("hook_instance", String(64), nullable=True, index=True),
    Column("card_uuid", String(128), nullable=True, index=True),
    Column("occurred_at", String(32), nullable=False, index=True),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # None: a plain SHA-256 link; else the id of the HMAC key (audit.keyring) of ``hash``.
    Column("key_id", String(32), nullable=True),
    UniqueConstraint("kind", "entry_key", name="uq_audit_entry_kind_key"),
)

audit_card = Table(
    "audit_card",
    metadata,
    Column("card_uuid", String(128), primary_key=True),
    Column("hook_instance", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

# Not audit data: the JWT replay cache (auth.replay) keeps its rows here because this is the
# one database every worker of a node shares.
jwt_replay = Table(
    "jwt_replay",
    metadata,
    Column("iss", String(512), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),  # epoch seconds, UTC
)

# The governance facts (migration 0003): one row per call, per card and per feedback item,
# derived from the chain when the entry is written (and backfilled from it on upgrade), so the
# committee's measures are SQL aggregates over narrow rows instead of a pass over every JSON
# body. Not hashed: the chain is the record, these are its index. ``*_key`` columns hold a
# digest of a patient or user id: counting distinct people needs identity, not identifiers.
# Periods are precomputed (ISO week starting Monday) so grouping is the same on both backends;
# ``*_day`` columns are proleptic ordinals (date.toordinal) so day differences are integers.
gov_call = Table(
    "gov_call",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hook_instance", String(64), nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("day", String(10), nullable=False),
    Column("week", String(10), nullable=False),
    Column("month", String(10), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("patient_key", String(32), nullable=True),
    Column("user_key", String(32), nullable=True),
    Column("catalogue_version", Text, nullable=True),
)
# Each index answers one query of audit.governance from the index alone (no table reads), the
# slice's filters (service, days) included: counts per day, service and catalogue version,
# users per day, a percentile walk along a period's durations, distinct people per period, the
# first call of each catalogue version; a card's kind and response, overrides by reason.
_SLICE = (gov_call.c.service_id, gov_call.c.day)
Index("ix_gov_call_day", gov_call.c.day, gov_call.c.service_id, gov_call.c.catalogue_version,
      gov_call.c.http_status, gov_call.c.user_key)
Index("ix_gov_call_duration", gov_call.c.duration_ms, *_SLICE)
Index("ix_gov_call_patient", gov_call.c.patient_key, *_SLICE)
Index("ix_gov_call_user", gov_call.c.user_key, *_SLICE)
for _period in ("day", "week", "month"):
    _rest = [c for c in _SLICE if c.name != _period]
    for _what, _column in (("duration", "duration_ms"), ("patient", "patient_key"),
                           ("user", "user_key")):
        Index(f"ix_gov_call_{_period}_{_what}", gov_call.c[_period], gov_call.c[_column],
              *_rest)
Index("ix_gov_call_catalogue", gov_call.c.catalogue_version, gov_call.c.received_at)

gov_card = Table(
    "gov_card",
    metadata,
    Column("card_uuid", String(128), primary_key=True),
    Column("hook_instance", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("service_id", String(64), nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("day", String(10), nullable=False),
    Column("week", String(10), nullable=False),
    Column("month", String(10), nullable=False),
    Column("day_no", Integer, nullable=False),
    Column("rule", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("tier", Text, nullable=False),
    Column("rule_version", Text, nullable=False),
    Column("patient_key", String(32), nullable=True),
    Column("device_ref", Text, nullable=True),
    Column("n_suggestions", Integer, nullable=False),
    Column("suggestions", Text, nullable=False),  # JSON list of the card's suggestion uuids
    Column("override_reasons", Text, nullable=True),  # JSON [[system, code]]; NULL: unrecorded
    Column("last_refill_day", Integer, nullable=True),
    Column("alarm_day", Integer, nullable=True),
    Column("eos_day", Integer, nullable=True),
    Column("booked_day", Integer, nullable=True),
    Column("booked", Integer, nullable=False),
    # The card's response: its latest feedback that fits it (by outcome time, then arrival),
    # kept up to date by the writer so the measures need no window over the feedback.
    Column("response_outcome", String(16), nullable=True),
    Column("response_reason", Text, nullable=True),
    Column("response_accepted", Integer, nullable=True),  # suggestions it accepted
    Column("response_at", String(32), nullable=True),
    Column("response_seq", BigInteger, nullable=True),
)
Index("ix_gov_card_kind", gov_card.c.day, gov_card.c.service_id, gov_card.c.rule,
      gov_card.c.outcome, gov_card.c.tier, gov_card.c.rule_version, gov_card.c.n_suggestions,
      gov_card.c.response_outcome, gov_card.c.response_accepted)
Index("ix_gov_card_response", gov_card.c.response_outcome, gov_card.c.day,
      gov_card.c.service_id, gov_card.c.rule, gov_card.c.outcome, gov_card.c.tier,
      gov_card.c.rule_version, gov_card.c.response_reason)
Index("ix_gov_card_pump", gov_card.c.rule, gov_card.c.patient_key, gov_card.c.device_ref)

gov_feedback = Table(
    "gov_feedback",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("card_uuid", String(128), nullable=False),
    Column("hook_instance", String(64), nullable=True),
    Column("service_id", String(64), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("outcome_at", String(32), nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("day", String(10), nullable=False, index=True),
    Column("week", String(10), nullable=False),
    Column("month", String(10), nullable=False),
    Column("reason_system", Text, nullable=True),
    Column("reason_code", Text, nullable=True),
    Column("reason_display", Text, nullable=True),
    Column("n_accepted", Integer, nullable=False),
    Column("flags", String(128), nullable=False),  # comma-separated; "" when it fits its card
)
