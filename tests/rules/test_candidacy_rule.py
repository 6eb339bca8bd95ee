"""ITB candidacy after failed oral therapy: criteria, modifiers and order-select drafts."""

from __future__ import annotations

import pytest

from cds_service.config import Settings
from cds_service.fhir.record import AllergyFact, Concept, ServiceRequestFact
from cds_service.rules import evaluate
from cds_service.rules.candidacy import candidacy
from cds_service.rules.finding import Tier
from cds_service.terminology import Terminology
from tests.rules.charts import (
    CP,
    CPT,
    MS,
    NOW,
    TBI,
    coded,
    condition,
    oral,
    patient,
    procedure,
    pump_device,
    record,
)

STOPPED_DROWSY = oral("baclofen", 20, status="stopped", reason="drowsiness")


def test_cerebral_palsy_with_baclofen_stopped_for_drowsiness(settings: Settings,
                                                             terms: Terminology) -> None:
    rec = record(conditions=(condition(CP),), medications=(STOPPED_DROWSY,))
    [f] = candidacy(rec, NOW, settings, terms)
    assert (f.rule, f.outcome, f.tier, f.suggest) == ("itb-candidacy", "candidate", Tier.INFO,
                                                     True)
    assert f.reason_refs == ("Condition/c1",)


@pytest.mark.parametrize(("birth", "mg", "fires"), [
    ("1980-01-01", 20, True),  # adult 80 mg/day
    ("1980-01-01", 15, False),
    ("2016-01-01", 15, False),  # 10 years: 60 mg/day needed, 45 given
    ("2016-01-01", 20, True),  # 10 years: 60 mg/day reached
    ("2020-01-01", 10, False),  # 6 years: 30 < 40
    ("2020-01-01", 15, True),  # 6 years: 45 >= 40
])
def test_baclofen_maximum_by_age_band(birth: str, mg: float, fires: bool, settings: Settings,
                                      terms: Terminology) -> None:
    on_max = oral("baclofen", mg, "QID" if mg >= 20 else "TID")
    if mg == 20 and birth == "2016-01-01":
        on_max = oral("baclofen", 20, "TID")
    rec = record(patient=patient(birth), conditions=(condition(MS),), medications=(on_max,))
    assert bool(candidacy(rec, NOW, settings, terms)) is fires


def test_under_four_years_no_card(settings: Settings, terms: Terminology) -> None:
    rec = record(patient=patient("2023-01-01"), conditions=(condition(CP),),
                 medications=(STOPPED_DROWSY,))
    assert candidacy(rec, NOW, settings, terms) == []


def test_diazepam_counts_only_for_a_spasticity_reason(settings: Settings, terms: Terminology
                                                      ) -> None:
    for_anxiety = oral("diazepam", 10, "QID", ref="MedicationRequest/d")
    for_spasticity = oral("diazepam", 10, "QID", ref="MedicationRequest/d",
                          reason_refs=("Condition/c1",))
    assert candidacy(record(conditions=(condition(CP),), medications=(for_anxiety,)), NOW,
                     settings, terms) == []
    assert candidacy(record(conditions=(condition(CP),), medications=(for_spasticity,)), NOW,
                     settings, terms)


@pytest.mark.parametrize(("status", "verification"), [
    ("inactive", "confirmed"), ("resolved", "confirmed"), ("active", "entered-in-error"),
    ("active", "refuted"),
])
def test_condition_status_filters(status: str, verification: str, settings: Settings,
                                  terms: Terminology) -> None:
    rec = record(conditions=(condition(CP, status=status, verification=verification),),
                 medications=(STOPPED_DROWSY,))
    assert candidacy(rec, NOW, settings, terms) == []


def test_entered_in_error_medication_is_ignored(settings: Settings, terms: Terminology) -> None:
    voided = oral("baclofen", 20, status="entered-in-error", reason="drowsiness")
    assert candidacy(record(conditions=(condition(CP),), medications=(voided,)), NOW, settings,
                     terms) == []


def test_tbi_under_twelve_months_is_deferred(settings: Settings, terms: Terminology) -> None:
    rec = record(conditions=(condition(TBI, onset="2025-09-01"),), medications=(STOPPED_DROWSY,))
    [f] = candidacy(rec, NOW, settings, terms)
    assert (f.outcome, f.suggest) == ("deferred", False)
    assert f.number("eligibleFromDate").value == "2026-09-01"  # type: ignore[union-attr]
    older = record(conditions=(condition(TBI, onset="2025-06-01"),), medications=(STOPPED_DROWSY,))
    assert candidacy(older, NOW, settings, terms)[0].outcome == "candidate"


