"""The audit store: one hash chain of call and feedback entries, SQLite or PostgreSQL.

Writes are serialised so the chain stays linear across threads and worker processes:
PostgreSQL takes ``pg_advisory_xact_lock``; SQLite opens every write with ``BEGIN IMMEDIATE``
(one writer) and waits on a busy timeout. When the database cannot be reached the record goes
to the spool (fsync'd) and is replayed, in order, before the next successful write.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, create_engine, delete, event, insert, select, text, update
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)

from cds_service.audit import export, migrations, report
from cds_service.audit.chain import GENESIS_HASH, canonical_json, link_hash
from cds_service.audit.models import (
    CallRecord,
    FeedbackRecord,
    FeedbackSummary,
    Report,
    StoredFeedback,
    VerifyResult,
)
from cds_service.audit.schema import audit_card, audit_entry, audit_head, jwt_replay
from cds_service.audit.spool import Spool, SpooledCall, SpooledFeedback, SpoolItem
from cds_service.config import Settings

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 5
# Fixed 64-bit keys for pg_advisory_xact_lock: one for the chain, one for migrations.
CHAIN_LOCK_KEY = int.from_bytes(hashlib.sha256(b"itb-cds audit chain").digest()[:8], "big",
                                signed=True)
MIGRATE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"itb-cds audit migrate").digest()[:8], "big",
                                  signed=True)
JTI_PRUNE_EVERY = 100
_READ_ONLY = "itb_audit_read_only"


class AuditUnavailable(RuntimeError):
    """The audit database cannot be reached (raised only where no spool fallback exists)."""


def is_outage(exc: BaseException) -> bool:
    """True when the database is unreachable or busy, not when it refused a record."""
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        return True
    if isinstance(exc, OSError):  # the SQLite writer lock's directory is gone or unwritable
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def normalise_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _file_identity(path: str | None) -> tuple[int, int] | None:
    if not path or path == ":memory:":
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _sqlite_engine(url: URL) -> Engine:
    # Pooled connections: opening one per write cost more than the write. A pooled handle is
    # dropped when the database file was moved, replaced or deleted, so it never writes into
    # a file nobody reads any more.
    engine = create_engine(
        url, pool_size=4, max_overflow=4, connect_args={"timeout": BUSY_TIMEOUT_S}
    )
    database = url.database

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("file") != _file_identity(database):
            raise DisconnectionError("the audit database file changed under the pool")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: in WAL mode NORMAL may lose the last commits on power loss; an audit may not.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()
        record.info["file"] = _file_identity(database)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _utc_text(value: datetime) -> str:
    # Fixed width so that text order is time order on every backend.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def feedback_key(item: FeedbackRecord) -> str:
    raw = f"{item.card_uuid}\n{item.outcome}\n{_utc_text(item.outcome_timestamp)}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class AuditStore:
    """Synchronous; call it from async code through a threadpool."""

    def __init__(self, settings: Settings, *, database_url: str | None = None) -> None:
        self.settings = settings
        self.url = normalise_url(database_url or settings.database_url)
        self.is_postgres = self.url.get_backend_name() == "postgresql"
        if self.is_postgres:
            self.engine = create_engine(
                self.url,
                pool_pre_ping=True,
                connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
            )
        else:
            self.engine = _sqlite_engine(self.url)
        self.spool = Spool(settings.spool_path)
        database = self.url.database
        self._lock_path = (
            f"{database}.writer.lock"
            if not self.is_postgres and database and database != ":memory:"
            else None
        )
        self._schema_ready = False
        self._jti_lock = threading.Lock()
        self._jti_calls = 0

    # -- lifecycle -------------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to head, then replay the spool. Raises when the DB is down."""
        self._migrate()
        self.replay_spool()

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
            migrations.upgrade(conn)
        self._schema_ready = True

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            self._migrate()

    def ping(self) -> bool:
        try:
            with self._reading() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------

    def record_call(self, rec: CallRecord) -> None:
        """Committed, or fsync'd to the spool, before it returns; never raises for an outage."""
        self._write_durably(SpooledCall(record=rec))

    def record_feedback(self, service_id: str, items: list[FeedbackRecord]) -> FeedbackSummary:
        filled = [i if i.service_id else i.model_copy(update={"service_id": service_id})
                  for i in items]
        return self._write_durably(SpooledFeedback(service_id=service_id, records=filled))

    def replay_spool(self) -> int:
        """Move spooled items into the database in order; returns how many were written."""
        if not self.spool.has_items():
            return 0
        with self.spool.locked():
            return self.spool.replay(self._write_item, is_outage)

    def _write_durably(self, item: SpoolItem) -> FeedbackSummary:
        if self.spool.has_items():
            with self.spool.locked():
                self.spool.replay(self._write_item, is_outage)
                if not self.spool.has_items():
                    with contextlib.suppress(Exception):
                        return self._write_item(item)
                return self._spool(item, locked=True)
        try:
            return self._write_item(item)
        except Exception as exc:
            if not is_outage(exc):
                log.exception("audit write refused; keeping the record in the spool")
            return self._spool(item, locked=False)

    def _spool(self, item: SpoolItem, *, locked: bool) -> FeedbackSummary:
        log.warning("audit database unavailable; record spooled to %s", self.spool.path)
        if locked:
            self.spool.append(item)
        else:
            with self.spool.locked():
                self.spool.append(item)
        spooled = len(item.records) if isinstance(item, SpooledFeedback) else 1
        return FeedbackSummary(spooled=spooled)

    def _write_item(self, item: SpoolItem) -> FeedbackSummary:
        self._ensure_schema()
        with self._writing() as conn:
            if isinstance(item, SpooledCall):
                return self._write_call(conn, item.record)
            summary = FeedbackSummary()
            for fb in item.records:
                self._write_feedback(conn, fb, summary)
            return summary

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        if self.is_postgres:
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
                yield conn
            return
        # SQLite has one writer; queueing on a file lock wakes the next writer at once,
        # where SQLite's own busy handler sleeps in growing steps (seconds at p95 under load).
        with self._writer_lock(), self.engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        if self._lock_path is None:
            yield
            return
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self.engine.connect() as raw:
            conn = raw.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                yield conn

    def _exists(self, conn: Connection, kind: str, key: str) -> bool:
        found = conn.execute(
            select(audit_entry.c.seq).where(
                audit_entry.c.kind == kind, audit_entry.c.entry_key == key
            )
        ).first()
        return found is not None

    def _write_call(self, conn: Connection, rec: CallRecord) -> FeedbackSummary:
        if self._exists(conn, "call", rec.hook_instance):
            return FeedbackSummary(duplicates=1)
        seq = self._append(
            conn,
            kind="call",
            key=rec.hook_instance,
            hook_instance=rec.hook_instance,
            card_uuid=None,
            occurred_at=rec.received_at,
            payload=rec.model_dump(mode="json"),
        )
        uuids = sorted({c.uuid for c in rec.cards})
        if uuids:
            conn.execute(
                insert(audit_card),
                [{"card_uuid": u, "hook_instance": rec.hook_instance, "seq": seq} for u in uuids],
            )
        return FeedbackSummary(stored=1)

    def _write_feedback(self, conn: Connection, fb: FeedbackRecord,
                        summary: FeedbackSummary) -> None:
        key = feedback_key(fb)
        if self._exists(conn, "feedback", key):
            summary.duplicates += 1
            return
        hook_instance = conn.execute(
            select(audit_card.c.hook_instance)
            .where(audit_card.c.card_uuid == fb.card_uuid)
            .order_by(audit_card.c.seq)
            .limit(1)
        ).scalar()
        self._append(
            conn,
            kind="feedback",
            key=key,
            hook_instance=cast(str | None, hook_instance),
            card_uuid=fb.card_uuid,
            occurred_at=fb.received_at,
            payload={
                "feedback": fb.model_dump(mode="json"),
                "hook_instance": hook_instance,
                "unknown_card": hook_instance is None,
            },
        )
        summary.stored += 1
        if hook_instance is None:
            summary.unknown_cards += 1

    def _append(self, conn: Connection, *, kind: str, key: str, hook_instance: str | None,
                card_uuid: str | None, occurred_at: datetime, payload: dict[str, Any]) -> int:
        head = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        seq = int(head.seq) + 1
        prev_hash = str(head.hash)
        occurred = _utc_text(occurred_at)
        body = canonical_json({
            "seq": seq,
            "kind": kind,
            "key": key,
            "hook_instance": hook_instance,
            "card_uuid": card_uuid,
            "occurred_at": occurred,
            "payload": payload,
        })
        digest = link_hash(prev_hash, body)
        conn.execute(
            insert(audit_entry).values(
                seq=seq,
                kind=kind,
                entry_key=key,
                hook_instance=hook_instance,
                card_uuid=card_uuid,
                occurred_at=occurred,
                body=body,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        return seq

    # -- JWT replay cache ------------------------------------------------------------------

    def remember_jti(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """True if (iss, jti) is fresh (now remembered), False if seen and not yet expired.

        Raises AuditUnavailable when the database is down: the auth layer must fail closed.
        """
        now = int(datetime.now(UTC).timestamp())
        expires = int(expires_at.timestamp()) if expires_at.tzinfo else int(
            expires_at.replace(tzinfo=UTC).timestamp())
        with self._jti_lock:
            self._jti_calls += 1
            prune = self._jti_calls % JTI_PRUNE_EVERY == 1
        try:
            self._ensure_schema()
            with self.engine.begin() as conn:
                if prune:
                    conn.execute(delete(jwt_replay).where(jwt_replay.c.expires_at <= now))
                else:
                    conn.execute(delete(jwt_replay).where(
                        jwt_replay.c.iss == iss, jwt_replay.c.jti == jti,
                        jwt_replay.c.expires_at <= now))
                seen = conn.execute(select(jwt_replay.c.expires_at).where(
                    jwt_replay.c.iss == iss, jwt_replay.c.jti == jti)).first()
                if seen is not None:
                    return False
                conn.execute(insert(jwt_replay).values(iss=iss, jti=jti, expires_at=expires))
        except IntegrityError:
            return False  # another worker remembered the same jti a moment ago
        except Exception as exc:
            if is_outage(exc):
                raise AuditUnavailable("JWT replay cache unavailable") from exc
            raise
        return True

    # -- reading ---------------------------------------------------------------------------

    def _entries(self, *, kind: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, hook_instance: str | None = None
                 ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        query = select(audit_entry.c.seq, audit_entry.c.kind, audit_entry.c.body).order_by(
            audit_entry.c.seq)
        if kind is not None:
            query = query.where(audit_entry.c.kind == kind)
        if since is not None:
            query = query.where(audit_entry.c.occurred_at >= _utc_text(since))
        if until is not None:
            query = query.where(audit_entry.c.occurred_at < _utc_text(until))
        if hook_instance is not None:
            query = query.where(audit_entry.c.hook_instance == hook_instance)
        self._ensure_schema()
        with self._reading() as conn:
            with conn.execution_options(yield_per=500).execute(query) as rows:
                for row in rows:
                    body = json.loads(row.body)
                    yield int(row.seq), str(row.kind), cast(dict[str, Any], body["payload"])

    def calls_for(self, hook_instance: str) -> list[CallRecord]:
        return [CallRecord.model_validate(p)
                for _, _, p in self._entries(kind="call", hook_instance=hook_instance)]

    def feedback_for(self, hook_instance: str) -> list[FeedbackRecord]:
        return [s.record for s in self.stored_feedback(hook_instance=hook_instance)]

    def stored_feedback(self, *, hook_instance: str | None = None,
                        since: datetime | None = None) -> list[StoredFeedback]:
        return [_stored_feedback(seq, p) for seq, _, p in
                self._entries(kind="feedback", hook_instance=hook_instance, since=since)]

    def calls(self, *, since: datetime | None = None, until: datetime | None = None
              ) -> Iterator[tuple[int, CallRecord]]:
        for seq, _, p in self._entries(kind="call", since=since, until=until):
            yield seq, CallRecord.model_validate(p)

    def verify(self) -> VerifyResult:
        self._ensure_schema()
        with self._reading() as conn:
            head = conn.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            ).one()
            with conn.execution_options(yield_per=500).execute(
                select(audit_entry).order_by(audit_entry.c.seq)
            ) as rows:
                return verify_rows(rows, int(head.seq), str(head.hash))

    def report(self, since: datetime | None = None) -> Report:
        return report.build_report(
            (rec for _, rec in self.calls(since=since)),
            self.stored_feedback(since=since),
            since=since,
        )

    def export_fhir(self, since: datetime | None = None, until: datetime | None = None
                    ) -> Iterator[dict[str, Any]]:
        for seq, kind, payload in self._entries(since=since, until=until):
            if kind == "call":
                yield from export.call_resources(CallRecord.model_validate(payload), self.settings)
            else:
                yield export.feedback_audit_event(_stored_feedback(seq, payload), self.settings)

    def export_csv(self, since: datetime | None = None, until: datetime | None = None
                   ) -> Iterator[str]:
        def rows() -> Iterator[export.CsvRow]:
            for seq, kind, payload in self._entries(since=since, until=until):
                if kind == "call":
                    yield export.call_csv_row(seq, CallRecord.model_validate(payload))
                else:
                    yield export.feedback_csv_row(_stored_feedback(seq, payload))

        return export.csv_lines(rows())


def _stored_feedback(seq: int, payload: dict[str, Any]) -> StoredFeedback:
    return StoredFeedback(
        seq=seq,
        record=FeedbackRecord.model_validate(payload["feedback"]),
        hook_instance=payload["hook_instance"],
        unknown_card=bool(payload["unknown_card"]),
    )


def verify_rows(rows: Iterable[Any], head_seq: int, head_hash: str) -> VerifyResult:
    """Walk the chain in seq order; report the first broken link."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    checked = 0

    def broken(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(ok=False, checked=checked, first_broken_seq=seq, reason=reason,
                            head_seq=head_seq, head_hash=head_hash)

    for row in rows:
        seq = int(row.seq)
        if seq > expected_seq:
            return broken(expected_seq, f"entry {expected_seq} is missing (next is {seq})")
        if seq < expected_seq:
            return broken(seq, f"unexpected entry {seq} (expected {expected_seq})")
        if row.prev_hash != prev_hash:
            return broken(seq, f"entry {seq} does not link to entry {seq - 1}")
        if link_hash(prev_hash, row.body) != row.hash:
            return broken(seq, f"entry {seq} content does not match its hash")
        try:
            body = json.loads(row.body)
        except ValueError:
            return broken(seq, f"entry {seq} body is not JSON")
        columns = {"seq": seq, "kind": row.kind, "key": row.entry_key,
                   "hook_instance": row.hook_instance, "card_uuid": row.card_uuid,
                   "occurred_at": row.occurred_at}
        for name, value in columns.items():
            if body.get(name) != value:
                return broken(seq, f"entry {seq} column {name} differs from the hashed body")
        prev_hash = str(row.hash)
        expected_seq += 1
        checked += 1
    last = expected_seq - 1
    if last != head_seq or prev_hash != head_hash:
        if head_seq > last:
            return broken(last + 1, f"entries {last + 1}..{head_seq} are missing at the end")
        return broken(last, "the chain does not end at the recorded head")
    return VerifyResult(ok=True, checked=checked, head_seq=head_seq, head_hash=head_hash)


__all__ = ["AuditStore", "AuditUnavailable", "is_outage"]
