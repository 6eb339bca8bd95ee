"""Tamper evidence: an edited, deleted or inserted row is found, with its sequence number."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cds_service.audit.chain import canonical_json, link_hash
from cds_service.audit.cli import audit_app
from cds_service.audit.models import CallRecord, FeedbackRecord
from cds_service.audit.store import AuditStore

MakeCall = Callable[..., CallRecord]


@pytest.fixture
def chain_of_five(store: AuditStore, make_call: MakeCall) -> AuditStore:
    calls = [make_call(n) for n in range(4)]
    for call in calls:
        store.record_call(call)
    store.record_feedback("itb-patient-view", [
        FeedbackRecord(card_uuid=calls[0].cards[0].uuid, outcome="accepted",
                       outcome_timestamp=calls[0].answered_at),
    ])
    assert store.verify().ok and store.verify().checked == 5
    return store


def _sql(store: AuditStore, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_an_edited_payload_breaks_the_chain_at_that_row(chain_of_five: AuditStore) -> None:
    _sql(chain_of_five, "UPDATE audit_entry SET body = replace(body, 'pat-2', 'pat-9') "
                        "WHERE seq = 3")

    result = chain_of_five.verify()

    assert not result.ok
    assert result.first_broken_seq == 3
    assert result.checked == 2


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link(
        chain_of_five: AuditStore) -> None:
    with chain_of_five.engine.begin() as conn:
        row = conn.execute(text("SELECT prev_hash, body FROM audit_entry WHERE seq = 2")).one()
        body = row.body.replace("pat-1", "pat-9")
        conn.execute(text("UPDATE audit_entry SET body = :b, hash = :h WHERE seq = 2"),
                     {"b": body, "h": link_hash(row.prev_hash, body)})

    assert chain_of_five.verify().first_broken_seq == 3


def test_an_edited_index_column_is_caught_against_the_hashed_body(
        chain_of_five: AuditStore) -> None:
    _sql(chain_of_five, "UPDATE audit_entry SET occurred_at = '2020-01-01T00:00:00.000000Z' "
                        "WHERE seq = 4")

    result = chain_of_five.verify()

    assert result.first_broken_seq == 4
    assert result.reason is not None and "occurred_at" in result.reason


def test_a_deleted_row_is_reported_as_missing(chain_of_five: AuditStore) -> None:
    _sql(chain_of_five, "DELETE FROM audit_entry WHERE seq = 2")

    result = chain_of_five.verify()

    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert result.reason is not None and "missing" in result.reason


def test_a_deleted_last_row_is_caught_by_the_head(chain_of_five: AuditStore) -> None:
    _sql(chain_of_five, "DELETE FROM audit_entry WHERE seq = 5")

    assert chain_of_five.verify().first_broken_seq == 5


def test_a_row_inserted_in_the_middle_breaks_the_link_after_it(
        chain_of_five: AuditStore) -> None:
    # The forger shifts rows 3.. up by one and slips in a self-consistent row 3.
    _sql(chain_of_five, "UPDATE audit_entry SET seq = seq + 1000 WHERE seq >= 3")
    _sql(chain_of_five, "UPDATE audit_entry SET seq = seq - 999 WHERE seq >= 1000")
    with chain_of_five.engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_entry WHERE seq = 2")).scalar_one()
        body = canonical_json({"seq": 3, "kind": "call", "key": "forged", "hook_instance":
                               "forged", "card_uuid": None,
                               "occurred_at": "2025-03-01T09:02:30.000000Z", "payload": {}})
        conn.execute(text(
            "INSERT INTO audit_entry (seq, kind, entry_key, hook_instance, card_uuid, "
            "occurred_at, body, prev_hash, hash) VALUES (3, 'call', 'forged', 'forged', NULL, "
            "'2025-03-01T09:02:30.000000Z', :body, :prev, :hash)"),
            {"body": body, "prev": prev, "hash": link_hash(prev, body)})

    result = chain_of_five.verify()

    assert (result.ok, result.first_broken_seq) == (False, 4)


def test_a_row_appended_behind_the_stores_back_is_caught(chain_of_five: AuditStore) -> None:
    with chain_of_five.engine.begin() as conn:
        prev = conn.execute(text("SELECT hash FROM audit_entry WHERE seq = 5")).scalar_one()
        conn.execute(text(
            "INSERT INTO audit_entry (seq, kind, entry_key, hook_instance, card_uuid, "
            "occurred_at, body, prev_hash, hash) VALUES (6, 'call', 'x', 'x', NULL, "
            "'2025-03-01T10:00:00.000000Z', '{}', :prev, :hash)"),
            {"prev": prev, "hash": link_hash(prev, "{}")})

    assert chain_of_five.verify().first_broken_seq == 6


def test_cli_verify_names_the_broken_row_and_exits_non_zero(
        chain_of_five: AuditStore, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITB_CDS_SPOOL_PATH", str(tmp_path / "cli.spool"))
    runner = CliRunner()

    intact = runner.invoke(audit_app, ["verify", "--database-url", database_url])
    _sql(chain_of_five, "DELETE FROM audit_entry WHERE seq = 3")
    broken = runner.invoke(audit_app, ["verify", "--database-url", database_url])

    assert intact.exit_code == 0, intact.output
    assert "5 entries" in intact.output
    assert broken.exit_code == 1
    assert "seq 3" in broken.output
