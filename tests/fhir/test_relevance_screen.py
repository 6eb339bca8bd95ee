"""The pre-validation screen drops only what no rule reads: for every scenario, the findings
from the screened record equal those from the full record."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cds_service.config import PROJECT_ROOT, Settings
from cds_service.fhir.client import FhirClient
from cds_service.fhir.prefetch import build_record, resolve
from cds_service.fhir.relevance import make_screen
from cds_service.rules import evaluate
from cds_service.sandbox.scenarios import load_scenarios
from cds_service.services import SERVICES_BY_ID
from cds_service.terminology import Terminology

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")
SETTINGS = Settings()
TERMS = Terminology.load(SETTINGS)
SCREEN = make_screen(TERMS)


def codings_as_objects(value: Any) -> Any:
    """The vendor quirk the repairer mends: each coded CodeableConcept's first coding sent as
    an object instead of a list, with no display and no text to fall back on, everywhere in
    the request."""
    if isinstance(value, list):
        return [codings_as_objects(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: codings_as_objects(v) for k, v in value.items()}
    codings = out.get("coding")
    if isinstance(codings, list) and codings and isinstance(codings[0], dict):
        out["coding"] = {k: v for k, v in codings[0].items() if k != "display"}
        out.pop("text", None)
    return out


@pytest.mark.parametrize("quirk", [False, True], ids=["as-sent", "codings-as-objects"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_screen_changes_no_finding(scenario: object, quirk: bool) -> None:
    request = scenario.request  # type: ignore[attr-defined]
    if quirk:
        request = codings_as_objects(request)

    async def resolved() -> object:
        client = FhirClient(SETTINGS)
        try:
            return await resolve(service.templates(SETTINGS), request["context"],
                                 request.get("prefetch"), None, None, client)
        finally:
            await client.aclose()

    service = SERVICES_BY_ID[scenario.service]  # type: ignore[attr-defined]
    res = asyncio.run(resolved())
    drafts = request["context"].get("draftOrders")
    full = build_record(res, drafts, TERMS.observation_filter)  # type: ignore[arg-type]
    screened = build_record(res, drafts, TERMS.observation_filter,  # type: ignore[arg-type]
                            SCREEN)
    now = scenario.anchor  # type: ignore[attr-defined]
    assert evaluate(service.rules, screened, now, SETTINGS, TERMS) == evaluate(
        service.rules, full, now, SETTINGS, TERMS)
    assert len(screened.conditions) <= len(full.conditions)
    assert len(screened.medications) <= len(full.medications)
    assert len(screened.procedures) <= len(full.procedures)


def test_screen_drops_unrelated_and_keeps_intrathecal_drugs() -> None:
    metformin = {"resourceType": "MedicationRequest", "medicationCodeableConcept": {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "6809",
                    "display": "metformin"}]}}
    morphine_it = {"resourceType": "MedicationRequest",
                   "medicationCodeableConcept": {"text": "morphine"},
                   "dosageInstruction": [{"route": {"text": "intrathecal"}}]}
    contained_baclofen = {"resourceType": "MedicationStatement",
                          "medicationReference": {"reference": "#m"},
                          "contained": [{"resourceType": "Medication", "id": "m",
                                         "code": {"text": "baclofen 10 mg tablet"}}]}
    unresolved = {"resourceType": "MedicationRequest",
                  "medicationReference": {"reference": "Medication/elsewhere"}}
    asthma = {"resourceType": "Condition", "code": {"text": "asthma"}}
    cp = {"resourceType": "Condition", "code": {"coding": [
        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G80.1"}]}}
    assert not SCREEN("MedicationRequest", metformin, {})
    assert SCREEN("MedicationRequest", morphine_it, {})
    assert SCREEN("MedicationStatement", contained_baclofen, {})
    assert SCREEN("MedicationRequest", unresolved, {})
    assert not SCREEN("Condition", asthma, {})
    assert SCREEN("Condition", cp, {})
    assert SCREEN("Procedure", {"resourceType": "Procedure"}, {})


def test_screen_drops_unrelated_procedures_and_keeps_itb_ones() -> None:
    colonoscopy = {"resourceType": "Procedure", "code": {"coding": [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "45378"}], "text": "Colonoscopy"}}
    refill = {"resourceType": "Procedure", "code": {"coding": [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "95991"}]}}
    refill_by_text = {"resourceType": "Procedure",
                      "code": {"text": "Intrathecal baclofen pump refill"}}
    trial_by_text = {"resourceType": "Procedure",
                     "code": {"text": "Intrathecal baclofen screening trial"}}
    assert not SCREEN("Procedure", colonoscopy, {})
    assert SCREEN("Procedure", refill, {})
    assert SCREEN("Procedure", refill_by_text, {})
    assert SCREEN("Procedure", trial_by_text, {})


def test_shapes_the_screen_cannot_read_are_left_to_validation() -> None:
    one_coding = {"resourceType": "Procedure", "code": {"coding": {
        "system": "http://www.ama-assn.org/go/cpt", "code": "95991"}}}
    assert SCREEN("Procedure", one_coding, {})  # read as the repairer will read it
    for code in ("95991", {"coding": "95991"}, {"coding": [1]}, {"text": 7},
                 {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": 95991}]}):
        assert SCREEN("Procedure", {"resourceType": "Procedure", "code": code}, {})
        assert SCREEN("Condition", {"resourceType": "Condition", "code": code}, {})
        assert SCREEN("MedicationRequest", {"resourceType": "MedicationRequest",
                                            "medicationCodeableConcept": code}, {})
