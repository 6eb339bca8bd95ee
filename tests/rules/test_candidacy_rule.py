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
    indexed,
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
    [f] = candidacy(indexed(rec, terms), NOW, settings.candidacy)
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
    assert bool(candidacy(indexed(rec, terms), NOW, settings.candidacy)) is fires


def test_under_four_years_no_card(settings: Settings, terms: Terminology) -> None:
    rec = record(patient=patient("2023-01-01"), conditions=(condition(CP),),
                 medications=(STOPPED_DROWSY,))
    assert candidacy(indexed(rec, terms), NOW, settings.candidacy) == []


def test_diazepam_counts_only_for_a_spasticity_reason(settings: Settings, terms: Terminology
                                                      ) -> None:
    for_anxiety = oral("diazepam", 10, "QID", ref="MedicationRequest/d")
    for_spasticity = oral("diazepam", 10, "QID", ref="MedicationRequest/d",
                          reason_refs=("Condition/c1",))
    anxiety = indexed(record(conditions=(condition(CP),), medications=(for_anxiety,)), terms)
    assert candidacy(anxiety, NOW, settings.candidacy) == []
    spasticity = indexed(record(conditions=(condition(CP),), medications=(for_spasticity,)),
                         terms)
    assert candidacy(spasticity, NOW, settings.candidacy)


@pytest.mark.parametrize(("status", "verification"), [
    ("inactive", "confirmed"), ("resolved", "confirmed"), ("active", "entered-in-error"),
    ("active", "refuted"),
])
def test_condition_status_filters(status: str, verification: str, settings: Settings,
                                  terms: Terminology) -> None:
    rec = record(conditions=(condition(CP, status=status, verification=verification),),
                 medications=(STOPPED_DROWSY,))
    assert candidacy(indexed(rec, terms), NOW, settings.candidacy) == []


def test_entered_in_error_medication_is_ignored(settings: Settings, terms: Terminology) -> None:
    voided = oral("baclofen", 20, status="entered-in-error", reason="drowsiness")
    chart = indexed(record(conditions=(condition(CP),), medications=(voided,)), terms)
    assert candidacy(chart, NOW, settings.candidacy) == []


def test_tbi_under_twelve_months_is_deferred(settings: Settings, terms: Terminology) -> None:
    rec = record(conditions=(condition(TBI, onset="2025-09-01"),), medications=(STOPPED_DROWSY,))
    [f] = candidacy(indexed(rec, terms), NOW, settings.candidacy)
    assert (f.outcome, f.suggest) == ("deferred", False)
    assert f.number("eligibleFromDate").value == "2026-09-01"  # type: ignore[union-attr]
    older = record(conditions=(condition(TBI, onset="2025-06-01"),), medications=(STOPPED_DROWSY,))
    assert candidacy(indexed(older, terms), NOW, settings.candidacy)[0].outcome == "candidate"


def test_baclofen_allergy_makes_a_contraindication_warning(settings: Settings,
                                                          terms: Terminology) -> None:
    allergy = AllergyFact("AllergyIntolerance/a", Concept(text="Baclofen"), "allergy", "high",
                          "active", "confirmed")
    tizanidine = oral("tizanidine", 4, status="stopped", reason="weakness")
    rec = record(conditions=(condition(CP),), medications=(tizanidine,), allergies=(allergy,))
    [f] = candidacy(indexed(rec, terms), NOW, settings.candidacy)
    assert (f.outcome, f.tier, f.suggest) == ("contraindicated", Tier.WARNING, False)


def test_spinal_origin_without_failed_oral_baclofen_is_noted(settings: Settings,
                                                            terms: Terminology) -> None:
    tizanidine = oral("tizanidine", 4, status="stopped", reason="weakness")
    chart = indexed(record(conditions=(condition(MS),), medications=(tizanidine,)), terms)
    [f] = candidacy(chart, NOW, settings.candidacy)
    assert "spinal-without-oral-baclofen" in f.notes


def test_dystonia_only_is_flagged_off_label(settings: Settings, terms: Terminology) -> None:
    rec = record(conditions=(condition(coded("http://snomed.info/sct", "15802004", "Dystonia")),),
                 medications=(STOPPED_DROWSY,))
    assert "off-label-dystonia" in candidacy(indexed(rec, terms), NOW, settings.candidacy)[0].notes


def test_no_card_with_a_pump_an_open_referral_or_a_trial(settings: Settings,
                                                          terms: Terminology) -> None:
    base = {"conditions": (condition(CP),), "medications": (STOPPED_DROWSY,)}
    referral = ServiceRequestFact("ServiceRequest/s", "active", "order",
                                  Concept(text="Intrathecal baclofen evaluation"))
    # A trial in the last 12 months ends the card; an older one (not a
    # negative at the highest labeled dose) is mentioned on it instead.
    trial = procedure("urn:itb-cds:codes", "itb-screening-trial", "2026-01-01", "Procedure/t")
    for chart in (record(devices=(pump_device(),), **base),
                  record(service_requests=(referral,), **base),
                  record(procedures=(trial,), **base)):
        assert candidacy(indexed(chart, terms), NOW, settings.candidacy) == []
    old = procedure("urn:itb-cds:codes", "itb-screening-trial", "2024-01-01", "Procedure/t")
    [card] = candidacy(indexed(record(procedures=(old,), **base), terms), NOW,
                       settings.candidacy)
    assert "older-trial" in card.notes
    removed = (procedure(CPT, "62362", "2015-01-01", "Procedure/i"),
               procedure(CPT, "62365", "2020-01-01", "Procedure/r"))
    assert candidacy(indexed(record(procedures=removed, **base), terms), NOW, settings.candidacy)


def test_uncomputable_dose_that_would_decide_is_data_quality(settings: Settings,
                                                             terms: Terminology) -> None:
    from dataclasses import replace

    from cds_service.fhir.record import Dosage

    vague = replace(oral("baclofen", 20), dosages=(Dosage(text="as directed by mouth"),))
    chart = indexed(record(conditions=(condition(CP),), medications=(vague,)), terms)
    [f] = candidacy(chart, NOW, settings.candidacy)
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
    # A dose to fix before signing: a warning, with the order as prescribed (30 mg x 4 a day)
    # for the card's arithmetic, and the draft said once among the evidence.
    assert f.tier is Tier.WARNING and f.outcome == "candidate"
    assert f.number("totalDailyDoseMg").value == 120  # type: ignore[union-attr]
    [row] = [e for e in f.evidence if e.value_label == "draft-order-dose"]
    assert ("dose", "30") in row.words and ("per_day", "4") in row.words
    refs = [e.reference for e in f.evidence if e.value_label != "draft-order-dose"]
    assert refs.count("MedicationRequest/draft") == 1
    no_draft = record(conditions=(condition(CP),), medications=(STOPPED_DROWSY,))
    assert evaluate(["candidacy-on-order"], no_draft, NOW, settings, terms) == []


def test_intolerance_from_allergy_record_and_text_fallback(settings: Settings,
                                                           terms: Terminology) -> None:
    intolerance = AllergyFact("AllergyIntolerance/i", Concept(text="tizanidine"), "intolerance",
                              "low", "active", "confirmed")
    cp_text = condition(Concept(text="Spastic quadriplegic cerebral palsy"))
    chart = indexed(record(conditions=(cp_text,), allergies=(intolerance,)), terms)
    assert candidacy(chart, NOW, settings.candidacy)
