"""The database goes away mid-run: calls keep being recorded (spool), then replayed in order."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cds_service.audit.models import CallRecord, FeedbackRecord
from cds_service.audit.store import AuditStore
from cds_service.config import Settings
from tests.pg import PostgresServer

MakeCall = Callable[..., CallRecord]


@contextmanager
def database_down(backend: str, settings: Settings, request: pytest.FixtureRequest
                  ) -> Iterator[None]:
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("pg")
        server.stop()
        try:
            yield
        finally:
            server.start()
    else:
        # The SQLite file (with its -wal) disappears from where the store looks for it.
        db_dir = Path(settings.database_url.removeprefix("sqlite:///")).parent
        away = db_dir.with_name("db-away")
        db_dir.rename(away)
        try:
            yield
        finally:
            away.rename(db_dir)


def _spooled(settings: Settings) -> list[str]:
    lines = settings.spool_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["record"]["hook_instance"] for line in lines if line]


def test_calls_are_spooled_while_the_database_is_down_and_replayed_in_order(
        store: AuditStore, settings: Settings, make_call: MakeCall, backend: str,
        request: pytest.FixtureRequest) -> None:
    calls = [make_call(n) for n in range(12)]
    for call in calls[:4]:
        store.record_call(call)

    with database_down(backend, settings, request):
        assert not store.ping()
        for call in calls[4:8]:
            store.record_call(call)  # must not raise
        store.record_call(calls[4])  # a retry while down is spooled again, replayed once
        assert _spooled(settings) == [c.hook_instance for c in [*calls[4:8], calls[4]]]

    for call in calls[8:]:
        store.record_call(call)

    assert settings.spool_path.stat().st_size == 0
    order = [rec.hook_instance for _, rec in store.calls()]
    assert order == [c.hook_instance for c in calls]
    result = store.verify()
    assert result.ok, result.reason
    assert result.checked == 12


def test_feedback_is_spooled_too_and_still_joins_its_card(
        store: AuditStore, settings: Settings, make_call: MakeCall, backend: str,
        request: pytest.FixtureRequest) -> None:
    with database_down(backend, settings, request):
        call = make_call()
        store.record_call(call)
        summary = store.record_feedback("itb-patient-view", [FeedbackRecord(
            card_uuid=call.cards[0].uuid, outcome="accepted",
            outcome_timestamp=call.answered_at)])
        assert summary.spooled == 1

    assert store.replay_spool() == 2
    [fb] = store.feedback_for(call.hook_instance)
    assert fb.card_uuid == call.cards[0].uuid
    assert store.verify().ok


def test_startup_migrate_replays_what_another_process_spooled(
        settings: Settings, make_call: MakeCall, backend: str,
        request: pytest.FixtureRequest) -> None:
    first = AuditStore(settings)
    first.migrate()
    with database_down(backend, settings, request):
        first.record_call(make_call(1))
    first.close()

    restarted = AuditStore(settings)
    restarted.migrate()

    assert len(list(restarted.calls())) == 1
    assert restarted.verify().ok
    restarted.close()
