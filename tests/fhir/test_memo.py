"""The validation memo: a chart seen before is not validated again, and nothing changes for it.

Every test compares against a record parsed with no memo at all, so a memo that served a stale
or foreign outcome fails here.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cds_service.config import PROJECT_ROOT, Settings
from cds_service.fhir import parse as parse_module
from cds_service.fhir.memo import RecordMemo, ValidationMemo
from cds_service.fhir.parse import parse_record
from cds_service.fhir.repair import validate
from cds_service.sandbox.scenarios import load_scenarios
from cds_service.terminology import Terminology

ACCEPT = Terminology.load(Settings()).observation_filter
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")


def baclofen(rid: str, tablets: float = 1, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [
            {"system": RXNORM, "code": "197392", "display": "baclofen 20 MG Oral Tablet"}]},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 3, "period": 1,
                                                     "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": tablets,
                                                                 "unit": "tablet"}}]}],
        **extra,
    }


def device(rid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Device", "id": rid, "patient": {"reference": "Patient/p1"},
            "deviceName": [{"name": "SynchroMed II", "type": "model-name"}], **extra}


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The resource types the parser really validated (the real validator still runs)."""
    seen: list[str] = []

    def counting(model_cls: Any, raw: dict[str, Any], defaults: Any = None) -> Any:
        seen.append(model_cls.__name__)
        return validate(model_cls, raw, defaults)

    monkeypatch.setattr(parse_module, "validate", counting)
    return seen


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_every_scenario_parses_the_same_from_the_memo(scenario: Any) -> None:
    prefetch = {k: v for k, v in scenario.request.get("prefetch", {}).items() if v is not None}
    resources = {k: parse_module.bundle_entries(v) if v.get("resourceType") == "Bundle"
                 else [v] for k, v in prefetch.items()}
    drafts = scenario.request["context"].get("draftOrders")
    memo = ValidationMemo(4096)
    plain = parse_record(resources, drafts, ACCEPT)
    first = parse_record(resources, drafts, ACCEPT, memo=memo)
    second = parse_record(resources, drafts, ACCEPT, memo=memo)
    assert first == plain
    assert second == plain


def test_a_chart_seen_before_is_not_validated_again(validations: list[str]) -> None:
    memo = ValidationMemo(100)
    chart = {"medicationRequests": [baclofen("a")], "devices": [device("d")]}
    first = parse_record(chart, None, ACCEPT, memo=memo)
    assert sorted(validations) == ["Device", "MedicationRequest"]
    validations.clear()
    again = parse_record(copy.deepcopy(chart), None, ACCEPT, memo=memo)
    assert validations == []
    assert again == first
    assert memo.stats.hits == 2


def test_a_changed_resource_is_validated_afresh_and_its_new_content_is_read(
        validations: list[str]) -> None:
    memo = ValidationMemo(100)
    parse_record({"medicationRequests": [baclofen("a", tablets=1)]}, None, ACCEPT, memo=memo)
    validations.clear()
    changed = parse_record({"medicationRequests": [baclofen("a", tablets=2)]}, None, ACCEPT,
                           memo=memo)
    assert validations == ["MedicationRequest"]
    dose = changed.medications[0].dosages[0].dose
    assert dose is not None and dose.value == 2


def test_the_key_is_the_content_and_the_reference() -> None:
    raw = baclofen("a")
    assert ValidationMemo.key("MedicationRequest/a", raw) == ValidationMemo.key(
        "MedicationRequest/a", copy.deepcopy(raw))
    assert ValidationMemo.key("MedicationRequest/a", raw) != ValidationMemo.key(
        "MedicationRequest/#medicationRequests[0]", raw)
    assert ValidationMemo.key("MedicationRequest/a", raw) != ValidationMemo.key(
        "MedicationRequest/a", baclofen("a", tablets=1.5))


def test_a_rejected_resource_stays_rejected_and_is_reported_where_it_now_is(
        validations: list[str]) -> None:
    memo = ValidationMemo(100)
    bad = baclofen("bad", dosageInstruction=[{"timing": {"repeat": {"frequency": "x"}}}])
    first = parse_record({"medicationRequests": [bad]}, None, ACCEPT, memo=memo)
    validations.clear()
    second = parse_record({"medicationRequests": [baclofen("ok"), bad]}, None, ACCEPT,
                          memo=memo)
    assert validations == ["MedicationRequest"]  # only the new, good one
    assert [(s.source, s.index) for s in first.skipped] == [("medicationRequests", 0)]
    assert [(s.source, s.index) for s in second.skipped] == [("medicationRequests", 1)]
    assert second.skipped[0].reason == first.skipped[0].reason
    assert [m.ref for m in second.medications] == ["MedicationRequest/ok"]


