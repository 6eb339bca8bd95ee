"""The pre-validation screen drops only what no rule reads: for every scenario, the findings
from the screened record equal those from the full record."""

from __future__ import annotations

import asyncio

import pytest

from cds_service.config import PROJECT_ROOT, Settings
from cds_service.fhir.client import FhirClient
from cds_service.fhir.prefetch import build_record, resolve
from cds_service.rules import evaluate
from cds_service.rules.relevance import make_screen
from cds_service.scenarios import load_scenarios
from cds_service.terminology import Terminology

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")
SETTINGS = Settings()
TERMS = Terminology.load(SETTINGS)
SCREEN = make_screen(TERMS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_screen_changes_no_finding(scenario: object) -> None:
    request = scenario.request  # type: ignore[attr-defined]

    async def resolved() -> object:
        client = FhirClient(SETTINGS)
        try:
            return await resolve(scenario.service, request["context"],  # type: ignore[attr-defined]
                                 request.get("prefetch"), None, None, client, SETTINGS)
        finally:
            await client.aclose()

    res = asyncio.run(resolved())
    drafts = request["context"].get("draftOrders")
    full = build_record(res, drafts, TERMS.observation_filter)  # type: ignore[arg-type]
    screened = build_record(res, drafts, TERMS.observation_filter,  # type: ignore[arg-type]
                            SCREEN)
    now = scenario.anchor  # type: ignore[attr-defined]
    service = scenario.service  # type: ignore[attr-defined]
    assert evaluate(service, screened, now, SETTINGS, TERMS) == evaluate(
        service, full, now, SETTINGS, TERMS)
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
