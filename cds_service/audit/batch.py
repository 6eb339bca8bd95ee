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
    PreparedFeedbackItem,
    entry_body,
    utc_text,
)
from cds_service.audit.facts import (
    UPDATE_RESPONSE,
    CardCheck,
    check_from_row,
    facts_of,
    feedback_flags,
    feedback_row,
    flagged_feedback_payload,
    response_row,
)
from cds_service.audit.keyring import AuditKey
from cds_service.audit.models import (
    FeedbackFlag,
    FeedbackRecord,
    FeedbackSummary,
    FlaggedFeedback,
)


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
        self.insert_gov_call = (
            "INSERT INTO gov_call (seq, hook_instance, service_id, received_at, day, week, "
            "month, duration_ms, http_status, patient_key, user_key, catalogue_version) "
            f"VALUES ({self.marks(12)})")
        self.insert_gov_card = (
            "INSERT INTO gov_card (card_uuid, hook_instance, seq, service_id, received_at, day, "
            "week, month, day_no, rule, outcome, tier, rule_version, patient_key, device_ref, "
            "n_suggestions, suggestions, override_reasons, last_refill_day, alarm_day, eos_day, "
            f"booked_day, booked) VALUES ({self.marks(23)})")
        self.insert_gov_feedback = (
            "INSERT INTO gov_feedback (seq, card_uuid, hook_instance, service_id, outcome, "
            "outcome_at, received_at, day, week, month, reason_system, reason_code, "
            f"reason_display, n_accepted, flags) VALUES ({self.marks(15)})")
        self.update_response = UPDATE_RESPONSE.format(m=m)

    def marks(self, count: int) -> str:
        return ", ".join([self.mark] * count)


_IN_CHUNK = 500  # bound parameters per IN (...) list, well under every backend's limit


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start:start + _IN_CHUNK]


