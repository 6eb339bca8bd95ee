"""The audit tables (SQLAlchemy Core). The alembic migrations own their creation.

``audit_entry`` is the record: ``body`` is exactly the hashed text, the other columns are
indexes the verifier checks against ``body``. ``audit_card`` is a derived index (card uuid to
call) for joining feedback; ``audit_head`` holds the last link so a truncated tail is noticed.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
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