def test_a_repair_is_reported_on_every_call_that_sends_the_resource() -> None:
    memo = ValidationMemo(100)
    vendor = device("d", vendorField="x")
    records = [parse_record({"devices": [vendor]}, None, ACCEPT, memo=memo) for _ in range(2)]
    assert records[0].repaired == records[1].repaired
    assert records[1].repaired and "vendorField" in records[1].repaired[0].repairs[0]


def test_draft_orders_are_never_remembered(validations: list[str]) -> None:
    memo = ValidationMemo(100)
    draft = {"resourceType": "Bundle", "entry": [{"resource": baclofen("draft-1")}]}
    for _ in range(2):
        parse_record({"patient": [{"resourceType": "Patient", "id": "p1"}]}, draft, ACCEPT,
                     memo=memo)
    assert validations.count("MedicationRequest") == 2


def test_the_memo_is_bounded_and_forgets_the_least_recently_used(
        validations: list[str]) -> None:
    memo = ValidationMemo(2)
    for rid in ("a", "b", "c"):
        parse_record({"devices": [device(rid)]}, None, ACCEPT, memo=memo)
    assert len(memo) == 2
    validations.clear()
    parse_record({"devices": [device("c"), device("b")]}, None, ACCEPT, memo=memo)
    assert validations == []
    parse_record({"devices": [device("a")]}, None, ACCEPT, memo=memo)
    assert validations == ["Device"]


def test_a_memo_of_size_zero_remembers_nothing(validations: list[str]) -> None:
    memo = ValidationMemo(0)
    for _ in range(2):
        parse_record({"devices": [device("d")]}, None, ACCEPT, memo=memo)
    assert validations == ["Device", "Device"]
    assert len(memo) == 0


def test_content_that_cannot_be_keyed_is_validated_without_the_memo(
        validations: list[str]) -> None:
    memo = ValidationMemo(100)
    huge = device("d", extension=[{"url": "http://x", "valueInteger": 2**70}])
    for _ in range(2):
        record = parse_record({"devices": [huge]}, None, ACCEPT, memo=memo)
    assert validations == ["Device", "Device"]
    assert len(memo) == 0
    assert record.skipped  # the out-of-range integer is still rejected by validation


def test_the_record_key_covers_service_prefetch_and_draft_orders() -> None:
    digests = {"patient": "aa", "conditions": "bb"}
    key = RecordMemo.key("itb-order-select", digests, {"entry": []})
    assert key == RecordMemo.key("itb-order-select", dict(reversed(digests.items())),
                                 {"entry": []})
    assert key != RecordMemo.key("itb-order-sign", digests, {"entry": []})
    assert key != RecordMemo.key("itb-order-select", {**digests, "conditions": "bc"},
                                 {"entry": []})
    assert key != RecordMemo.key("itb-order-select", digests, {"entry": [{}]})
    assert key != RecordMemo.key("itb-order-select", digests, None)


def test_a_remembered_medication_use_reads_the_medication_sent_with_it_this_time() -> None:
    memo = ValidationMemo(100)
    use = baclofen("r", medicationReference={"reference": "Medication/m"})
    del use["medicationCodeableConcept"]

    def medication(code: str, display: str) -> dict[str, Any]:
        return {"resourceType": "Medication", "id": "m",
                "code": {"coding": [{"system": RXNORM, "code": code, "display": display}]}}

    def chart(code: str, display: str) -> dict[str, list[Any]]:
        return {"medicationRequests": [use], "medications": [medication(code, display)]}

    first = parse_record(chart("197392", "baclofen 20 MG Oral Tablet"), None, ACCEPT, memo=memo)
    second = parse_record(chart("6809", "metformin"), None, ACCEPT, memo=memo)
    alone = parse_record({"medicationRequests": [use]}, None, ACCEPT, memo=memo)
    assert first.medications[0].medication.codings[0].code == "197392"
    assert second.medications[0].medication.codings[0].code == "6809"
    assert alone.medications[0].medication.codings == ()
    assert second == parse_record(chart("6809", "metformin"), None, ACCEPT)
