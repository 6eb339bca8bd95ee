"""The chain's write path: a batch of prepared items appended in one transaction.

Driver SQL on the driver's own cursor: SQLAlchemy Core compilation and ``exec_driver_sql``
cost more than the I/O of a write. Driver errors are translated back into SQLAlchemy's, so
``database.is_outage`` still tells an outage (spool) from a refused record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from cds_service.audit.chain import canonical_json, link_hash
from cds_service.audit.entry import (
    Prepared,
    PreparedCall,
    PreparedFeedback,
    entry_body,
    feedback_payload,
    utc_text,
)
from cds_service.audit.keyring import AuditKey
from cds_service.audit.models import FeedbackSummary


class BatchSql:
    """The write path's statements as driver SQL: Core compilation cost more than the I/O."""

    def __init__(self, *, postgres: bool) -> None:
        self.mark = "%s" if postgres else "?"
        m = self.mark
        self.head = "SELECT seq, hash, key_id FROM audit_head WHERE id = 1"
        self.insert_entry = (
            "INSERT INTO audit_entry (seq, kind, entry_key, hook_instance, card_uuid, "
            f"occurred_at, body, prev_hash, hash, key_id) VALUES ({', '.join([m] * 10)})")
        self.insert_card = (
            f"INSERT INTO audit_card (card_uuid, hook_instance, seq) VALUES ({m}, {m}, {m})")
        self.update_head = (
            f"UPDATE audit_head SET seq = {m}, hash = {m}, key_id = {m} WHERE id = 1")

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

    def __init__(self, conn: Connection, sql: BatchSql, key: AuditKey | None) -> None:
        self.conn = conn
        self.sql = sql
        self.key = key
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
        [(head_seq, head_hash, head_key_id)] = self._run(self.sql.head, ())
        seq, prev = int(head_seq), str(head_hash)
        entries: list[tuple[object, ...]] = []
        cards: list[tuple[str, str, int]] = []
        results: list[FeedbackSummary] = []
        key_id = self.key.key_id if self.key is not None else None

        def append(kind: str, key: str, hook_instance: str | None, card_uuid: str | None,
                   occurred_at: str, payload: str) -> None:
            nonlocal seq, prev
            seq += 1
            body = entry_body(seq=seq, kind=kind, key=key, hook_instance=hook_instance,
                              card_uuid=card_uuid, occurred_at=occurred_at, payload=payload,
                              key_id=key_id)
            digest = self.key.link(prev, body) if self.key is not None else link_hash(prev, body)
            entries.append((seq, kind, key, hook_instance, card_uuid, occurred_at, body, prev,
                            digest, key_id))
            prev = digest

        if key_id is not None and head_key_id != key_id:
            # The first link under a key (a new one, or the first ever) says so in the chain.
            append("key", f"{key_id}@{seq + 1}", None, None, utc_text(datetime.now(UTC)),
                   _key_payload(key_id, head_key_id))

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
            self._run(self.sql.update_head, (seq, prev, key_id))
        return results


def _key_payload(key_id: str, previous: object) -> str:
    return canonical_json({"key_id": key_id,
                           "previous_key_id": previous if isinstance(previous, str) else None})


def write_batch(conn: Connection, sql: BatchSql, items: list[Prepared],
                key: AuditKey | None = None) -> list[FeedbackSummary]:
    """All of ``items`` in ``conn``'s transaction (which holds the chain's writer lock),
    chained in order after the stored head, linked with ``key`` (plain SHA-256 without one);
    raises, writing none. With nothing to write it only records a new key, if any."""
    writer = _BatchWriter(conn, sql, key)
    try:
        return writer.write(items)
    finally:
        writer.cursor.close()
