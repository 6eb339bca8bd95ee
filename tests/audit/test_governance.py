"""The governance measures (issue 18, acceptance 2, bounded): a synthetic log written through the
real batch writer, on SQLite and PostgreSQL, and every measure equal to a brute-force Python
computation over the same records. bench/governance_bench.py runs the same at 200,000 calls and
times the JSON over HTTP.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cds_service.audit import migrations
from cds_service.audit.chain import GENESIS_HASH, link_hash
from cds_service.audit.entry import (
    PreparedCall,
    PreparedFeedback,
    entry_body,
    feedback_payload,
)
from cds_service.audit.measures import GovernanceQuery
from cds_service.audit.store import AuditStore
from tests.audit.governance_log import SyntheticLog, load, make_log
from tests.audit.governance_oracle import brute_force

SLICES = [
    GovernanceQuery(),
    GovernanceQuery(period="day", service="itb-patient-view"),
    GovernanceQuery(period="month", since="2025-02-03", until="2025-05-01"),
    GovernanceQuery(period="week", rule="itb-refill", tier="critical", rule_version="1.1.0"),
    GovernanceQuery(period="week", outcome="positive", since="2025-03-01"),
]


@pytest.fixture(scope="module")
def log() -> SyntheticLog:
    return make_log(8_000, 1_500)


def _same(got: Any, want: Any) -> None:
    # generated_at is the one field that differs by construction.
    assert got.model_dump(mode="json", exclude={"generated_at"}) == want.model_dump(
        mode="json", exclude={"generated_at"})


def test_every_measure_equals_brute_force_over_the_same_records(
        store: AuditStore, log: SyntheticLog, backend: str) -> None:
    load(store, log, batch=2_000)

    for query in SLICES:
        started = time.perf_counter()
        got = store.governance(query)
        print(f"{backend} {query.model_dump(exclude_none=True)}: "
              f"{time.perf_counter() - started:.3f} s")
        _same(got, brute_force(log, query))
    totals = store.governance(GovernanceQuery()).totals
    # The log exercises what the measures must tell apart, so equality above is not vacuous.
    assert totals.calls.status_412 and totals.calls.status_5xx
    assert set(totals.flagged_feedback.by_flag) == {
        "unknown-card", "other-service", "reason-not-offered", "suggestion-not-on-card"}
    assert totals.cards.accepted and totals.cards.overridden and totals.cards.suggestion_taken
    o = totals.outcomes
    assert o.refills_recorded and o.refilled_by_alarm_date < o.refills_recorded
    assert 0 < o.booked_before_end_of_service < o.replacements_booked
    assert store.verify().ok


def _old_chain(log: SyntheticLog) -> list[dict[str, Any]]:
    """The entries the store wrote before migration 0002: calls, their cards, plain feedback."""
    rows: list[dict[str, Any]] = []
    prev, seq, first = GENESIS_HASH, 0, {}
    items: list[tuple[str, str, str | None, str | None, str, str]] = []
    for call in log.calls:
        prepared = PreparedCall.of(call)
        items.append(("call", prepared.hook_instance, prepared.hook_instance, None,
                      prepared.occurred_at, prepared.payload))
        for card in prepared.card_uuids:
            first.setdefault(card, prepared.hook_instance)
    seen = set()
    for service, records in log.posts:
        for fb in PreparedFeedback.of(service, records).records:
            if fb.key not in seen:
                seen.add(fb.key)
                hook_instance = first.get(fb.card_uuid)
                items.append(("feedback", fb.key, hook_instance, fb.card_uuid, fb.occurred_at,
                              feedback_payload(fb.feedback, hook_instance)))
    for kind, key, hook_instance, card, occurred, payload in items:
        seq += 1
        body = entry_body(seq=seq, kind=kind, key=key, hook_instance=hook_instance,
                          card_uuid=card, occurred_at=occurred, payload=payload)
        digest = link_hash(prev, body)
        rows.append({"seq": seq, "kind": kind, "entry_key": key, "hook_instance": hook_instance,
                     "card_uuid": card, "occurred_at": occurred, "body": body,
                     "prev_hash": prev, "hash": digest})
        prev = digest
    return rows


def test_an_old_database_upgrades_and_its_chain_is_counted(
        database_url: str, tmp_path: Path, log: SyntheticLog) -> None:
    from cds_service.audit.database import AuditDatabase
    from cds_service.audit.schema import audit_card, audit_entry

    small = SyntheticLog(calls=log.calls[:1_500], posts=log.posts[:300])
    rows = _old_chain(small)
    old = AuditDatabase(database_url)
    with old.engine.begin() as conn:
        migrations.upgrade(conn, "0001")
        conn.execute(audit_entry.insert(), rows)
        conn.execute(audit_card.insert(), [
            {"card_uuid": card.uuid, "hook_instance": r["hook_instance"], "seq": r["seq"]}
            for r, call in zip(rows, small.calls, strict=False) for card in call.cards])
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
                     {"s": rows[-1]["seq"], "h": rows[-1]["hash"]})
    old.dispose()

    from cds_service.config import Settings

    store = AuditStore(Settings(database_url=database_url, spool_path=tmp_path / "spool"))
    try:
        store.migrate()  # 0001 -> 0002: the facts of every entry, from the hashed bodies
        assert store.verify().ok
        for query in SLICES[:3]:
            _same(store.governance(query), brute_force(small, query))
    finally:
        store.close()


def test_the_backfill_reads_a_keyed_chain_with_its_key_entries(
        database_url: str, tmp_path: Path, log: SyntheticLog) -> None:
    """A chain written under an audit key holds "key" entries (neither call nor feedback): the
    backfill of a database upgraded with one must skip them and rebuild the same facts."""
    import secrets

    from pydantic import SecretStr

    from cds_service.audit.backfill import backfill
    from cds_service.config import Settings

    small = SyntheticLog(calls=log.calls[:600], posts=log.posts[:120])
    store = AuditStore(Settings(database_url=database_url, spool_path=tmp_path / "spool",
                                audit_hmac_key=SecretStr(secrets.token_hex(32))))
    try:
        store.migrate()
        load(store, small)
        with store.engine.connect() as conn:
            kinds = set(conn.execute(text("SELECT DISTINCT kind FROM audit_entry")).scalars())
            entries = conn.execute(text("SELECT count(*) FROM audit_entry")).scalar_one()
        assert kinds == {"call", "feedback", "key"}
        written = [store.governance(q) for q in SLICES[:3]]
        with store.engine.begin() as conn:
            for table in ("gov_feedback", "gov_card", "gov_call"):
                conn.execute(text(f"DELETE FROM {table}"))
            assert backfill(conn) == entries
        for query, before in zip(SLICES[:3], written, strict=True):
            _same(store.governance(query), before)
        assert store.verify().ok
    finally:
        store.close()


def test_the_migrations_build_the_schema_the_code_declares(store: AuditStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cds_service.audit.schema import metadata

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
