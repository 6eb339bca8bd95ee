"""The fixture FHIR store: token and reference matching, patient compartments, and unique ids
across scenarios that reuse short resource ids."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.sandbox.fhir_server import parse_search, searchset
from cds_service.sandbox.fhir_store import (
    DuplicateResourceError,
    FixtureFhirStore,
    Search,
    Token,
    TokenFilter,
    patient_of,
    reference_id,
)
from cds_service.sandbox.fixture_library import served_id, served_resources
from tests.conftest import FIXED_NOW

LOCAL = "urn:itb-cds:codes"
LOINC = "http://loinc.org"


def observation(oid: str, patient: str, *codings: tuple[str | None, str]) -> dict[str, Any]:
    coding = [{"code": code} | ({"system": system} if system else {}) for system, code in codings]
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": coding},
    }


@pytest.mark.parametrize(
    ("value", "system", "code", "matches"),
    [
        (f"{LOCAL}|pump-eri", LOCAL, "pump-eri", True),
        (f"{LOCAL}|pump-eri", LOINC, "pump-eri", False),
        ("pump-eri", LOINC, "pump-eri", True),
        (f"{LOCAL}|", LOCAL, "anything", True),
        ("|pump-eri", None, "pump-eri", True),
        ("|pump-eri", LOCAL, "pump-eri", False),
        (f"{LOCAL}|pump-eri", LOCAL, "pump-daily-dose", False),
    ],
)
def test_a_token_matches_the_fhir_token_forms(
    value: str, system: str | None, code: str, matches: bool
) -> None:
    coding = {"code": code} | ({"system": system} if system else {})
    assert Token.parse(value).matches(coding) is matches


def test_a_comma_separated_token_matches_any_alternative() -> None:
    wanted = TokenFilter.parse(f"{LOCAL}|pump-eri,{LOCAL}|pump-daily-dose")
    assert wanted.matches({"coding": [{"system": LOCAL, "code": "pump-daily-dose"}]})
    assert not wanted.matches({"coding": [{"system": LOINC, "code": "8867-4"}]})
    assert not wanted.matches({"text": "no codings"})
    assert not wanted.matches(None)


@pytest.mark.parametrize(
    "value", ["pt-1", "Patient/pt-1", "http://example.org/fhir/Patient/pt-1", "Patient/pt-1/"]
)
def test_a_patient_reference_value_may_be_an_id_a_reference_or_a_url(value: str) -> None:
    assert reference_id(value) == "pt-1"


def test_patient_compartment_follows_subject_patient_and_appointment_participants() -> None:
    assert patient_of({"resourceType": "Patient", "id": "pt-1"}) == "pt-1"
    device = {"resourceType": "Device", "patient": {"reference": "Patient/pt-1"}}
    assert patient_of(device) == "pt-1"
    appointment = {
        "resourceType": "Appointment",
        "participant": [
            {"actor": {"reference": "Practitioner/dr"}},
            {"actor": {"reference": "Patient/pt-2"}},
        ],
    }
    assert patient_of(appointment) == "pt-2"
    assert patient_of({"resourceType": "Medication", "id": "m"}) is None


def test_search_by_patient_and_code_returns_only_the_matching_resources_in_order() -> None:
    store = FixtureFhirStore(
        [
            observation("o1", "pt-1", (LOCAL, "pump-eri")),
            observation("o2", "pt-1", (LOINC, "8867-4")),
            observation("o3", "pt-2", (LOCAL, "pump-eri")),
            observation("o4", "pt-1", (LOCAL, "pump-daily-dose")),
        ]
    )
    search, count, offset, applied = parse_search(
        "Observation",
        [("patient", "pt-1"), ("code", f"{LOCAL}|pump-eri,{LOCAL}|pump-daily-dose"),
         ("_count", "1"), ("_sort", "date")],
    )
    assert [r["id"] for r in store.search(search)] == ["o1", "o4"]
    assert (count, offset) == (1, 0)
    assert [name for name, _ in applied] == ["patient", "code"]  # _sort is not applied


def test_subject_search_accepts_patient_references_and_ignores_other_subjects() -> None:
    store = FixtureFhirStore([observation("o1", "pt-1", (LOCAL, "pump-eri"))])
    by_patient, *_ = parse_search("Observation", [("subject", "Patient/pt-1")])
    by_group, *_ = parse_search("Observation", [("subject", "Group/pt-1")])
    assert [r["id"] for r in store.search(by_patient)] == ["o1"]
    assert store.search(by_group) == []


def test_two_different_resources_under_one_id_are_refused() -> None:
    with pytest.raises(DuplicateResourceError):
        FixtureFhirStore(
            [observation("o1", "pt-1", (LOCAL, "a")), observation("o1", "pt-2", (LOCAL, "b"))]
        )


def test_scenarios_reusing_short_ids_are_served_under_unique_ids_with_references_rewritten(
) -> None:
    def bundle(patient: str) -> dict[str, Any]:
        device = {"resourceType": "Device", "id": "dev-1",
                  "patient": {"reference": f"Patient/{patient}"}}
        obs = observation("obs-1", patient, (LOCAL, "pump-eri"))
        obs["device"] = {"reference": "Device/dev-1"}
        obs["performer"] = [{"reference": "Practitioner/shared"}]
        return {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": patient}},
            {"resource": device},
            {"resource": obs},
        ]}

    served = served_resources("scenario-a", bundle("pt-a")) + served_resources(
        "scenario-b", bundle("pt-b"))
    store = FixtureFhirStore(served)  # would raise on a clash
    obs_a = store.read("Observation", served_id("scenario-a", "Observation", "obs-1"))
    assert obs_a is not None
    assert obs_a["device"] == {
        "reference": f"Device/{served_id('scenario-a', 'Device', 'dev-1')}"
    }
    assert obs_a["performer"] == [{"reference": "Practitioner/shared"}]  # not in the bundle
    assert store.read("Patient", "pt-a") is not None  # patients keep their ids
    assert served_id("scenario-a", "Device", "dev-1") != served_id("scenario-b", "Device", "dev-1")


def test_a_searchset_pages_with_next_and_previous_links() -> None:
    resources = [observation(f"o{i}", "pt-1", (LOCAL, "x")) for i in range(5)]
    bundle = searchset(resources, base="http://h/fhir", resource_type="Observation",
                       applied=[("patient", "pt-1")], count=2, offset=2, now=FIXED_NOW)
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert bundle["total"] == 5
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["o2", "o3"]
    assert links["next"] == (
        "http://h/fhir/Observation?patient=pt-1&_count=2&_getpagesoffset=4"
    )
    assert links["previous"].endswith("_getpagesoffset=0")


def test_count_zero_gives_the_total_without_entries() -> None:
    resources = [observation(f"o{i}", "pt-1", (LOCAL, "x")) for i in range(3)]
    bundle = searchset(resources, base="http://h/fhir", resource_type="Observation",
                       applied=[], count=0, offset=0, now=FIXED_NOW)
    assert bundle["total"] == 3
    assert "entry" not in bundle
    assert [link["relation"] for link in bundle["link"]] == ["self"]


def test_search_on_a_type_without_resources_is_empty() -> None:
    assert FixtureFhirStore([]).search(Search(resource_type="Appointment")) == []
