"""The store records each call once and joins feedback to its card."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from cds_service.audit.models import CallRecord, FeedbackRecord, FindingRecord
from cds_service.audit.store import AuditStore
from cds_service.rules.finding import Evidence, Finding, Number, Tier

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
MakeCall = Callable[..., CallRecord]


def test_a_call_is_recorded_with_everything_the_issue_lists(store: AuditStore,
                                                             make_call: MakeCall) -> None:
    call = make_call()
    store.record_call(call)

    [stored] = store.calls_for(call.hook_instance)
    assert stored == call
    assert stored.duration_ms == 140.0
    assert stored.client.tenant == "ward-7"
    assert stored.findings[0].numbers == {"daysToAlarm": 5, "volumeMl": 3.5}


def test_a_retried_hook_instance_does_not_create_a_second_record(store: AuditStore,
                                                                 make_call: MakeCall) -> None:
    call = make_call()
    store.record_call(call)
    store.record_call(call)
    store.record_call(call.model_copy(update={"http_status": 500}))

    assert len(store.calls_for(call.hook_instance)) == 1
    result = store.verify()
    assert result.ok and result.checked == 1


def test_feedback_is_stored_once_and_joined_to_its_call(store: AuditStore,
                                                        make_call: MakeCall) -> None:
    call = make_call()
    store.record_call(call)
    card = call.cards[0]
    accepted = FeedbackRecord(card_uuid=card.uuid, outcome="accepted",
                              outcome_timestamp=T0 + timedelta(minutes=1),
                              accepted_suggestions=card.suggestion_uuids)

    first = store.record_feedback("itb-patient-view", [accepted])
    again = store.record_feedback("itb-patient-view", [accepted, accepted])

    assert (first.stored, first.duplicates, first.unknown_cards) == (1, 0, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    [joined] = store.feedback_for(call.hook_instance)
    assert joined.card_uuid == card.uuid
    assert joined.service_id == "itb-patient-view"


def test_feedback_for_an_unknown_card_is_kept_and_flagged(store: AuditStore) -> None:
    orphan = FeedbackRecord(card_uuid="no-such-card", outcome="overridden",
                            outcome_timestamp=T0, override_reason_code="not-relevant")

    summary = store.record_feedback("itb-patient-view", [orphan])

    assert (summary.stored, summary.unknown_cards) == (1, 1)
    [kept] = store.stored_feedback()
    assert kept.unknown_card and kept.hook_instance is None
    assert store.verify().ok


def test_the_report_counts_shown_accepted_overridden_and_unanswered_cards(
        store: AuditStore, make_call: MakeCall) -> None:
    calls = [make_call(n) for n in range(4)]
    for call in calls:
        store.record_call(call)
    uuids = [c.cards[0].uuid for c in calls]
    store.record_feedback("itb-patient-view", [
        FeedbackRecord(card_uuid=uuids[0], outcome="accepted", outcome_timestamp=T0),
        FeedbackRecord(card_uuid=uuids[1], outcome="overridden", outcome_timestamp=T0,
                       override_reason_code="patient-declined",
                       override_reason_display="Patient declined"),
        FeedbackRecord(card_uuid=uuids[2], outcome="overridden", outcome_timestamp=T0,
                       override_reason_code="patient-declined"),
        FeedbackRecord(card_uuid="stranger", outcome="accepted", outcome_timestamp=T0),
    ])

    report = store.report()

    [row] = report.rows
    assert (row.rule, row.outcome) == ("itb-refill", "refill-due-soon")
    assert (row.shown, row.accepted, row.overridden, row.no_response) == (4, 1, 2, 1)
    assert row.override_reasons == {"patient-declined (Patient declined)": 1,
                                    "patient-declined": 1}
    assert report.unknown_card_feedback == 1
    assert store.report(since=T0 + timedelta(minutes=2)).rows[0].shown == 2


def test_a_finding_becomes_a_finding_record() -> None:
    finding = Finding(rule="itb-battery", rule_version="2", outcome="battery-eri",
                      tier=Tier.CRITICAL,
                      evidence=(Evidence("Pump", reference="Device/p1"), Evidence("no ref")),
                      numbers=(Number("monthsLeft", 2, "mo"),), missing=("implant date",))

    record = FindingRecord.from_finding(finding)

    assert record.tier == "critical"
    assert record.evidence_refs == ["Device/p1"]
    assert record.numbers == {"monthsLeft": 2}
    assert record.missing == ["implant date"]


def test_a_call_record_has_no_room_for_a_token(make_call: MakeCall) -> None:
    with pytest.raises(ValidationError):
        CallRecord.model_validate({**make_call().model_dump(),
                                   "fhir_authorization": {"access_token": "x"}})


def test_migrate_is_idempotent_and_ping_sees_the_database(store: AuditStore) -> None:
    store.migrate()
    assert store.ping()
