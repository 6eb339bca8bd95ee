"""Reading the chain back: entries by kind, time and call, the records in them, and verify.

Reads run in read-only transactions (database.AuditDatabase.reading) and stream rows, so an
export of a large chain holds a few hundred rows at a time.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select

from cds_service.audit.chain import GENESIS_HASH, link_hash
from cds_service.audit.database import AuditDatabase
from cds_service.audit.entry import utc_text
from cds_service.audit.keyring import AuditKeyring
from cds_service.audit.models import CallRecord, FeedbackRecord, StoredFeedback, VerifyResult
from cds_service.audit.schema import audit_entry, audit_head, gov_feedback

# One entry of the chain: its seq, its kind ("call" or "feedback") and its payload.
Entry = tuple[int, str, dict[str, Any]]


def entries(database: AuditDatabase, *, kind: str | None = None,
            since: datetime | None = None, until: datetime | None = None,
            hook_instance: str | None = None) -> Iterator[Entry]:
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
    database.ensure_schema()
    with database.reading() as conn:
        with conn.execution_options(yield_per=500).execute(query) as rows:
            for row in rows:
                body = json.loads(row.body)
                yield int(row.seq), str(row.kind), cast(dict[str, Any], body["payload"])


def calls_for(database: AuditDatabase, hook_instance: str) -> list[CallRecord]:
    return [CallRecord.model_validate(p)
            for _, _, p in entries(database, kind="call", hook_instance=hook_instance)]


def stored_feedback(database: AuditDatabase, *, hook_instance: str | None = None,
                    since: datetime | None = None) -> list[StoredFeedback]:
    stored = [feedback_entry(seq, p) for seq, _, p in
              entries(database, kind="feedback", hook_instance=hook_instance, since=since)]
    if not stored:
        return []
    # Entries older than the checks carry no flags in their body; the backfill checked them.
    # Read only the flags of the entries found, not every flagged row of the log.
    query = select(gov_feedback.c.seq, gov_feedback.c.flags).where(
        gov_feedback.c.flags != "", gov_feedback.c.seq >= stored[0].seq)
    if hook_instance is not None:
        query = query.where(gov_feedback.c.hook_instance == hook_instance)
    if since is not None:
        query = query.where(gov_feedback.c.received_at >= utc_text(since))
    with database.reading() as conn:
        flagged = {int(r.seq): r.flags.split(",") for r in conn.execute(query)}
    return [s.model_copy(update={"flags": flagged[s.seq]}) if s.seq in flagged else s
            for s in stored]


def calls(database: AuditDatabase, *, since: datetime | None = None,
          until: datetime | None = None) -> Iterator[tuple[int, CallRecord]]:
    for seq, _, p in entries(database, kind="call", since=since, until=until):
        yield seq, CallRecord.model_validate(p)


def feedback_entry(seq: int, payload: dict[str, Any]) -> StoredFeedback:
    """The feedback item stored at ``seq``, with the call it was joined to."""
    return StoredFeedback(
        seq=seq,
        record=FeedbackRecord.model_validate(payload["feedback"]),
        hook_instance=payload["hook_instance"],
        unknown_card=bool(payload["unknown_card"]),
        flags=(["unknown-card"] if payload["unknown_card"] else []) + payload.get("flags", []),
    )


def verify(database: AuditDatabase, keyring: AuditKeyring | None = None) -> VerifyResult:
    database.ensure_schema()
    with database.reading() as conn:
        head = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        ).one()
        with conn.execution_options(yield_per=500).execute(
            select(audit_entry).order_by(audit_entry.c.seq)
        ) as rows:
            return verify_rows(rows, int(head.seq), str(head.hash), keyring or AuditKeyring())


class _Walk:
    """Where the walk is: the next seq, the last link, and what it has seen of keys."""

    def __init__(self, keyring: AuditKeyring) -> None:
        self.keyring = keyring
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.checked = 0
        self.keyed = 0
        self.key_ids: list[str] = []

    def fault(self, row: Any) -> str | None:
        """Why ``row`` does not continue the chain, or None."""
        seq = int(row.seq)
        if seq > self.expected_seq:
            return f"entry {self.expected_seq} is missing (next is {seq})"
        if seq < self.expected_seq:
            return f"unexpected entry {seq} (expected {self.expected_seq})"
        if row.prev_hash != self.prev_hash:
            return f"entry {seq} does not link to entry {seq - 1}"
        key_id = row.key_id
        if key_id is None:
            if self.keyed:
                return (f"entry {seq} is a plain SHA-256 link after keyed entries: rewritten "
                        "without the audit key, or written by a service that had none")
            expected = link_hash(self.prev_hash, row.body)
        else:
            key = self.keyring.keys.get(key_id)
            if key is None:
                return (f"entry {seq} is linked with audit key {key_id}, which is not "
                        "configured (ITB_CDS_AUDIT_HMAC_KEY_FILE lists every key in use)")
            expected = key.link(self.prev_hash, row.body)
        if not hmac.compare_digest(expected, str(row.hash)):
            return f"entry {seq} content does not match its hash"
        return _columns_fault(seq, row)

    def advance(self, row: Any) -> None:
        if row.key_id is not None:
            self.keyed += 1
            if not self.key_ids or self.key_ids[-1] != row.key_id:
                self.key_ids.append(str(row.key_id))
        self.prev_hash = str(row.hash)
        self.expected_seq += 1
        self.checked += 1


def _columns_fault(seq: int, row: Any) -> str | None:
    try:
        body = json.loads(row.body)
    except ValueError:
        return f"entry {seq} body is not JSON"
    columns = {"seq": seq, "kind": row.kind, "key": row.entry_key,
               "hook_instance": row.hook_instance, "card_uuid": row.card_uuid,
               "occurred_at": row.occurred_at, "key_id": row.key_id}
    for name, value in columns.items():
        if body.get(name) != value:
            return f"entry {seq} column {name} differs from the hashed body"
    return None


def verify_rows(rows: Iterable[Any], head_seq: int, head_hash: str,
                keyring: AuditKeyring | None = None) -> VerifyResult:
    """Walk the chain in seq order; report the first broken link. With a current key the
    chain must end under a key (the key entry written at start records it): a chain that
    ends in plain links could have been re-hashed from the first keyed entry on."""
    walk = _Walk(keyring or AuditKeyring())

    def result(ok: bool, seq: int | None = None, reason: str | None = None) -> VerifyResult:
        return VerifyResult(ok=ok, checked=walk.checked, first_broken_seq=seq, reason=reason,
                            head_seq=head_seq, head_hash=head_hash, keyed=walk.keyed,
                            key_ids=walk.key_ids)

    for row in rows:
        fault = walk.fault(row)
        if fault is not None:
            return result(False, min(int(row.seq), walk.expected_seq), fault)
        walk.advance(row)
    last = walk.expected_seq - 1
    if last != head_seq or not hmac.compare_digest(walk.prev_hash, head_hash):
        if head_seq > last:
            return result(False, last + 1, f"entries {last + 1}..{head_seq} are missing at the end")
        return result(False, last, "the chain does not end at the recorded head")
    if walk.keyring.current is not None and last and not walk.keyed:
        return result(False, last, "an audit key is configured but no entry is linked with "
                      "it: the whole chain may have been re-hashed (or the key was never "
                      "recorded: start the service or run `itb-cds audit migrate`)")
    return result(True)
