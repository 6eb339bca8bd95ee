"""Daily dose from dosage instructions: the arithmetic every rule shares."""

from __future__ import annotations

import pytest

from cds_service.config import Settings
from cds_service.fhir.record import Concept, Dosage, MedicationFact, Quantity, Ratio, Timing
from cds_service.rules.dose import (
    administrations_per_day,
    daily_dose_mcg,
    daily_dose_mg,
    duration_hours,
)
from cds_service.terminology import Terminology
from tests.rules.charts import timing_code

# The terminology's unit and timing table (tables/units.yaml), as the service loads it.
TERMS = Terminology.load(Settings())
UNITS = TERMS.units


def med(*dosages: Dosage, text: str = "baclofen", strength: Ratio | None = None
        ) -> MedicationFact:
    return MedicationFact("MedicationRequest/1", "MedicationRequest", "active",
                          Concept(text=text), dosages=dosages, strength=strength)


@pytest.mark.parametrize(("code", "per_day"), [
    ("BID", 2), ("TID", 3), ("QID", 4), ("QD", 1), ("QOD", 0.5), ("Q4H", 6), ("Q6H", 4),
    ("Q8H", 3), ("Q12H", 2),
])
def test_timing_codes_give_administrations_per_day(code: str, per_day: float) -> None:
    assert administrations_per_day(timing_code(code), UNITS) == per_day


def test_frequency_over_period_in_hours_and_days() -> None:
    assert administrations_per_day(Timing(frequency=1, period=8, period_unit="h"), UNITS) == 3
    assert administrations_per_day(Timing(frequency=3, period=1, period_unit="d"), UNITS) == 3
    assert administrations_per_day(Timing(frequency=1, period=1, period_unit="wk"), UNITS) == 1 / 7


def test_baclofen_20_mg_qid_is_80_mg_a_day() -> None:
    dosage = Dosage(dose=Quantity(20, "mg"), timing=Timing(frequency=4, period=1, period_unit="d"))
    assert daily_dose_mg(med(dosage), TERMS) == 80


def test_units_are_converted_mcg_and_g() -> None:
    mcg = Dosage(dose=Quantity(500, "mcg"), timing=timing_code("BID"))
    grams = Dosage(dose=Quantity(0.1, "g"), timing=timing_code("QD"))
    assert daily_dose_mg(med(mcg), TERMS) == 1.0
    assert daily_dose_mg(med(grams), TERMS) == 100.0


@pytest.mark.parametrize(("rate", "mcg_day"), [
    (Quantity(150, "mcg/day", "ug/d"), 150.0),
    (Quantity(0.5, "mg/day", "mg/d"), 500.0),
    (Quantity(10, "mcg/h", "ug/h"), 240.0),
    (Quantity(0.01, "mg/h", "mg/h"), 240.0),
])
def test_rate_quantities(rate: Quantity, mcg_day: float) -> None:
    assert daily_dose_mcg(med(Dosage(rate=rate)), TERMS) == pytest.approx(mcg_day)


def test_rate_ratio_per_day() -> None:
    ratio = Ratio(Quantity(300, "mcg", "ug"), Quantity(1, "d", "d"))
    assert daily_dose_mcg(med(Dosage(rate_ratio=ratio)), TERMS) == 300


def test_tablets_use_the_strength() -> None:
    dosage = Dosage(dose=Quantity(2, "tablet", "{tbl}"), timing=timing_code("TID"))
    assert daily_dose_mg(med(dosage, text="baclofen 10 mg oral tablet"), TERMS) == 60
    strength = Ratio(Quantity(20, "mg"), Quantity(1, "tablet"))
    assert daily_dose_mg(med(dosage, text="baclofen", strength=strength), TERMS) == 120


def test_two_dosage_lines_are_added() -> None:
    morning = Dosage(dose=Quantity(10, "mg"), timing=timing_code("QD"))
    night = Dosage(dose=Quantity(20, "mg"), timing=timing_code("QD"))
    assert daily_dose_mg(med(morning, night), TERMS) == 30


@pytest.mark.parametrize("dosage", [
    Dosage(text="take as directed"),
    Dosage(dose=Quantity(10, "mg")),  # no timing
    Dosage(timing=timing_code("TID")),  # no dose
    Dosage(dose=Quantity(1, "tablet"), timing=timing_code("TID")),  # no strength anywhere
    Dosage(dose=Quantity(10, "mL"), timing=timing_code("TID")),  # volume, no concentration
    Dosage(rate=Quantity(5, "drops/min")),
])
def test_uncomputable_is_none_never_a_guess(dosage: Dosage) -> None:
    assert daily_dose_mg(med(dosage), TERMS) is None


def test_one_unreadable_line_makes_the_total_unknown() -> None:
    good = Dosage(dose=Quantity(10, "mg"), timing=timing_code("QD"))
    assert daily_dose_mg(med(good, Dosage(text="extra as needed")), TERMS) is None


@pytest.mark.parametrize(("quantity", "hours"), [
    (Quantity(6, None, None), 6.0),  # the local code's unit: hours
    (Quantity(6, "h", "h"), 6.0),
    (Quantity(90, "minutes", None), 1.5),
    (Quantity(1, "d", "d"), 24.0),
    (Quantity(2, "fortnights", None), None),  # not guessed
])
def test_an_effect_duration_in_any_time_unit(quantity: Quantity, hours: float | None) -> None:
    found = duration_hours(quantity, UNITS)
    assert found == (pytest.approx(hours) if hours is not None else None)
