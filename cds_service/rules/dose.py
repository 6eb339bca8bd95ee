"""Daily dose from R4 dosage instructions: the one shared helper, used by every rule.

Returns None whenever the arithmetic cannot be done from what is written: a rule must then say
the dose is unknown (data quality), never guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cds_service.fhir.record import Concept, Dosage, MedicationFact, Quantity, Timing

# Mass units to micrograms.
_MASS_MCG: dict[str, float] = {
    "mcg": 1.0, "ug": 1.0, "µg": 1.0, "μg": 1.0, "microgram": 1.0, "micrograms": 1.0,
    "mg": 1000.0, "milligram": 1000.0, "milligrams": 1000.0,
    "g": 1_000_000.0, "gram": 1_000_000.0, "grams": 1_000_000.0,
}
# Time units to days (UCUM codes and common spellings).
_TIME_DAYS: dict[str, float] = {
    "s": 1 / 86400, "sec": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "hr": 1 / 24,
    "hour": 1 / 24, "d": 1.0, "day": 1.0, "24h": 1.0, "24 h": 1.0, "wk": 7.0, "week": 7.0,
    "mo": 30.0, "month": 30.0, "a": 365.25, "year": 365.25,
}
# HL7 v3 GTSAbbreviation timing codes: administrations per day.
_TIMING_CODES: dict[str, float] = {
    "QD": 1, "QOD": 0.5, "BID": 2, "TID": 3, "QID": 4, "AM": 1, "PM": 1, "BED": 1,
    "Q1H": 24, "Q2H": 12, "Q3H": 8, "Q4H": 6, "Q6H": 4, "Q8H": 3, "Q12H": 2, "Q24H": 1,
    "WK": 1 / 7, "MO": 1 / 30,
}
# Units meaning "one dose form" (a tablet); converted with the product strength.
_UNIT_DOSE_FORMS = {"tablet", "tablets", "tab", "tabs", "{tbl}", "{tablet}", "capsule",
                    "capsules", "cap", "{cap}", "{capsule}"}
_STRENGTH_IN_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|mcg|microgram|micrograms|milligram)\b")


def _unit_key(q: Quantity) -> str | None:
    raw = q.code or q.unit
    return raw.strip().lower() if raw else None


def mass_mcg(q: Quantity | None) -> float | None:
    if q is None or q.value is None:
        return None
    for raw in (q.code, q.unit):
        factor = _MASS_MCG.get(raw.strip().lower()) if raw else None
        if factor is not None:
            return q.value * factor
    return None


def _time_days(q: Quantity | None) -> float | None:
    if q is None:
        return None
    key = _unit_key(q)
    days = _TIME_DAYS.get(key) if key else None
    if days is None:
        return None
    return (q.value if q.value is not None else 1.0) * days


def rate_mcg_per_day(q: Quantity | None) -> float | None:
    """A rate written as one unit string: "mcg/day", "ug/d", "mg/h", "mcg/hr"."""
    if q is None or q.value is None:
        return None
    for raw in (q.code, q.unit):
        if not raw or "/" not in raw:
            continue
        mass, _, per = raw.strip().lower().partition("/")
        factor = _MASS_MCG.get(mass.strip())
        days = _TIME_DAYS.get(per.strip())
        if factor is not None and days is not None:
            return q.value * factor / days
    return None


def administrations_per_day(timing: Timing | None) -> float | None:
    if timing is None:
        return None
    if timing.period is not None and timing.period_unit:
        unit_days = _TIME_DAYS.get(timing.period_unit.strip().lower())
        if unit_days is None or timing.period <= 0:
            return None
        # R4: no frequency stated means once per period.
        frequency = timing.frequency if timing.frequency is not None else 1
        return frequency / (timing.period * unit_days)
    if timing.code is not None:
        for coding in timing.code.codings:
            if coding.code and coding.code.strip().upper() in _TIMING_CODES:
                return _TIMING_CODES[coding.code.strip().upper()]
        text = (timing.code.text or "").strip().upper()
        if text in _TIMING_CODES:
            return _TIMING_CODES[text]
    if timing.time_of_day:
        return float(len(timing.time_of_day))
    if timing.when:
        return float(len(timing.when))
    if timing.frequency is not None and timing.period is None:
        return None
    return None


def _strength_mcg_per_form(strength_mcg: float | None, medication: Concept | None) -> float | None:
    if strength_mcg is not None:
        return strength_mcg
    if medication is None:
        return None
    found = {(float(v), u) for v, u in _STRENGTH_IN_TEXT.findall(medication.words())}
    if len(found) != 1:
        return None  # none, or a combination product: do not guess which strength
    value, unit = found.pop()
    return value * _MASS_MCG[unit]


def dose_mcg(q: Quantity | None, per_form_mcg: float | None = None,
             medication: Concept | None = None) -> float | None:
    """One administration in mcg; "1 tablet" needs the product strength."""
    direct = mass_mcg(q)
    if direct is not None:
        return direct
    if q is None or q.value is None:
        return None
    key = _unit_key(q)
    if key in _UNIT_DOSE_FORMS:
        strength = _strength_mcg_per_form(per_form_mcg, medication)
        return q.value * strength if strength is not None else None
    return None


def dosage_mcg_per_day(dosage: Dosage, per_form_mcg: float | None = None,
                       medication: Concept | None = None) -> float | None:
    rate = rate_mcg_per_day(dosage.rate)
    if rate is not None:
        return rate
    if dosage.rate_ratio is not None:
        amount = mass_mcg(dosage.rate_ratio.numerator)
        days = _time_days(dosage.rate_ratio.denominator)
        if amount is not None and days:
            return amount / days
    if dosage.rate is not None:
        return None  # a rate we cannot read: do not fall back to dose x frequency silently
    per_admin = dose_mcg(dosage.dose, per_form_mcg, medication)
    per_day = administrations_per_day(dosage.timing)
    if per_admin is None or per_day is None:
        return None
    return per_admin * per_day


def total_mcg_per_day(dosages: Iterable[Dosage], per_form_mcg: float | None = None,
                      medication: Concept | None = None) -> float | None:
    """Sum over dosage lines (10 mg morning + 20 mg night); None if any line is unreadable."""
    total = 0.0
    seen = False
    for dosage in dosages:
        value = dosage_mcg_per_day(dosage, per_form_mcg, medication)
        if value is None:
            return None
        total += value
        seen = True
    return total if seen else None


def daily_dose_mcg(fact: MedicationFact, per_form_mcg: float | None = None) -> float | None:
    if per_form_mcg is None and fact.strength is not None:
        num = mass_mcg(fact.strength.numerator)
        den = fact.strength.denominator
        if num is not None and (den is None or den.value in (None, 1.0)):
            per_form_mcg = num
    return total_mcg_per_day(fact.dosages, per_form_mcg, fact.medication)


def daily_dose_mg(fact: MedicationFact, per_form_mcg: float | None = None) -> float | None:
    mcg = daily_dose_mcg(fact, per_form_mcg)
    return None if mcg is None else mcg / 1000.0


@dataclass(frozen=True, slots=True)
class DoseBounds:
    """A daily dose known only between two bounds (a doseRange); None: that end is unknown."""

    low_mg: float | None
    high_mg: float | None


def _line_bounds(dosage: Dosage, per_form_mcg: float | None, medication: Concept | None
                 ) -> tuple[float | None, float | None] | None:
    exact = dosage_mcg_per_day(dosage, per_form_mcg, medication)
    if exact is not None:
        return exact, exact
    if dosage.dose is not None or dosage.rate is not None or (
            dosage.dose_low is None and dosage.dose_high is None):
        return None
    per_day = administrations_per_day(dosage.timing)
    if per_day is None:
        return None
    low = dose_mcg(dosage.dose_low, per_form_mcg, medication)
    high = dose_mcg(dosage.dose_high, per_form_mcg, medication)
    return (None if low is None else low * per_day, None if high is None else high * per_day)


def daily_dose_bounds_mg(fact: MedicationFact) -> DoseBounds | None:
    """Bounds of the daily dose when a line gives a doseRange; None when even those are not
    computable. An exact dose gives equal bounds."""
    per_form_mcg = None
    if fact.strength is not None:
        num = mass_mcg(fact.strength.numerator)
        den = fact.strength.denominator
        if num is not None and (den is None or den.value in (None, 1.0)):
            per_form_mcg = num
    low: float | None = 0.0
    high: float | None = 0.0
    seen = False
    for dosage in fact.dosages:
        line = _line_bounds(dosage, per_form_mcg, fact.medication)
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
