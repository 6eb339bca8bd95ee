"""A dose charted in mg, in mL of a solution with its strength, or as tablets with their
strength is the same dose: the same daily dose, the same cards."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from cds_service.config import Settings
from cds_service.fhir.record import (
    Concept,
    Dosage,
    MedicationFact,
    PatientInfo,
    PatientRecord,
    Quantity,
    Ratio,
    Timing,
)
from cds_service.rules import evaluate
from cds_service.rules.dose import daily_dose_mg, dose_conversion
from cds_service.rules.finding import Finding
from cds_service.terminology import Terminology
from tests.rules.charts import CP, NOW, SNOMED, at, coded, condition

SETTINGS = Settings()
TERMS = Terminology.load(SETTINGS)
ORAL = coded(SNOMED, "26643006", "Oral route")
AGENTS = {"baclofen": "Baclofen", "tizanidine": "Tizanidine", "dantrolene": "Dantrolene"}


def _fact(agent: str, dose: Quantity, per_day: int, status: str, form: str,
          strength: Ratio | None) -> MedicationFact:
    return MedicationFact(
        ref="MedicationRequest/m1", kind="MedicationRequest", status=status,
        medication=Concept(text=f"{AGENTS[agent]} {form}"), intent="order",
        dosages=(Dosage(route=ORAL, dose=dose,
                        timing=Timing(frequency=per_day, period=1, period_unit="d")),),
        strength=strength, authored=at("2025-01-01"))


def _three_ways(agent: str, dose_mg: float, per_day: int, status: str, mg_per_ml: float,
                per_ml: float, tablets: float) -> tuple[MedicationFact, ...]:
    """One regimen charted in mg, in mL of a solution and as tablets."""
    in_mg = _fact(agent, Quantity(dose_mg, "mg", "mg"), per_day, status, "oral", None)
    solution = Ratio(Quantity(mg_per_ml * per_ml, "mg", "mg"), Quantity(per_ml, "mL", "mL"))
    in_ml = _fact(agent, Quantity(dose_mg / mg_per_ml, "mL", "mL"), per_day, status,
                  "oral solution", solution)
    tablet = Ratio(Quantity(dose_mg / tablets, "mg", "mg"), Quantity(1, "tablet", "{tbl}"))
    in_tablets = _fact(agent, Quantity(tablets, "tablet", "{tbl}"), per_day, status,
                       "tablet", tablet)
    return in_mg, in_ml, in_tablets


def _cards(fact: MedicationFact, age: int) -> list[tuple[object, ...]]:
    record = PatientRecord(
        patient=PatientInfo("Patient/p1", date(NOW.year - age, 1, 1)),
        conditions=(condition(CP),), medications=(fact,))
    return [_key(f) for f in evaluate(["candidacy"], record, NOW, SETTINGS, TERMS)]


def _key(f: Finding) -> tuple[object, ...]:
    return (f.rule, f.outcome, f.tier, f.missing, f.notes,
            tuple((n.key, n.value) for n in f.numbers))


@hsettings(max_examples=150, deadline=None)
@given(agent=st.sampled_from(sorted(AGENTS)),
       dose_mg=st.sampled_from([2, 2.5, 4, 5, 8, 10, 15, 20, 25, 50, 100]),
       per_day=st.integers(1, 4),
       status=st.sampled_from(["active", "completed", "stopped"]),
       mg_per_ml=st.sampled_from([0.05, 0.5, 1, 2, 5, 10]),
       per_ml=st.sampled_from([1, 5]),
       tablets=st.sampled_from([0.5, 1, 2, 4]),
       age=st.sampled_from([6, 10, 30]))
def test_a_dose_in_mg_ml_or_tablets_gives_the_same_daily_dose_and_cards(
        agent: str, dose_mg: float, per_day: int, status: str, mg_per_ml: float,
        per_ml: float, tablets: float, age: int) -> None:
    in_mg, in_ml, in_tablets = _three_ways(agent, dose_mg, per_day, status, mg_per_ml,
                                           per_ml, tablets)
    daily = daily_dose_mg(in_mg, TERMS)
    assert daily == pytest.approx(dose_mg * per_day)
    assert daily_dose_mg(in_ml, TERMS) == pytest.approx(daily)
    assert daily_dose_mg(in_tablets, TERMS) == pytest.approx(daily)
    cards = _cards(in_mg, age)
    assert _cards(in_ml, age) == cards
    assert _cards(in_tablets, age) == cards


def test_the_card_shows_the_conversion() -> None:
    in_mg, in_ml, in_tablets = _three_ways("baclofen", 10, 4, "active", 1, 5, 2)
    assert dose_conversion(in_mg, TERMS) is None
    shown_ml = dose_conversion(in_ml, TERMS)
    shown_tablets = dose_conversion(in_tablets, TERMS)
    times = "\N{MULTIPLICATION SIGN}"
    assert shown_ml is not None and shown_ml.shown() == f"10 mL {times} 1 mg/mL = 10 mg"
    assert shown_tablets is not None
    assert shown_tablets.shown() == f"2 tablets {times} 5 mg/tablet = 10 mg"


def test_the_product_strength_table_converts_tablets_charted_by_code_only() -> None:
    fact = MedicationFact(
        "MedicationRequest/m1", "MedicationRequest", "active",
        Concept(coded("http://www.nlm.nih.gov/research/umls/rxnorm", "197392").codings),
        dosages=(Dosage(dose=Quantity(1, "tablet", "{tbl}"),
                        timing=Timing(frequency=3, period=1, period_unit="d")),))
    assert daily_dose_mg(fact, TERMS) == 60


def test_a_volume_without_a_strength_in_ml_is_not_guessed() -> None:
    fact = _fact("baclofen", Quantity(10, "mL", "mL"), 3, "active", "10 mg tablet", None)
    assert daily_dose_mg(fact, TERMS) is None


def test_as_needed_lines_are_left_out_of_the_daily_dose() -> None:
    """'20 mg QID + 20 mg as needed' is 80 mg/day, on any hook."""
    scheduled, _, _ = _three_ways("baclofen", 20, 4, "active", 1, 1, 1)
    prn = Dosage(route=ORAL, dose=Quantity(20, "mg", "mg"), as_needed=True,
                 timing=Timing(frequency=1, period=1, period_unit="d"))
    both = MedicationFact(scheduled.ref, scheduled.kind, scheduled.status,
                          scheduled.medication, dosages=(*scheduled.dosages, prn))
    assert daily_dose_mg(both, TERMS) == 80
