"""The audit store: one hash chain of call and feedback entries, SQLite or PostgreSQL.

Writes are serialised so the chain stays linear across threads and worker processes (see
database.AuditDatabase.writing). When the database cannot be reached the record goes to the
spool (fsync'd) and is replayed, in order, before the next successful write.

Within a process, one writer thread (writer.GroupWriter) takes every call and feedback item
waiting and writes them in one transaction (group commit): one lock, one head read, one
fsync per batch. A caller still resumes only once its own item is committed or spooled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, select
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from cds_service.audit import export, report
from cds_service.audit.chain import GENESIS_HASH, link_hash
from cds_service.audit.database import AuditDatabase, is_outage
from cds_service.audit.entry import (
    Prepared,
    PreparedCall,
    PreparedFeedback,
    entry_body,
    feedback_payload,
    utc_text,
)
from cds_service.audit.models import (
    CallRecord,
    FeedbackRecord,
    FeedbackSummary,
    Report,
    StoredFeedback,
    VerifyResult,
)
from cds_service.audit.schema import audit_entry, audit_head
from cds_service.audit.spool import Spool, SpooledCall, SpoolItem
from cds_service.audit.writer import AuditStoreClosed, GroupWriter, WriterStats
from cds_service.config import Settings

log = logging.getLogger(__name__)

def _prepare_feedback(service_id: str, items: list[FeedbackRecord]) -> PreparedFeedback:
    filled = [i if i.service_id else i.model_copy(update={"service_id": service_id})
              for i in items]
    return PreparedFeedback.of(service_id, filled)


class _Sql:
    """The write path's statements as driver SQL: Core compilation cost more than the I/O."""

    def __init__(self, *, postgres: bool) -> None:
        self.mark = "%s" if postgres else "?"
        m = self.mark
        self.head = "SELECT seq, hash FROM audit_head WHERE id = 1"
        self.insert_entry = (
            "INSERT INTO audit_entry (seq, kind, entry_key, hook_instance, card_uuid, "
            f"occurred_at, body, prev_hash, hash) VALUES ({', '.join([m] * 9)})")
        self.insert_card = (
            f"INSERT INTO audit_card (card_uuid, hook_instance, seq) VALUES ({m}, {m}, {m})")
        self.update_head = f"UPDATE audit_head SET seq = {m}, hash = {m} WHERE id = 1"

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)


_IN_CHUNK = 500  # bound parameters per IN (...) list, well under every backend's limit


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start:start + _IN_CHUNK]


