"""Daily dose from R4 dosage instructions: the one shared helper, used by every rule.

Returns None whenever the arithmetic cannot be done from what is written: a rule must then say
the dose is unknown (data quality), never guess. Units and timing codes are the terminology's
table (tables/units.yaml).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cds_service.fhir.record import Dosage, MedicationFact, Quantity, Timing
from cds_service.rules.strength import (
    Conversion,
    Strength,
    convert,
    dose_mcg,
    mass_mcg,
    strength_of,
    unit_key,
)
from cds_service.terminology import Terminology, Units


def _time_days(q: Quantity | None, units: Units) -> float | None:
    if q is None:
        return None
    key = unit_key(q)
    days = units.time_days.get(key) if key else None
    if days is None:
        return None
    return (q.value if q.value is not None else 1.0) * days


def duration_hours(q: Quantity | None, units: Units) -> float | None:
    """An effect duration in hours (no unit: the local code's unit, hours); a unit the time
    table does not know is not guessed."""
    if q is None or q.value is None:
        return None
    if not (q.code or q.unit):
        return q.value
    days = _time_days(q, units)
    return None if days is None else days * 24


def rate_mcg_per_day(q: Quantity | None, units: Units, unitless_is_mcg_per_day: bool = False
                     ) -> float | None:
    """A rate written as one unit string: "mcg/day", "ug/d", "mg/h", "mcg/hr". With no unit
    at all, ``unitless_is_mcg_per_day`` reads it in mcg/day (a local code's own unit)."""
    if q is None or q.value is None:
        return None
    if unitless_is_mcg_per_day and not (q.code or q.unit):
        return q.value
    for raw in (q.code, q.unit):
        if not raw or "/" not in raw:
            continue
        mass, _, per = raw.strip().lower().partition("/")
        factor = units.mass_mcg.get(mass.strip())
        days = units.time_days.get(per.strip())
        if factor is not None and days is not None:
            return q.value * factor / days
    return None


def administrations_per_day(timing: Timing | None, units: Units) -> float | None:
    if timing is None:
        return None
    if timing.period is not None and timing.period_unit:
        unit_days = units.time_days.get(timing.period_unit.strip().lower())
        if unit_days is None or timing.period <= 0:
            return None
        # R4: no frequency stated means once per period.
        frequency = timing.frequency if timing.frequency is not None else 1
        return frequency / (timing.period * unit_days)
    if timing.code is not None:
        for coding in timing.code.codings:
            if coding.code and coding.code.strip().upper() in units.timing_per_day:
                return units.timing_per_day[coding.code.strip().upper()]
        text = (timing.code.text or "").strip().upper()
        if text in units.timing_per_day:
            return units.timing_per_day[text]
    if timing.time_of_day:
        return float(len(timing.time_of_day))
    if timing.when:
        return float(len(timing.when))
    if timing.frequency is not None and timing.period is None:
        return None
    return None


def dosage_mcg_per_day(dosage: Dosage, units: Units, strength: Strength | None = None
                       ) -> float | None:
    rate = rate_mcg_per_day(dosage.rate, units)
    if rate is not None:
        return rate
    if dosage.rate_ratio is not None:
        amount = mass_mcg(dosage.rate_ratio.numerator, units)
        days = _time_days(dosage.rate_ratio.denominator, units)
        if amount is not None and days:
            return amount / days
    if dosage.rate is not None:
        return None  # a rate we cannot read: do not fall back to dose x frequency silently
    per_admin = dose_mcg(dosage.dose, units, strength)
    per_day = administrations_per_day(dosage.timing, units)
    if per_admin is None or per_day is None:
        return None
    return per_admin * per_day


def total_mcg_per_day(dosages: Iterable[Dosage], units: Units,
                      strength: Strength | None = None) -> float | None:
    """Sum over dosage lines (10 mg morning + 20 mg night); None if any line is unreadable."""
    total = 0.0
    seen = False
    for dosage in dosages:
        value = dosage_mcg_per_day(dosage, units, strength)
        if value is None:
            return None
        total += value
        seen = True
    return total if seen else None


def daily_dose_mcg(fact: MedicationFact, terms: Terminology) -> float | None:
    """The order's daily dose; a dose in mL or tablets is converted with the product
    strength (strength.strength_of: the one path); as-needed lines are not a dose taken and
    are left out (rule book: itb-candidacy, decisions)."""
    scheduled = [d for d in fact.dosages if not d.as_needed]
    return total_mcg_per_day(scheduled, terms.units, strength_of(fact, terms))


def daily_dose_mg(fact: MedicationFact, terms: Terminology) -> float | None:
    mcg = daily_dose_mcg(fact, terms)
    return None if mcg is None else mcg / 1000.0


def dose_conversion(fact: MedicationFact, terms: Terminology) -> Conversion | None:
    """How the first dose line charted as a volume or a count became a mass, for the card."""
    strength = strength_of(fact, terms)
    for dosage in fact.dosages:
        found = convert(dosage.dose, terms.units, strength)
        if found is not None:
            return found
    return None


@dataclass(frozen=True, slots=True)
class Regimen:
    """One dose taken a number of times a day: what a prescriber writes as "20 mg TID"."""

    dose_mg: float
    per_day: float


def regimen_mg(fact: MedicationFact, terms: Terminology) -> Regimen | None:
    """The order as dose x times a day, when it is one scheduled dosage line with a readable
    dose; None otherwise (several lines, a rate, a range: the card then gives the daily dose
    alone)."""
    if len(fact.dosages) != 1 or fact.dosages[0].as_needed or fact.dosages[0].rate:
        return None
    dosage = fact.dosages[0]
    per_admin = dose_mcg(dosage.dose, terms.units, strength_of(fact, terms))
    per_day = administrations_per_day(dosage.timing, terms.units)
    if per_admin is None or per_day is None:
        return None
    return Regimen(per_admin / 1000.0, per_day)


@dataclass(frozen=True, slots=True)
class DoseBounds:
    """A daily dose known only between two bounds (a doseRange); None: that end is unknown."""

    low_mg: float | None
    high_mg: float | None


def _line_bounds(dosage: Dosage, units: Units, strength: Strength | None
                 ) -> tuple[float | None, float | None] | None:
    exact = dosage_mcg_per_day(dosage, units, strength)
    if exact is not None:
        return exact, exact
    if dosage.dose is not None or dosage.rate is not None or (
            dosage.dose_low is None and dosage.dose_high is None):
        return None
    per_day = administrations_per_day(dosage.timing, units)
    if per_day is None:
        return None
    low = dose_mcg(dosage.dose_low, units, strength)
    high = dose_mcg(dosage.dose_high, units, strength)
    return (None if low is None else low * per_day, None if high is None else high * per_day)


def daily_dose_bounds_mg(fact: MedicationFact, terms: Terminology) -> DoseBounds | None:
    """Bounds of the daily dose when a line gives a doseRange; None when even those are not
    computable. An exact dose gives equal bounds; as-needed lines are left out, as in
    daily_dose_mcg."""
    units, strength = terms.units, strength_of(fact, terms)
    low: float | None = 0.0
    high: float | None = 0.0
    seen = False
    for dosage in (d for d in fact.dosages if not d.as_needed):
        line = _line_bounds(dosage, units, strength)
        if line is None:
            return None
        seen = True
        low = None if low is None or line[0] is None else low + line[0]
        high = None if high is None or line[1] is None else high + line[1]
    if not seen or (low is None and high is None):
        return None
    return DoseBounds(None if low is None else low / 1000.0,
                      None if high is None else high / 1000.0)


def reaches_maximum(bounds: DoseBounds, max_mg: float) -> bool | None:
    """True when even the low end reaches the maximum, False when even the high end stays
    below it, None when the range straddles it (or the deciding end is unknown): no guess."""
    if bounds.low_mg is not None and bounds.low_mg >= max_mg - 1e-9:
        return True
    if bounds.high_mg is not None and bounds.high_mg < max_mg - 1e-9:
        return False
    return None
