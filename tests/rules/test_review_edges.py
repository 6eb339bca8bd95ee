"""Candidacy and trial edge cases from the independent review (D3, D4, D7, D8)."""

from __future__ import annotations

from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.dosage import Dosage as FhirDosage

from cds_service.config import Settings
from cds_service.fhir import datatypes, facts
from cds_service.fhir.record import (
    AdverseEventFact,
    Concept,
    Dosage,
    MedicationFact,
    ProcedureFact,
    Quantity,
)
from cds_service.rules.candidacy import candidacy
from cds_service.rules.chart import condition_is_active
from cds_service.rules.dose import DoseBounds, daily_dose_bounds_mg, daily_dose_mg, reaches_maximum
from cds_service.rules.trial import trial_outcome
from cds_service.terminology import Terminology
from tests.rules.charts import (
    CP,
    CPT,
    NOW,
    SNOMED,
    at,
    coded,
    condition,
    indexed,
    observation,
    oral,
    record,
)

# ------------------------------------------------------------------ D3


def epidural_steroid() -> ProcedureFact:
    return ProcedureFact(
        "Procedure/esi", coded(CPT, "62323", "Injection(s), epidural, lumbar, with imaging",
                               "Lumbar epidural steroid injection"),
        "completed", at("2026-06-14"),
        notes=("Triamcinolone 80 mg interlaminar L4-5 epidural steroid injection",))


def test_an_epidural_steroid_injection_is_no_completed_trial(settings: Settings,
                                                             terms: Terminology) -> None:
    chart = record(conditions=(condition(CP),), procedures=(epidural_steroid(),),
                   medications=(oral("baclofen", 10, status="stopped", reason="Drowsiness"),))
    [finding] = candidacy(indexed(chart, terms), NOW, settings.candidacy)
    assert finding.outcome == "candidate"


def test_a_baclofen_trial_with_the_same_cpt_code_still_silences_candidacy(
        settings: Settings, terms: Terminology) -> None:
    trial = ProcedureFact("Procedure/trial", coded(CPT, "62323", text="Intrathecal baclofen "
                                                   "50 mcg bolus"), "completed", at("2026-06-14"))
    chart = record(conditions=(condition(CP),), procedures=(trial,),
                   medications=(oral("baclofen", 10, status="stopped", reason="Drowsiness"),))
    assert candidacy(indexed(chart, terms), NOW, settings.candidacy) == []


# ------------------------------------------------------------------ D4


def parsed_condition(clinical: dict[str, object] | None) -> bool:
    raw: dict[str, object] = {"resourceType": "Condition", "id": "c",
                              "subject": {"reference": "Patient/p"},
                              "code": {"text": "Cerebral palsy"}}
    if clinical is not None:
        raw["clinicalStatus"] = clinical
    return condition_is_active(facts.condition(Condition.model_validate(raw), "Condition/c"))


def test_a_text_only_clinical_status_is_read() -> None:
    assert parsed_condition({"text": "Active"})
    assert parsed_condition({"text": " active "})
    assert not parsed_condition({"text": "Resolved"})


def test_text_that_is_no_status_word_and_a_missing_status_stay_not_active() -> None:
    assert not parsed_condition({"text": "Active problem, see note"})
    assert not parsed_condition(None)


def test_text_only_verification_status_entered_in_error_is_read() -> None:
    raw = {"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/p"},
           "code": {"text": "CP"}, "clinicalStatus": {"text": "Active"},
           "verificationStatus": {"text": "Entered in error"}}
    fact = facts.condition(Condition.model_validate(raw), "Condition/c")
    assert fact.verification_status == "entered-in-error"
    assert not condition_is_active(fact)


# ------------------------------------------------------------------ D7


def ranged(low: float, high: float) -> MedicationFact:
    base = oral("baclofen", 10, "QID")
    dosage = datatypes.dosage(FhirDosage.model_validate({
        "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
        "route": {"text": "oral"},
        "doseAndRate": [{"doseRange": {"low": {"value": low, "unit": "mg", "code": "mg"},
                                       "high": {"value": high, "unit": "mg", "code": "mg"}}}],
    }))
    return MedicationFact(base.ref, base.kind, base.status, base.medication, intent="order",
                          dosages=(dosage,), authored=base.authored)


def test_a_dose_range_is_not_a_dose(terms: Terminology) -> None:
    m = ranged(10, 20)
    assert m.dosages[0].dose is None
    assert daily_dose_mg(m, terms) is None
    assert daily_dose_bounds_mg(m, terms) == DoseBounds(40, 80)


def test_a_range_with_equal_ends_is_that_dose(terms: Terminology) -> None:
    assert daily_dose_mg(ranged(20, 20), terms) == 80


def test_the_range_decides_only_when_wholly_on_one_side_of_the_maximum() -> None:
    assert reaches_maximum(DoseBounds(80, 100), 80) is True
    assert reaches_maximum(DoseBounds(40, 60), 80) is False
    assert reaches_maximum(DoseBounds(40, 80), 80) is None
    assert reaches_maximum(DoseBounds(None, 100), 80) is None


def test_candidacy_with_a_straddling_range_asks_for_the_dose(settings: Settings,
                                                              terms: Terminology) -> None:
    chart = record(conditions=(condition(CP),), medications=(ranged(10, 20),))
    [finding] = candidacy(indexed(chart, terms), NOW, settings.candidacy)
    assert (finding.rule, finding.blocks) == ("itb-data-quality", "itb-candidacy")


def test_candidacy_when_even_the_low_end_is_at_the_maximum(settings: Settings,
                                                           terms: Terminology) -> None:
    chart = record(conditions=(condition(CP),), medications=(ranged(20, 30),))
    [finding] = candidacy(indexed(chart, terms), NOW, settings.candidacy)
    assert finding.outcome == "candidate"


def test_no_card_when_even_the_high_end_is_below_the_maximum(settings: Settings,
                                                             terms: Terminology) -> None:
    chart = record(conditions=(condition(CP),), medications=(ranged(5, 10),))
    assert candidacy(indexed(chart, terms), NOW, settings.candidacy) == []


# ------------------------------------------------------------------ D8


def test_positive_trial_with_overdose_signs_suggests_no_implant(settings: Settings,
                                                                terms: Terminology) -> None:
    bolus = MedicationFact(
        "MedicationAdministration/ma", "MedicationAdministration", "completed",
        coded("http://www.nlm.nih.gov/research/umls/rxnorm", "1047437", text="Baclofen "
              "intrathecal 50 mcg/mL"),
        dosages=(Dosage(route=coded(SNOMED, "72607000", "Intrathecal"),
                        dose=Quantity(50, "mcg", "ug")),),
        effective=datatypes.period("2026-06-14T08:00:00Z"))
    response = observation("itb-trial-response", Concept(text="positive"),
                           "2026-06-14T12:00", "Observation/r",
                           part_of=("MedicationAdministration/ma",))
    event = AdverseEventFact("AdverseEvent/ae", coded(SNOMED, "80954004",
                                                      "Respiratory depression"),
                             date=at("2026-06-14T10:00"))
    chart = record(conditions=(condition(CP),), medications=(bolus,),
                   observations=(response,), adverse_events=(event,))
    findings = {f.outcome: f for f in trial_outcome(indexed(chart, terms), NOW, settings.trial)}
    assert set(findings) == {"positive", "adverse"}
    assert not findings["positive"].suggest
    assert "overdose-review-first" in findings["positive"].notes

