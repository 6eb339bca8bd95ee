"""Screening-trial outcome: response, Modified Ashworth, Penn, undocumented, overdose."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pytest

from cds_service.config import Settings, TrialSettings
from cds_service.fhir.record import (
    AdverseEventFact,
    Coding,
    Concept,
    Dosage,
    MedicationFact,
    ObservationFact,
    Quantity,
    Ratio,
)
from cds_service.rules.finding import Tier
from cds_service.rules.trial import trial_outcome
from cds_service.rules.trial_scores import mas_mean_drop, mas_score
from cds_service.terminology import Terminology
from tests.rules.charts import (
    CP,
    LOCAL,
    RXNORM,
    SNOMED,
    Period,
    at,
    coded,
    condition,
    indexed,
    observation,
    procedure,
    record,
)

TRIAL = procedure(LOCAL, "itb-screening-trial", "2026-06-10T08:00", "Procedure/t",
                  notes=("Baclofen 50 mcg intrathecal bolus",))


def mas(value: str, when: str, site: str, ref: str) -> object:
    return observation("modified-ashworth-scale", Concept(text=value), when, ref, body_site=site)


def test_mas_one_plus_counts_as_one_and_a_half() -> None:
    assert mas_score(Concept(text="1+")) == 1.5
    assert mas_score("1+") == 1.5 and mas_score(3) == 3.0 and mas_score("5") is None


def test_mas_mean_drop_over_matched_sites(terms: Terminology) -> None:
    obs = [mas("3", "2026-06-10T07:00", "left knee", "Observation/1"),
           mas("1+", "2026-06-10T07:00", "right knee", "Observation/2"),
           mas("2", "2026-06-10T12:00", "left knee", "Observation/3"),
           mas("1", "2026-06-10T12:00", "right knee", "Observation/4"),
           mas("0", "2026-06-10T12:00", "elbow", "Observation/5")]  # unmatched site
    assert mas_mean_drop(obs, at("2026-06-10T08:00"),  # type: ignore[arg-type]
                         TrialSettings(), terms) == (0.75, 2)


def test_one_coded_site_on_both_sides_is_two_sites(terms: Terminology) -> None:
    """The same site code with "Left ..." and "Right ..." (or a laterality coding) is two
    sites: the left drop is not compared with the right baseline."""
    knee = Coding("http://snomed.info/sct", "6757004", "Knee region structure")
    left = Concept((knee,), "Left knee flexors")
    right = Concept((knee, Coding("http://snomed.info/sct", "24028007", "Right")))
    def scored(value: str, when: str, site: Concept, ref: str) -> ObservationFact:
        return replace(cast(ObservationFact, mas(value, when, "x", ref)), body_site=site)

    obs = [scored("3", "2026-06-10T07:00", left, "Observation/1"),
           scored("1", "2026-06-10T07:00", right, "Observation/2"),
           scored("1", "2026-06-10T12:00", left, "Observation/3"),
           scored("1", "2026-06-10T12:00", right, "Observation/4")]
    # Left 3 -> 1 (drop 2), right 1 -> 1 (drop 0): mean 1 over two sites. Read as one
    # site, the left's later score against the right's baseline would give another answer.
    assert mas_mean_drop(obs, at("2026-06-10T08:00"), TrialSettings(), terms) == (1.0, 2)


@pytest.mark.parametrize(("post", "outcome"), [("2", "positive"), ("3", "negative-next-step")])
def test_mas_decides_positive_or_negative(post: str, outcome: str, settings: Settings,
                                          terms: Terminology) -> None:
    rec = record(conditions=(condition(CP),), procedures=(TRIAL,), observations=(
        mas("3", "2026-06-10T07:30", "knee", "Observation/1"),
        mas(post, "2026-06-10T12:00", "knee", "Observation/2")))
    [f] = trial_outcome(indexed(rec, terms), at("2026-06-11"), settings.trial)
    assert f.outcome == outcome
    if outcome == "negative-next-step":
        assert f.number("nextDoseMcg").value == 75  # type: ignore[union-attr]


def test_recorded_response_wins(settings: Settings, terms: Terminology) -> None:
    response = observation("itb-trial-response", coded(LOCAL, "positive"), "2026-06-10T13:00",
                          "Observation/r", part_of=("Procedure/t",))
    rec = record(procedures=(TRIAL,), observations=(
        response, mas("3", "2026-06-10T07:30", "knee", "Observation/1"),
        mas("3", "2026-06-10T12:00", "knee", "Observation/2")))
    [f] = trial_outcome(indexed(rec, terms), at("2026-06-11"), settings.trial)
    assert (f.outcome, f.tier) == ("positive", Tier.INFO)
    assert f.number("startingDoseTwiceMcgPerDay").value == 100  # type: ignore[union-attr]


def test_penn_drop_of_one_is_positive(settings: Settings, terms: Terminology) -> None:
    rec = record(procedures=(TRIAL,), observations=(
        observation("penn-spasm-frequency", 3, "2026-06-10T07:00", "Observation/p1"),
        observation("penn-spasm-frequency", 2, "2026-06-10T11:00", "Observation/p2")))
    [f] = trial_outcome(indexed(rec, terms), at("2026-06-11"), settings.trial)
    assert f.outcome == "positive"


def test_negative_at_100_mcg_is_final(settings: Settings, terms: Terminology) -> None:
    trial = procedure(LOCAL, "itb-screening-trial", "2026-06-10T08:00", "Procedure/t",
                      notes=("baclofen 100 mcg",))
    response = observation("itb-trial-response", coded(LOCAL, "negative"), "2026-06-10T14:00",
                          "Observation/r")
    chart = indexed(record(procedures=(trial,), observations=(response,)), terms)
    [f] = trial_outcome(chart, at("2026-06-11"), settings.trial)
    assert (f.outcome, f.tier, f.suggest) == ("negative-final", Tier.WARNING, False)


def test_undocumented_only_after_eight_hours(settings: Settings, terms: Terminology) -> None:
    rec = record(procedures=(TRIAL,))
    assert trial_outcome(indexed(rec, terms), at("2026-06-10T15:00"), settings.trial) == []
    [f] = trial_outcome(indexed(rec, terms), at("2026-06-10T16:00"), settings.trial)
    assert (f.outcome, f.tier) == ("undocumented", Tier.WARNING)


def test_old_trial_outside_lookback_is_ignored(settings: Settings, terms: Terminology) -> None:
    chart = indexed(record(procedures=(TRIAL,)), terms)
    assert trial_outcome(chart, at("2026-08-01"), settings.trial) == []


def test_overdose_signs_add_a_warning_whatever_the_outcome(settings: Settings,
                                                            terms: Terminology) -> None:
    event = AdverseEventFact("AdverseEvent/e", Concept(text="Respiratory depression"),
                             date=at("2026-06-10T10:00"))
    response = observation("itb-trial-response", coded(LOCAL, "positive"), "2026-06-10T13:00",
                          "Observation/r")
    rec = record(procedures=(TRIAL,), observations=(response,), adverse_events=(event,))
    outcome, adverse = trial_outcome(indexed(rec, terms), at("2026-06-11"), settings.trial)
    assert (outcome.outcome, outcome.tier) == ("positive", Tier.INFO)
    assert (adverse.outcome, adverse.tier, adverse.suggest) == ("adverse", Tier.WARNING, False)
    assert "result-positive" in adverse.notes


def test_epidural_steroid_injection_is_not_a_trial(settings: Settings, terms: Terminology) -> None:
    esi = procedure("http://www.ama-assn.org/go/cpt", "62323", "2026-06-10T08:00",
                    "Procedure/esi", notes=("triamcinolone 80 mg",))
    chart = indexed(record(procedures=(esi,)), terms)
    assert trial_outcome(chart, at("2026-06-11"), settings.trial) == []


def test_trial_thresholds_come_from_settings(terms: Terminology) -> None:
    # A service configured with a post window ending at 3 h no longer sees the 12:00 score
    # (4 h after the bolus), and one whose last labeled step is 50 mcg calls the trial final.
    rec = record(conditions=(condition(CP),), procedures=(TRIAL,), observations=(
        mas("3", "2026-06-10T07:30", "knee", "Observation/1"),
        mas("3", "2026-06-10T12:00", "knee", "Observation/2")))
    narrow = Settings(trial={"post_to_hours": 3.0})
    [f] = trial_outcome(indexed(rec, terms), at("2026-06-11"), narrow.trial)
    assert f.outcome == "undocumented"
    short_ladder = Settings(trial={"labeled_steps_mcg": [25.0, 50.0]})
    [f] = trial_outcome(indexed(rec, terms), at("2026-06-11"), short_ladder.trial)
    assert (f.outcome, f.tier) == ("negative-final", Tier.WARNING)


def test_a_procedure_and_its_bolus_are_one_trial_within_the_configured_hours(
        settings: Settings, terms: Terminology) -> None:
    # The bolus is charted 13 h after the procedure: two trials by default (12 h), the later
    # one judged alone; one trial when the service allows 14 h.
    bolus = MedicationFact(
        "MedicationAdministration/ma", "MedicationAdministration", "completed",
        coded(RXNORM, "1047437", text="Baclofen intrathecal 50 mcg/mL"),
        dosages=(Dosage(route=coded(SNOMED, "72607000", "Intrathecal"),
                        dose=Quantity(75, "mcg", "ug")),),
        effective=Period(at("2026-06-10T21:00"), None))
    chart = indexed(record(procedures=(TRIAL,), medications=(bolus,)), terms)
    [apart] = trial_outcome(chart, at("2026-06-12"), settings.trial)
    assert apart.number("trialDate").value == "2026-06-10"  # type: ignore[union-attr]
    assert [e.reference for e in apart.evidence] == ["MedicationAdministration/ma"]
    wide = settings.trial.model_copy(update={"same_trial_hours": 14.0})
    [together] = trial_outcome(chart, at("2026-06-12"), wide)
    assert [e.reference for e in together.evidence] == ["Procedure/t",
                                                         "MedicationAdministration/ma"]
    assert together.number("trialDoseMcg").value == 75  # type: ignore[union-attr]


def test_a_bolus_charted_in_ml_is_converted_and_shown_in_micrograms(
        settings: Settings, terms: Terminology) -> None:
    """1.5 mL of an ampoule labelled 0.05 mg/mL is 75 mcg, and the card says it in mcg (an
    intrathecal dose written as a decimal of a milligram is a dosing hazard)."""
    bolus = MedicationFact(
        "MedicationAdministration/ma", "MedicationAdministration", "completed",
        coded(RXNORM, "1047437", text="Baclofen intrathecal"),
        dosages=(Dosage(route=coded(SNOMED, "72607000", "Intrathecal"),
                        dose=Quantity(1.5, "mL", "mL")),),
        effective=Period(at("2026-06-10T08:00"), None),
        strength=Ratio(Quantity(0.05, "mg", "mg"), Quantity(1, "mL", "mL")))
    chart = indexed(record(procedures=(TRIAL,), medications=(bolus,)), terms)
    [f] = trial_outcome(chart, at("2026-06-12"), settings.trial)
    assert f.number("trialDoseMcg").value == 75  # type: ignore[union-attr]
    [row] = [e for e in f.evidence if e.reference == "MedicationAdministration/ma"]
    assert row.value == "1.5 mL \N{MULTIPLICATION SIGN} 50 mcg/mL = 75 mcg"
