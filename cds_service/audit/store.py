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
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from cds_service.audit import export, governance, queries, report
from cds_service.audit.batch import BatchSql, write_batch
from cds_service.audit.database import AuditDatabase, is_outage
from cds_service.audit.entry import Prepared, PreparedFeedback
from cds_service.audit.facts import FactualCall
from cds_service.audit.keyring import AuditKeyring
from cds_service.audit.measures import Governance, GovernanceQuery
from cds_service.audit.models import (
    CallRecord,
    FeedbackRecord,
    FeedbackSummary,
    Report,
    StoredFeedback,
    VerifyResult,
)
from cds_service.audit.spool import Spool, SpooledCall, SpoolItem
from cds_service.audit.writer import AuditStoreClosed, GroupWriter, WriterStats
from cds_service.config import Settings

log = logging.getLogger(__name__)


def _prepare_feedback(service_id: str, items: list[FeedbackRecord]) -> PreparedFeedback:
    filled = [i if i.service_id else i.model_copy(update={"service_id": service_id})
              for i in items]
    return PreparedFeedback.of(service_id, filled)


class AuditStore:
    """The audit log of one process.

    Writes go through the store's writer thread (group commit): ``record_call_async`` and
    ``record_feedback_async`` from the event loop, ``record_call`` and ``record_feedback``
    from threads. Reads are synchronous; call them from async code through a threadpool.
    """

    def __init__(self, settings: Settings, *, database_url: str | None = None) -> None:
        self.settings = settings
        self.keyring = AuditKeyring.from_settings(settings)  # AuditKeyError: refuse to start
        self.database = AuditDatabase(database_url or settings.database_url)
        self.spool = Spool(settings.spool_path)
        self._sql = BatchSql(postgres=self.database.is_postgres)
        self._writer = GroupWriter(self._write_queued)
        # Since when (and why) writes go to the spool instead of the database; /ready says so.
        self.failing: tuple[datetime, str] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @property
    def url(self) -> URL:
        return self.database.url

    def migrate(self) -> None:
        """Bring the schema to head, replay the spool, and record the audit key in the chain
        if it is new, so the chain ends under the key. Raises when the DB is down."""
        self.database.migrate()
        self.replay_spool()
        if self.keyring.current is not None:
            self._write_batch([])

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
        self._writer.write(FactualCall.of(rec))

    async def record_call_async(self, rec: CallRecord) -> None:
        """``record_call`` for the event loop: waits for the writer thread without a pool."""
        await self._writer.write_async(FactualCall.of(rec))

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
        if self.failing is None:
            self.failing = (datetime.now(UTC), "audit writes fail: records are spooled")
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
            prepared: Prepared = FactualCall.of(item.record)
        else:
            prepared = PreparedFeedback.of(item.service_id, item.records)
        [summary] = self._write_batch([prepared])
        return summary

    def _write_batch(self, items: list[Prepared]) -> list[FeedbackSummary]:
        """All of ``items`` in one transaction, chained in order; raises, writing none."""
        self.database.ensure_schema()
        with self.database.writing() as conn:
            written = write_batch(conn, self._sql, items, self.keyring.current)
        self.failing = None
        return written

    @contextlib.contextmanager
    def chain_lock(self) -> Iterator[None]:
        """Hold the writer lock: every writer of this chain, in every process, waits.

        For maintenance (a consistent copy) and for tests that need writes to queue up.
        """
        self.database.ensure_schema()
        with self.database.writing():
            yield

    # -- reading ---------------------------------------------------------------------------

    def calls_for(self, hook_instance: str) -> list[CallRecord]:
        return queries.calls_for(self.database, hook_instance)

    def feedback_for(self, hook_instance: str) -> list[FeedbackRecord]:
        return [s.record for s in self.stored_feedback(hook_instance=hook_instance)]

    def stored_feedback(self, *, hook_instance: str | None = None,
                        since: datetime | None = None) -> list[StoredFeedback]:
        return queries.stored_feedback(self.database, hook_instance=hook_instance, since=since)

    def calls(self, *, since: datetime | None = None, until: datetime | None = None
              ) -> Iterator[tuple[int, CallRecord]]:
        return queries.calls(self.database, since=since, until=until)

    def verify(self) -> VerifyResult:
        """The chain checked with every configured key, and what the spool still holds (not
        in the chain yet, so not covered by it)."""
        result = queries.verify(self.database, self.keyring)
        return result.model_copy(update={"spooled": self.spool.count(),
                                         "rejected": self.spool.rejected_count()})

    def governance(self, query: GovernanceQuery) -> Governance:
        """The committee's measures for one slice, as SQL aggregates (audit.governance)."""
        return governance.governance(self.database, query)

    def governance_days(self) -> tuple[date, date] | None:
        """The first and last day with a recorded call, or None when there is none."""
        return governance.recorded_days(self.database)

    def report(self, since: datetime | None = None) -> Report:
        return report.build_report(
            (rec for _, rec in self.calls(since=since)),
            self.stored_feedback(since=since),
            since=since,
        )

    def export_fhir(self, since: datetime | None = None, until: datetime | None = None
                    ) -> Iterator[dict[str, Any]]:
        for seq, kind, payload in queries.entries(self.database, since=since, until=until):
            if kind == "call":
                yield from export.call_resources(CallRecord.model_validate(payload), self.settings)
            elif kind == "feedback":  # a "key" entry records a key rotation, not an event
                feedback = queries.feedback_entry(seq, payload)
                yield export.feedback_audit_event(feedback, self.settings)

    def export_csv(self, since: datetime | None = None, until: datetime | None = None
                   ) -> Iterator[str]:
        def rows() -> Iterator[export.CsvRow]:
            for seq, kind, payload in queries.entries(self.database, since=since, until=until):
                if kind == "call":
                    yield export.call_csv_row(seq, CallRecord.model_validate(payload))
                elif kind == "feedback":
                    yield export.feedback_csv_row(queries.feedback_entry(seq, payload))

        return export.csv_lines(rows())


__all__ = ["AuditStore", "AuditStoreClosed"]
