"""What the chain stores for a record is fixed: same record, same bytes, same hashes, forever.

The pinned digests were computed by the store as it was before the write path was rebuilt
for speed (model_dump + canonical_json of the whole entry, one SQLAlchemy Core insert each),
so an old database still verifies and a new entry hashes as it always would have.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from cds_service.audit.chain import canonical_json
from cds_service.audit.entry import (
    PreparedCall,
    PreparedFeedback,
    canonical_record,
    entry_body,
    feedback_payload,
)
from cds_service.audit.models import (
    CallRecord,
    CardRecord,
    ClientIdentity,
    FeedbackRecord,
    FindingRecord,
    QueryRecord,
    SkippedEntry,
)
from cds_service.audit.spool import SpooledCall, SpooledFeedback
from cds_service.audit.store import AuditStore

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
CARD = "0f3c2a9e-1111-4222-8333-444455556666"

# seq -> hash of the entry, from the store before the change (see the module docstring).
PINNED_HASHES = {
    1: "dd4a72028bb27bf0f23463f45691796cf25b942d2135da0697f14546d810c472",
    2: "3d060337953e87a70326a3b0a8b498faff407a4b6ac708889ef092b7c5468280",
    3: "3c9d8160901b3c5ac74a329c2e6ad79ef796660b9702c4e80bcfa97a68e5cc54",
}
PINNED_BODY_SHA256 = {
    1: "0936f56ce83dba1ae45e64c5076265f0a512e7a03c915fdb6171f56d96ebd016",
    2: "2ffbe8f15328f2e9982bcdf71963d0dcf677ec84c069d53ee10b0010fee6918f",
    3: "a5c8c7808e3a1aee43c8389f6242ffb8ee685dceeb3ce9f1eb46514d10a28f6f",
}
PINNED_SPOOL_CALL_SHA256 = "d265aeaf17b7a65fcc4e5120d7647525c729148c20977c932fbb49fd73bc1e5f"
PINNED_SPOOL_FEEDBACK_SHA256 = "324bffee7f0c4c8d76815194ffd425522ac15c3d276e80b951301674ceddf2d0"


def fixed_call() -> CallRecord:
    """Every field set, with redaction, unicode, floats, nested dicts and lists in play."""
    return CallRecord(
        hook_instance="d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", service_id="itb-patient-view",
        hook="patient-view", received_at=T0, answered_at=T0 + timedelta(milliseconds=140.5),
        http_status=200, error="upstream said Bearer abc.def.ghi",
        client=ClientIdentity(iss="https://sandbox.cds-hooks.org", sub="sandbox",
                              tenant="ward-7"),
        user_id="Practitioner/dr-1", patient_id="pat-1", encounter_id="enc-1",
        fhir_server="https://fhir.example/r4?access_token=zzz",
        prefetch_supplied=["patient", "conditions"], prefetch_fetched=["devices"],
        prefetch_missing=["appointments"], prefetch_failed=["observations"],
        prefetch_sha256={"patient": "ab" * 32, "conditions": "cd" * 32},
        queries=[QueryRecord(key="devices", url="https://fhir.example/r4/Device?patient=pat-1",
                             status=200, latency_ms=12.25, pages=2)],
        skipped=[SkippedEntry(source="observations", reason="no value",
                              reference="Observation/o1")],
        findings=[FindingRecord(rule="itb-refill", rule_version="1.0.0",
                                outcome="refill-due-soon", tier="warning",
                                evidence_refs=["Device/pump-1"],
                                numbers={"daysToAlarm": 5, "volumeMl": 3.5, "rate": 0.1},
                                missing=["implant date"], notes=["Größe µg/día"],
                                device_ref="Device/pump-1")],
        cards=[CardRecord(uuid=CARD, summary="Pump refill due in 5 days", indicator="warning",
                          rule="itb-refill", outcome="refill-due-soon",
                          suggestion_uuids=["9a8b7c6d-0000-4000-8000-000000000001"])],
        catalogue_version="2025.03", rule_versions={"itb-refill": "1.0.0"},
        value_set_versions={"baclofen": "1"},
        thresholds={"refill": {"warn_days": 7, "ratio": 0.25, "on": True, "name": "x",
                               "steps": [1.0, 2.5]}},
    )


def fixed_feedback() -> list[FeedbackRecord]:
    return [
        FeedbackRecord(card_uuid=CARD, outcome="overridden",
                       outcome_timestamp=T0 + timedelta(minutes=1),
                       override_reason_code="patient-declined",
                       override_reason_display="Patient declined", user_comment="nicht jetzt",
                       received_at=T0 + timedelta(minutes=1, seconds=2)),
        FeedbackRecord(card_uuid="unknown", outcome="accepted", outcome_timestamp=T0,
                       received_at=T0 + timedelta(minutes=2)),
    ]


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def test_a_fixed_call_and_its_feedback_are_stored_byte_for_byte_as_before(
        store: AuditStore) -> None:
    store.record_call(fixed_call())
    summary = store.record_feedback("itb-patient-view", fixed_feedback())

    assert (summary.stored, summary.unknown_cards) == (2, 1)
    with store.engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, body, hash FROM audit_entry ORDER BY seq")).all()
    assert {int(r.seq): r.hash for r in rows} == PINNED_HASHES
    assert {int(r.seq): _sha256(r.body) for r in rows} == PINNED_BODY_SHA256
    assert store.verify().ok


def test_a_spooled_item_is_written_as_the_spool_always_wrote_it() -> None:
    call = PreparedCall.of(fixed_call())
    feedback = PreparedFeedback.of("itb-patient-view", [FeedbackRecord(
        card_uuid="c", outcome="accepted", outcome_timestamp=T0, received_at=T0)])

    assert _sha256(call.spool_line()) == PINNED_SPOOL_CALL_SHA256
    assert _sha256(feedback.spool_line()) == PINNED_SPOOL_FEEDBACK_SHA256
    assert call.spool_line() == canonical_json(
        SpooledCall(record=fixed_call()).model_dump(mode="json"))
    assert feedback.spool_line() == canonical_json(SpooledFeedback(
        service_id="itb-patient-view",
        records=[FeedbackRecord(card_uuid="c", outcome="accepted", outcome_timestamp=T0,
                                received_at=T0)]).model_dump(mode="json"))


def test_a_record_with_a_non_finite_number_is_refused_not_written_as_null(
        store: AuditStore) -> None:
    poisoned = fixed_call().model_copy(update={"findings": [FindingRecord(
        rule="itb-refill", rule_version="1", outcome="x", tier="info",
        numbers={"volumeMl": math.nan})]})

    with pytest.raises(ValueError, match="non-finite"):
        store.record_call(poisoned)

    assert store.verify().checked == 0


text_values = st.one_of(st.none(), st.text())


@given(seq=st.integers(min_value=1, max_value=2**53), kind=st.text(), key=st.text(),
       hook_instance=text_values, card_uuid=text_values, occurred_at=st.text(),
       payload=st.recursive(
           st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
           | st.floats(allow_nan=False, allow_infinity=False),
           lambda inner: st.lists(inner, max_size=4)
           | st.dictionaries(st.text(), inner, max_size=4),
           max_leaves=12))
def test_the_spliced_body_is_the_canonical_json_of_the_whole_entry(
        seq: int, kind: str, key: str, hook_instance: str | None, card_uuid: str | None,
        occurred_at: str, payload: object) -> None:
    whole = canonical_json({"seq": seq, "kind": kind, "key": key,
                            "hook_instance": hook_instance, "card_uuid": card_uuid,
                            "occurred_at": occurred_at, "payload": payload})

    spliced = entry_body(seq=seq, kind=kind, key=key, hook_instance=hook_instance,
                         card_uuid=card_uuid, occurred_at=occurred_at,
                         payload=canonical_json(payload))

    assert spliced == whole


@given(hook_instance=text_values, unknown=st.booleans())
def test_the_feedback_payload_is_the_canonical_json_it_always_was(
        hook_instance: str | None, unknown: bool) -> None:
    record = fixed_feedback()[0]
    joined = None if unknown else hook_instance

    assert feedback_payload(canonical_record(record), joined) == canonical_json({
        "feedback": record.model_dump(mode="json"), "hook_instance": joined,
        "unknown_card": joined is None})


def test_canonical_record_is_canonical_json_of_the_json_dump() -> None:
    record = fixed_call()
    assert canonical_record(record) == canonical_json(record.model_dump(mode="json"))


# A keyed link (audit/keyring.py): the key id joins the hashed body between "key" and "kind",
# and the link is HMAC-SHA256 under the key. Pinned when keys were introduced; a plain entry
# (above) has no key_id member, so its bytes did not change.
PINNED_KEY_ID = "b13e33fe2a1ec936"
PINNED_KEYED_LINK = "560de7f1cf645ed5ed9965298662232377346d3612588cbe93f143475ea5e38c"


def test_a_keyed_link_is_pinned() -> None:
    from cds_service.audit.keyring import AuditKey

    key = AuditKey.of(b"k" * 32)
    body = entry_body(seq=7, kind="call", key="h", hook_instance="h", card_uuid=None,
                      occurred_at="t", payload='{"a":1}', key_id=key.key_id)

    assert key.key_id == PINNED_KEY_ID
    assert body == canonical_json({"seq": 7, "kind": "call", "key": "h", "key_id": key.key_id,
                                   "hook_instance": "h", "card_uuid": None, "occurred_at": "t",
                                   "payload": {"a": 1}})
    assert key.link(GENESIS, body) == PINNED_KEYED_LINK
    assert key.link(GENESIS, body) != hashlib.sha256((GENESIS + body).encode()).hexdigest()


GENESIS = "0" * 64