def test_baclofen_allergy_makes_a_contraindication_warning(settings: Settings,
                                                          terms: Terminology) -> None:
    allergy = AllergyFact("AllergyIntolerance/a", Concept(text="Baclofen"), "allergy", "high",
                          "active", "confirmed")
    tizanidine = oral("tizanidine", 4, status="stopped", reason="weakness")
    rec = record(conditions=(condition(CP),), medications=(tizanidine,), allergies=(allergy,))
    [f] = candidacy(rec, NOW, settings, terms)
    assert (f.outcome, f.tier, f.suggest) == ("contraindicated", Tier.WARNING, False)


def test_spinal_origin_without_failed_oral_baclofen_is_noted(settings: Settings,
                                                            terms: Terminology) -> None:
    tizanidine = oral("tizanidine", 4, status="stopped", reason="weakness")
    [f] = candidacy(record(conditions=(condition(MS),), medications=(tizanidine,)), NOW,
                    settings, terms)
    assert "spinal-without-oral-baclofen" in f.notes


def test_dystonia_only_is_flagged_off_label(settings: Settings, terms: Terminology) -> None:
    rec = record(conditions=(condition(coded("http://snomed.info/sct", "15802004", "Dystonia")),),
                 medications=(STOPPED_DROWSY,))
    assert "off-label-dystonia" in candidacy(rec, NOW, settings, terms)[0].notes


def test_no_card_with_a_pump_an_open_referral_or_a_trial(settings: Settings,
                                                          terms: Terminology) -> None:
    base = {"conditions": (condition(CP),), "medications": (STOPPED_DROWSY,)}
    referral = ServiceRequestFact("ServiceRequest/s", "active", "order",
                                  Concept(text="Intrathecal baclofen evaluation"))
    trial = procedure("urn:itb-cds:codes", "itb-screening-trial", "2024-01-01", "Procedure/t")
    assert candidacy(record(devices=(pump_device(),), **base), NOW, settings, terms) == []
    assert candidacy(record(service_requests=(referral,), **base), NOW, settings, terms) == []
    assert candidacy(record(procedures=(trial,), **base), NOW, settings, terms) == []
    removed = (procedure(CPT, "62362", "2015-01-01", "Procedure/i"),
               procedure(CPT, "62365", "2020-01-01", "Procedure/r"))
    assert candidacy(record(procedures=removed, **base), NOW, settings, terms)


def test_uncomputable_dose_that_would_decide_is_data_quality(settings: Settings,
                                                             terms: Terminology) -> None:
    from dataclasses import replace

    from cds_service.fhir.record import Dosage

    vague = replace(oral("baclofen", 20), dosages=(Dosage(text="as directed by mouth"),))
    [f] = candidacy(record(conditions=(condition(CP),), medications=(vague,)), NOW, settings,
                    terms)
    assert (f.rule, f.blocks) == ("itb-data-quality", "itb-candidacy")


def test_order_select_draft_counts_and_above_maximum_is_added(settings: Settings,
                                                              terms: Terminology) -> None:
    draft = oral("baclofen", 30, "QID", ref="MedicationRequest/draft", draft=True,
                 status="draft")
    rec = record(conditions=(condition(CP),),
                 medications=(oral("tizanidine", 4, status="stopped", reason="dizziness"),
                              draft))
    [f] = evaluate(["candidacy-on-order"], rec, NOW, settings, terms)
    assert "draft-above-maximum" in f.notes
    assert f.number("draftDailyDoseMg").value == 120  # type: ignore[union-attr]
    no_draft = record(conditions=(condition(CP),), medications=(STOPPED_DROWSY,))
    assert evaluate(["candidacy-on-order"], no_draft, NOW, settings, terms) == []


def test_intolerance_from_allergy_record_and_text_fallback(settings: Settings,
                                                           terms: Terminology) -> None:
    intolerance = AllergyFact("AllergyIntolerance/i", Concept(text="tizanidine"), "intolerance",
                              "low", "active", "confirmed")
    cp_text = condition(Concept(text="Spastic quadriplegic cerebral palsy"))
    assert candidacy(record(conditions=(cp_text,), allergies=(intolerance,)), NOW, settings,
                     terms)
