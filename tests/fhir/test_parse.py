"""The selective parser: keeps what the rules read, repairs what is harmless, reports the rest."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

from cds_service.config import Settings
from cds_service.fhir.parse import parse_record
from cds_service.fhir.record import Quantity, SkippedEntry
from cds_service.terminology import Terminology

ACCEPT = Terminology.load(Settings()).observation_filter


def rxnorm(code: str, display: str) -> dict[str, Any]:
    system = "http://www.nlm.nih.gov/research/umls/rxnorm"
    return {"coding": [{"system": system, "code": code, "display": display}]}


def med_request(rid: str, **extra: Any) -> dict[str, Any]:
    raw = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": rxnorm("197392", "baclofen 20 MG Oral Tablet"),
        **extra,
    }
    if "medicationReference" in raw:
        del raw["medicationCodeableConcept"]
    return raw


def observation(rid: str, system: str, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        **extra,
    }


def test_malformed_entries_are_skipped_with_key_and_index_and_never_fail_the_call():
    record = parse_record(
        {
            "medicationRequests": [
                med_request("good"),
                med_request("bad", dosageInstruction=[{"timing": {"repeat": {"frequency": "x"}}}]),
                "not a resource",
                {"id": "no-type"},
            ]
        },
        None,
        ACCEPT,
    )
    assert [m.ref for m in record.medications] == ["MedicationRequest/good"]
    assert [(s.source, s.index, s.resource_type) for s in record.skipped] == [
        ("medicationRequests", 1, "MedicationRequest"),
        ("medicationRequests", 2, None),
        ("medicationRequests", 3, None),
    ]
    assert "dosageInstruction.0.timing.repeat.frequency" in record.skipped[0].reason


def test_unknown_elements_and_extensions_are_tolerated_and_the_repair_reported():
    raw = med_request(
        "vendor",
        extension=[{"url": "http://vendor.example/ext", "valueString": "x"}],
        vendorPriority="stat",
        dosageInstruction=[{"text": "20 mg TID", "vendorNote": "n"}],
        _status={"extension": [{"url": "http://vendor.example/why", "valueCode": "ok"}]},
    )
    original = copy.deepcopy(raw)
    record = parse_record({"medicationRequests": [raw]}, None, ACCEPT)
    assert record.skipped == ()
    assert record.medications[0].dosages[0].text == "20 mg TID"
    assert set(record.repaired[0].repairs) == {
        "dropped unknown element vendorPriority",
        "dropped unknown element dosageInstruction.0.vendorNote",
    }
    assert raw == original  # the caller's JSON is never mutated


def test_a_datetime_without_offset_is_read_as_utc():
    raw = med_request("naive", authoredOn="2025-01-06T09:15")
    record = parse_record({"medicationRequests": [raw]}, None, ACCEPT)
    assert record.medications[0].authored == datetime(2025, 1, 6, 9, 15, tzinfo=UTC)
    assert record.repaired[0].repairs == ("read authoredOn without offset as UTC",)


def test_dates_become_aware_datetimes_but_birth_date_stays_a_date():
    record = parse_record(
        {
            "patient": [{"resourceType": "Patient", "id": "p1", "birthDate": "2011-04-17"}],
            "conditions": [
                {
                    "resourceType": "Condition",
                    "id": "c1",
                    "subject": {"reference": "Patient/p1"},
                    "code": {"text": "spasticity"},
                    "onsetDateTime": "2012-03",
                }
            ],
        },
        None,
        ACCEPT,
    )
    assert record.patient is not None and record.patient.birth_date == date(2011, 4, 17)
    assert record.conditions[0].onset == datetime(2012, 3, 1, tzinfo=UTC)


def test_only_rule_types_and_rule_observation_codes_are_kept():
    record = parse_record(
        {
            "observations": [
                observation(
                    "vol",
                    "urn:itb-cds:codes",
                    "pump-reservoir-volume",
                    valueQuantity={"value": 20, "unit": "mL"},
                ),
                observation("hr", "http://loinc.org", "8867-4", valueQuantity={"value": 72}),
                # an invalid vital sign is dropped before validation, so it is not reported
                observation("bp", "http://loinc.org", "85354-9", valueQuantity="junk"),
            ],
            "conditions": [{"resourceType": "Encounter", "id": "e1", "status": 12}],
        },
        None,
        ACCEPT,
    )
    assert [(o.ref, o.value) for o in record.observations] == [
        ("Observation/vol", Quantity(value=20.0, unit="mL"))
    ]
    assert record.skipped == ()


def test_the_same_resource_under_two_keys_is_kept_once():
    record = parse_record(
        {"medicationRequests": [med_request("m1")], "medicationStatements": [med_request("m1")]},
        None,
        ACCEPT,
    )
    assert [m.ref for m in record.medications] == ["MedicationRequest/m1"]


def test_medication_references_resolve_to_contained_or_included_medications():
    strength = {
        "numerator": {"value": 2000, "unit": "mcg"},
        "denominator": {"value": 1, "unit": "mL"},
    }
    contained = {
        "resourceType": "Medication",
        "id": "itb",
        "code": rxnorm("1666613", "baclofen 2 MG/ML Injection"),
        "ingredient": [{"itemCodeableConcept": {"text": "baclofen"}, "strength": strength}],
    }
    included = {"resourceType": "Medication", "id": "tiz", "code": rxnorm("57258", "tizanidine")}
    record = parse_record(
        {
            "medicationRequests": [
                med_request("a", contained=[contained], medicationReference={"reference": "#itb"}),
                med_request(
                    "b", medicationReference={"reference": "http://ehr/fhir/Medication/tiz"}
                ),
                med_request(
                    "c", medicationReference={"reference": "Medication/gone", "display": "Lioresal"}
                ),
            ],
            "medicationStatements": [included],
        },
        None,
        ACCEPT,
    )
    by_ref = {m.ref.removeprefix("MedicationRequest/"): m for m in record.medications}
    assert by_ref["a"].medication.codings[0].code == "1666613"
    assert by_ref["a"].strength is not None
    assert by_ref["a"].strength.numerator == Quantity(value=2000.0, unit="mcg")
    assert by_ref["b"].medication.codings[0].code == "57258"
    assert by_ref["c"].medication.text == "Lioresal"


def sandbox_draft_orders() -> dict[str, Any]:
    """What the CDS Hooks Sandbox sends: no Bundle.type, no intent, category as an object."""
    return {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "request-123",
                    "status": "draft",
                    "category": {"coding": [{"code": "outpatient"}]},
                    "medicationCodeableConcept": rxnorm("197392", "baclofen 20 MG Oral Tablet"),
                    "dosageInstruction": [
                        {
                            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                            "doseAndRate": {"doseQuantity": {"value": 20, "unit": "mg"}},
                        }
                    ],
                }
            },
            {"resource": {"resourceType": "MedicationRequest", "id": "no-drug"}},
        ],
    }


def test_sandbox_draft_orders_are_repaired_and_marked_draft():
    patient = {"resourceType": "Patient", "id": "p1"}
    record = parse_record({"patient": [patient]}, sandbox_draft_orders(), ACCEPT)
    [draft] = record.medications
    assert draft.ref == "MedicationRequest/request-123"
    assert draft.draft is True
    assert (draft.status, draft.intent) == ("draft", "order")
    assert draft.dosages[0].dose == Quantity(value=20.0, unit="mg")
    assert draft.dosages[0].timing is not None and draft.dosages[0].timing.frequency == 3
    repairs = set(record.repaired[0].repairs)
    assert {"filled missing intent", "filled missing subject"} <= repairs
    assert "wrapped dosageInstruction.0.doseAndRate in a list" in repairs
    # an order without a medication is not a quirk, it is not an order: skipped and reported
    assert record.skipped == (
        SkippedEntry("draftOrders", 1, "MedicationRequest", record.skipped[0].reason),
    )


def test_a_draft_order_supersedes_the_stored_copy_of_the_same_order():
    stored = med_request("request-123", status="active")
    record = parse_record({"medicationRequests": [stored]}, sandbox_draft_orders(), ACCEPT)
    [order] = record.medications
    assert order.draft and order.status == "draft"


def test_draft_orders_that_are_not_a_bundle_are_reported_not_raised():
    record = parse_record({}, "garbage", ACCEPT)
    assert record.skipped[0].source == "draftOrders"
    assert record.medications == ()