class _BatchWriter:
    """One transaction: the head read once, duplicates found in bulk, rows inserted in bulk.

    A duplicate (hook instance, or feedback key) is one already stored or one earlier in the
    same batch; a feedback item joins the first call that showed its card, stored or batched,
    and is checked against that card (facts.feedback_flags). Each entry's governance facts
    go in with it, in the same transaction.
    """

    def __init__(self, conn: Connection, sql: BatchSql, key: AuditKey | None) -> None:
        self.conn = conn
        self.sql = sql
        self.key = key
        # The driver's own cursor, inside SQLAlchemy's transaction: per statement it costs
        # ~2 us where exec_driver_sql costs ~27 us; errors are translated back below.
        self.cursor = conn.connection.cursor()
        self.seq, self.prev = 0, ""
        self.seen_calls: set[str] = set()
        self.seen_feedback: set[str] = set()
        self.card_calls: dict[str, str] = {}
        self.checks: dict[tuple[str, str], CardCheck] = {}
        self.entries: list[tuple[object, ...]] = []
        self.cards: list[tuple[str, str, int]] = []
        self.gov_calls: list[tuple[object, ...]] = []
        self.gov_cards: list[tuple[object, ...]] = []
        self.gov_feedback: list[tuple[object, ...]] = []
        self.responses: list[tuple[object, ...]] = []

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

    def _card_checks(self, card_uuids: list[str]) -> dict[tuple[str, str], CardCheck]:
        found: dict[tuple[str, str], CardCheck] = {}
        for chunk in _chunks(sorted(set(card_uuids))):
            rows = self._run(
                "SELECT card_uuid, hook_instance, service_id, suggestions, override_reasons "
                f"FROM gov_card WHERE card_uuid IN ({self.sql.marks(len(chunk))})", tuple(chunk))
            for card_uuid, hook_instance, service_id, suggestions, reasons in rows:
                found[(str(card_uuid), str(hook_instance))] = check_from_row(
                    str(service_id), str(suggestions), None if reasons is None else str(reasons))
        return found

    def write(self, items: list[Prepared]) -> list[FeedbackSummary]:
        calls = [i.hook_instance for i in items if isinstance(i, PreparedCall)]
        feedback = [r for i in items if isinstance(i, PreparedFeedback) for r in i.records]
        self.seen_calls = self._existing("call", calls) if calls else set()
        self.seen_feedback = self._existing("feedback", [r.key for r in feedback]) \
            if feedback else set()
        cards = [r.card_uuid for r in feedback]
        self.card_calls = self._card_calls(cards) if feedback else {}
        self.checks = self._card_checks(cards) if feedback else {}
        [(head_seq, head_hash, head_key_id)] = self._run(self.sql.head, ())
        self.seq, self.prev = int(head_seq), str(head_hash)
        key_id = self.key.key_id if self.key is not None else None
        if key_id is not None and head_key_id != key_id:
            # The first link under a key (a new one, or the first ever) says so in the chain.
            self._append("key", f"{key_id}@{self.seq + 1}", None, None,
                         utc_text(datetime.now(UTC)), _key_payload(key_id, head_key_id))
        results = [self._call(item) if isinstance(item, PreparedCall) else self._feedback(item)
                   for item in items]
        if self.entries:
            self._run(self.sql.insert_entry, self.entries, many=True)
            if self.cards:
                self._run(self.sql.insert_card, self.cards, many=True)
            # Cards before the responses that update them: both may be in this batch.
            for statement, rows in ((self.sql.insert_gov_call, self.gov_calls),
                                    (self.sql.insert_gov_card, self.gov_cards),
                                    (self.sql.insert_gov_feedback, self.gov_feedback),
                                    (self.sql.update_response, self.responses)):
                if rows:
                    self._run(statement, rows, many=True)
            self._run(self.sql.update_head, (self.seq, self.prev, key_id))
        return results

    def _append(self, kind: str, key: str, hook_instance: str | None, card_uuid: str | None,
                occurred_at: str, payload: str) -> None:
        self.seq += 1
        key_id = self.key.key_id if self.key is not None else None
        body = entry_body(seq=self.seq, kind=kind, key=key, hook_instance=hook_instance,
                          card_uuid=card_uuid, occurred_at=occurred_at, payload=payload,
                          key_id=key_id)
        digest = self.key.link(self.prev, body) if self.key is not None \
            else link_hash(self.prev, body)
        self.entries.append((self.seq, kind, key, hook_instance, card_uuid, occurred_at, body,
                             self.prev, digest, key_id))
        self.prev = digest

    def _call(self, item: PreparedCall) -> FeedbackSummary:
        if item.hook_instance in self.seen_calls:
            return FeedbackSummary(duplicates=1)
        self.seen_calls.add(item.hook_instance)
        self._append("call", item.hook_instance, item.hook_instance, None, item.occurred_at,
                     item.payload)
        for card_uuid in item.card_uuids:
            self.cards.append((card_uuid, item.hook_instance, self.seq))
            self.card_calls.setdefault(card_uuid, item.hook_instance)
        facts = facts_of(item)
        self.gov_calls.append((self.seq, *facts.call))
        self.gov_cards.extend((*row[:2], self.seq, *row[2:]) for row in facts.cards)
        for card_uuid, check in facts.checks:
            self.checks.setdefault((card_uuid, item.hook_instance), check)
        return FeedbackSummary(stored=1)

    def _feedback(self, item: PreparedFeedback) -> FeedbackSummary:
        summary = FeedbackSummary()
        for index, fb in enumerate(item.records):
            record = FeedbackRecord.model_validate_json(fb.feedback)
            hook_instance = self.card_calls.get(fb.card_uuid)
            check = None if hook_instance is None else self.checks.get(
                (fb.card_uuid, hook_instance))
            flags = feedback_flags(check, item.service_id, record)
            if flags:
                summary.flagged.append(FlaggedFeedback(index=index, card=fb.card_uuid,
                                                       flags=flags))
            if fb.key in self.seen_feedback:
                summary.duplicates += 1
                continue
            self._store_feedback(fb, record, hook_instance, flags)
            summary.stored += 1
            if hook_instance is None:
                summary.unknown_cards += 1
        return summary

    def _store_feedback(self, fb: PreparedFeedbackItem, record: FeedbackRecord,
                        hook_instance: str | None, flags: list[FeedbackFlag]) -> None:
        self.seen_feedback.add(fb.key)
        self._append("feedback", fb.key, hook_instance, fb.card_uuid, fb.occurred_at,
                     flagged_feedback_payload(fb.feedback, hook_instance, flags))
        self.gov_feedback.append(feedback_row(self.seq, record, hook_instance, flags))
        if not flags and hook_instance is not None:
            self.responses.append(response_row(self.seq, record, hook_instance))


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