class _BatchWriter:
    """One transaction: the head read once, duplicates found in bulk, rows inserted in bulk.

    A duplicate (hook instance, or feedback key) is one already stored or one earlier in the
    same batch; a feedback item joins the first call that showed its card, stored or batched.
    """

    def __init__(self, conn: Connection, sql: _Sql) -> None:
        self.conn = conn
        self.sql = sql
        # The driver's own cursor, inside SQLAlchemy's transaction: per statement it costs
        # ~2 us where exec_driver_sql costs ~27 us; errors are translated back below.
        self.cursor = conn.connection.cursor()

    def _run(self, statement: str, params: Sequence[Any], *, many: bool = False) -> list[Any]:
        try:
            if many:
                self.cursor.executemany(statement, params)
                return []
            self.cursor.execute(statement, params)
            return list(self.cursor.fetchall()) if self.cursor.description else []
        except Exception as exc:
            raise self._translated(statement, params, exc) from exc

    def _translated(self, statement: str, params: Sequence[Any], exc: Exception
                    ) -> BaseException:
        # As SQLAlchemy would have raised it, so is_outage tells an outage from a refusal.
        dialect = self.conn.dialect
        base: type[Exception] = dialect.loaded_dbapi.Error
        if not isinstance(exc, base):
            return exc
        disconnected = dialect.is_disconnect(
            cast(Any, exc), self.conn.connection.dbapi_connection, self.cursor)
        return DBAPIError.instance(statement, params, exc, base, dialect=dialect,
                                   connection_invalidated=disconnected)

    def _existing(self, kind: str, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(set(keys))):
            rows = self._run(
                "SELECT entry_key FROM audit_entry WHERE kind = "
                f"{self.sql.mark} AND entry_key IN ({self.sql.marks(len(chunk))})",
                (kind, *chunk))
            found.update(str(r[0]) for r in rows)
        return found

    def _card_calls(self, card_uuids: list[str]) -> dict[str, str]:
        first: dict[str, str] = {}
        for chunk in _chunks(sorted(set(card_uuids))):
            rows = self._run(
                "SELECT card_uuid, hook_instance FROM audit_card WHERE card_uuid IN "
                f"({self.sql.marks(len(chunk))}) ORDER BY seq", tuple(chunk))
            for card_uuid, hook_instance in rows:
                first.setdefault(str(card_uuid), str(hook_instance))
        return first

    def write(self, items: list[Prepared]) -> list[FeedbackSummary]:
        calls = [i.hook_instance for i in items if isinstance(i, PreparedCall)]
        feedback = [r for i in items if isinstance(i, PreparedFeedback) for r in i.records]
        seen_calls = self._existing("call", calls) if calls else set()
        seen_feedback = self._existing("feedback", [r.key for r in feedback]) if feedback \
            else set()
        card_calls = self._card_calls([r.card_uuid for r in feedback]) if feedback else {}
        [(head_seq, head_hash)] = self._run(self.sql.head, ())
        seq, prev = int(head_seq), str(head_hash)
        entries: list[tuple[object, ...]] = []
        cards: list[tuple[str, str, int]] = []
        results: list[FeedbackSummary] = []

        def append(kind: str, key: str, hook_instance: str | None, card_uuid: str | None,
                   occurred_at: str, payload: str) -> None:
            nonlocal seq, prev
            seq += 1
            body = entry_body(seq=seq, kind=kind, key=key, hook_instance=hook_instance,
                              card_uuid=card_uuid, occurred_at=occurred_at, payload=payload)
            digest = link_hash(prev, body)
            entries.append((seq, kind, key, hook_instance, card_uuid, occurred_at, body, prev,
                            digest))
            prev = digest

        for item in items:
            summary = FeedbackSummary()
            if isinstance(item, PreparedCall):
                if item.hook_instance in seen_calls:
                    summary.duplicates = 1
                else:
                    seen_calls.add(item.hook_instance)
                    append("call", item.hook_instance, item.hook_instance, None,
                           item.occurred_at, item.payload)
                    summary.stored = 1
                    for card_uuid in item.card_uuids:
                        cards.append((card_uuid, item.hook_instance, seq))
                        card_calls.setdefault(card_uuid, item.hook_instance)
            else:
                for fb in item.records:
                    if fb.key in seen_feedback:
                        summary.duplicates += 1
                        continue
                    seen_feedback.add(fb.key)
                    hook_instance = card_calls.get(fb.card_uuid)
                    append("feedback", fb.key, hook_instance, fb.card_uuid, fb.occurred_at,
                           feedback_payload(fb.feedback, hook_instance))
                    summary.stored += 1
                    if hook_instance is None:
                        summary.unknown_cards += 1
            results.append(summary)
        if entries:
            self._run(self.sql.insert_entry, entries, many=True)
            if cards:
                self._run(self.sql.insert_card, cards, many=True)
            self._run(self.sql.update_head, (seq, prev))
        return results


