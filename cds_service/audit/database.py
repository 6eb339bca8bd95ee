"""The audit database: its engine (SQLite or PostgreSQL), migrations, locks and outages.

Writes of the chain are serialised across threads and worker processes: PostgreSQL takes
``pg_advisory_xact_lock``; SQLite opens every write with ``BEGIN IMMEDIATE`` (one writer),
queued on a file lock, and waits on a busy timeout. ``is_outage`` tells a database that cannot
be reached from one that refused a record, which decides between spooling and rejecting.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from cds_service.audit import filelock, migrations
from cds_service.audit.filemode import create_private, restrict_mode

BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 5
# Fixed 64-bit keys for pg_advisory_xact_lock: one for the chain, one for migrations.
CHAIN_LOCK_KEY = int.from_bytes(hashlib.sha256(b"itb-cds audit chain").digest()[:8], "big",
                                signed=True)
MIGRATE_LOCK_KEY = int.from_bytes(hashlib.sha256(b"itb-cds audit migrate").digest()[:8], "big",
                                  signed=True)
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


def _private_sqlite_files(database: str | None) -> None:
    """The audit database file is created 0600 before SQLite opens it; SQLite gives its WAL
    and shared-memory files the database file's mode."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir():
        create_private(path)
    for suffix in ("-wal", "-shm", ".writer.lock"):
        restrict_mode(path.with_name(path.name + suffix))


class AuditDatabase:
    """The audit database of one process: one engine, migrated once, and its write locks."""

    def __init__(self, database_url: str) -> None:
        self.url = normalise_url(database_url)
        self.is_postgres = self.url.get_backend_name() == "postgresql"
        if self.is_postgres:
            self.engine = create_engine(
                self.url,
                pool_pre_ping=True,
                connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S},
            )
        else:
            _private_sqlite_files(self.url.database)
            self.engine = _sqlite_engine(self.url)
        database = self.url.database
        self._lock_path = (
            f"{database}.writer.lock"
            if not self.is_postgres and database and database != ":memory:"
            else None
        )
        self._schema_ready = False

    def migrate(self) -> None:
        """Bring the schema to head. Raises when the database is down."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK_KEY})
            migrations.upgrade(conn)
        self._schema_ready = True

    def ensure_schema(self) -> None:
        if not self._schema_ready:
            self.migrate()

    def ping(self) -> bool:
        try:
            with self.reading() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction holding the chain's writer lock: every writer, in every process, waits.

        The caller ensures the schema first.
        """
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
        with filelock.exclusive(self._lock_path):
            yield

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as raw:
            conn = raw.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction outside the chain's lock, on a migrated schema.

        For tables beside the chain (the JWT replay cache) whose users have no spool to fall
        back on: an outage raises ``AuditUnavailable`` so they can fail closed; any other
        error (an ``IntegrityError``, say) propagates as it is.
        """
        try:
            self.ensure_schema()
            with self.engine.begin() as conn:
                yield conn
        except Exception as exc:
            if is_outage(exc):
                raise AuditUnavailable("audit database unavailable") from exc
            raise