class AuditStore:
    """The audit log of one process.

    Writes go through the store's writer thread (group commit): ``record_call_async`` and
    ``record_feedback_async`` from the event loop, ``record_call`` and ``record_feedback``
    from threads. Reads are synchronous; call them from async code through a threadpool.
    """

    def __init__(self, settings: Settings, *, database_url: str | None = None) -> None:
        self.settings = settings
        self.database = AuditDatabase(database_url or settings.database_url)
        self.spool = Spool(settings.spool_path)
        self._sql = _Sql(postgres=self.database.is_postgres)
        self._writer = GroupWriter(self._write_queued)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @property
    def url(self) -> URL:
        return self.database.url

    def migrate(self) -> None:
        """Bring the schema to head, then replay the spool. Raises when the DB is down."""
        self.database.migrate()
        self.replay_spool()

    def ping(self) -> bool:
        return self.database.ping()

    def close(self) -> None:
        """Write what is queued, stop the writer, release the pool; later writes raise."""
        self._writer.close()
        self.database.dispose()

    async def aclose(self) -> None:
        """``close`` without blocking the event loop while the queue drains."""
        await asyncio.to_thread(self.close)

    def drain(self) -> None:
        """Write everything queued and release the pool, but stay usable.

        For an app's shutdown: the Runtime outlives its lifespan, which tests (and ASGI test
        clients) start and stop more than once; a later write simply starts again.
        """
        self._writer.flush()
        self.database.dispose()

    async def adrain(self) -> None:
        await asyncio.to_thread(self.drain)

    # -- writing ---------------------------------------------------------------------------

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    def record_call(self, rec: CallRecord) -> None:
        """Committed, or fsync'd to the spool, before it returns; never raises for an outage.

        Raises AuditStoreClosed after ``close()``, ValueError for a record the chain cannot
        hold (a non-finite number).
        """
        self._writer.write(PreparedCall.of(rec))

    async def record_call_async(self, rec: CallRecord) -> None:
        """``record_call`` for the event loop: waits for the writer thread without a pool."""
        await self._writer.write_async(PreparedCall.of(rec))

    def record_feedback(self, service_id: str, items: list[FeedbackRecord]) -> FeedbackSummary:
        return self._writer.write(_prepare_feedback(service_id, items))

    async def record_feedback_async(self, service_id: str, items: list[FeedbackRecord]
                                    ) -> FeedbackSummary:
        return await self._writer.write_async(_prepare_feedback(service_id, items))

    def replay_spool(self) -> int:
        """Move spooled items into the database in order; returns how many were written."""
        if not self.spool.has_items():
            return 0
        with self.spool.locked():
            return self.spool.replay(self._write_item, is_outage)

    def _write_queued(self, items: list[Prepared]) -> list[FeedbackSummary]:
        """The writer thread's batch: the spool first, then every item, durably, in order."""
        if self.spool.has_items():
            with self.spool.locked():
                self.spool.replay(self._write_item, is_outage)
                if self.spool.has_items():  # still down: behind the spool, in order
                    return self._spool(items, locked=True)
                return self._write_or_spool(items, spool_locked=True)
        return self._write_or_spool(items, spool_locked=False)

    def _write_or_spool(self, items: list[Prepared], *, spool_locked: bool
                        ) -> list[FeedbackSummary]:
        try:
            return self._write_batch(items)
        except Exception as exc:
            if is_outage(exc):
                return self._spool(items, locked=spool_locked)
            if len(items) == 1:
                log.exception("audit write refused; keeping the record in the spool")
                return self._spool(items, locked=spool_locked)
        # The database refused something in the batch: find it, without losing its neighbours.
        log.warning("audit batch of %d refused; writing its items one by one", len(items))
        results: list[FeedbackSummary] = []
        for index, item in enumerate(items):
            try:
                results.extend(self._write_batch([item]))
            except Exception as exc:
                if is_outage(exc):
                    return results + self._spool(items[index:], locked=spool_locked)
                log.exception("audit write refused; keeping the record in the spool")
                results.extend(self._spool([item], locked=spool_locked))
        return results

    def _spool(self, items: list[Prepared], *, locked: bool) -> list[FeedbackSummary]:
        log.warning("audit database unavailable; %d record(s) spooled to %s", len(items),
                    self.spool.path)
        lines = [item.spool_line() for item in items]
        if locked:
            self.spool.append_lines(lines)
        else:
            with self.spool.locked():
                self.spool.append_lines(lines)
        return [FeedbackSummary(spooled=len(i.records) if isinstance(i, PreparedFeedback) else 1)
                for i in items]

    def _write_item(self, item: SpoolItem) -> FeedbackSummary:
        if isinstance(item, SpooledCall):
            prepared: Prepared = PreparedCall.of(item.record)
        else:
            prepared = PreparedFeedback.of(item.service_id, item.records)
        [summary] = self._write_batch([prepared])
        return summary

    def _write_batch(self, items: list[Prepared]) -> list[FeedbackSummary]:
        """All of ``items`` in one transaction, chained in order; raises, writing none."""
        self.database.ensure_schema()
        with self.database.writing() as conn:
            writer = _BatchWriter(conn, self._sql)
            try:
                return writer.write(items)
            finally:
                writer.cursor.close()

    @contextlib.contextmanager
    def chain_lock(self) -> Iterator[None]:
        """Hold the writer lock: every writer of this chain, in every process, waits.

        For maintenance (a consistent copy) and for tests that need writes to queue up.
        """
        self.database.ensure_schema()
        with self.database.writing():
            yield

    # -- reading ---------------------------------------------------------------------------

    def _entries(self, *, kind: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, hook_instance: str | None = None
                 ) -> Iterator[tuple[int, str, dict[str, Any]]]:
        query = select(audit_entry.c.seq, audit_entry.c.kind, audit_entry.c.body).order_by(
            audit_entry.c.seq)
        if kind is not None:
            query = query.where(audit_entry.c.kind == kind)
        if since is not None:
            query = query.where(audit_entry.c.occurred_at >= utc_text(since))
        if until is not None:
            query = query.where(audit_entry.c.occurred_at < utc_text(until))
        if hook_instance is not None:
            query = query.where(audit_entry.c.hook_instance == hook_instance)
        self.database.ensure_schema()
        with self.database.reading() as conn:
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
        self.database.ensure_schema()
        with self.database.reading() as conn:
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


__all__ = ["AuditStore", "AuditStoreClosed"]
