"""Product strength and unit conversion of one dose: the one place a volume (mL of an oral
solution or an intrathecal ampoule) or a count (tablets, capsules) becomes a mass (rule book:
itb-candidacy and itb-trial-outcome, decisions). The strength comes from the Medication
(``ingredient.strength``, contained or referenced), else the product-strength table by
RxNorm code, else the strength a tablet's name states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from cds_service.fhir.record import MedicationFact, Quantity
from cds_service.terminology import Terminology, Units

PER_ML = "mL"
PER_FORM = "form"


@dataclass(frozen=True, slots=True)
class Strength:
    """Micrograms in one mL (``per`` "mL") or in one tablet or capsule (``per`` "form")."""

    mcg: float
    per: str
    unit: str = "mg"  # the mass unit a card states it in: "mg" or "mcg"
    form: str = "tablet"  # what one form is called on the card

    def shown(self) -> str:
        per = "mL" if self.per == PER_ML else self.form
        return f"{_amount(self.mcg, self.unit)} {self.unit}/{per}"

    def in_micrograms(self) -> Strength:
        """The same strength stated in mcg: intrathecal doses are never written in mg (a
        decimal mg figure is a dosing hazard)."""
        return replace(self, unit="mcg")


@dataclass(frozen=True, slots=True)
class Conversion:
    """How a dose charted as a volume or a count became a mass: "2 mL x 5 mg/mL = 10 mg" (with a
    multiplication sign)."""

    amount: float
    amount_unit: str
    strength: Strength
    mcg: float

    def shown(self) -> str:
        unit = self.strength.unit
        times = "\N{MULTIPLICATION SIGN}"
        return (f"{self.amount:g} {self.amount_unit} {times} {self.strength.shown()} = "
                f"{_amount(self.mcg, unit)} {unit}")


def _amount(mcg: float, unit: str) -> str:
    value = mcg / 1000.0 if unit == "mg" else mcg
    return f"{round(value, 6):g}"


def unit_key(q: Quantity) -> str | None:
    """The unit a table is looked up by: the UCUM code, else the unit as written."""
    raw = q.code or q.unit
    return raw.strip().lower() if raw else None


def _scaled(q: Quantity | None, table: Mapping[str, float]) -> float | None:
    """The quantity in the table's unit, by its UCUM code, else its unit as written."""
    if q is None or q.value is None:
        return None
    for raw in (q.code, q.unit):
        factor = table.get(raw.strip().lower()) if raw else None
        if factor is not None:
            return q.value * factor
    return None


def mass_mcg(q: Quantity | None, units: Units) -> float | None:
    return _scaled(q, units.mass_mcg)


def volume_ml(q: Quantity | None, units: Units) -> float | None:
    return _scaled(q, units.volume_ml)


def charted_volume_ml(q: Quantity | None, units: Units) -> float | None:
    """A volume the pump programmer records (the local code's unit, mL, when none is given)."""
    if q is None or q.value is None:
        return None
    return q.value if not (q.code or q.unit) else volume_ml(q, units)


def concentration_mcg_per_ml(q: Quantity | None, units: Units) -> float | None:
    """A pump concentration; without a unit, the local code's unit (mcg/mL)."""
    if q is None or q.value is None:
        return None
    factor = units.concentration_mcg_per_ml.get(
        (q.code or q.unit or "mcg/mL").replace(" ", "").lower())
    return None if factor is None else q.value * factor


def _stated_in(mcg_per_unit: float | None) -> str:
    """The mass unit a card states a strength in: micrograms for a strength written in a
    unit smaller than a milligram, milligrams otherwise (the units table decides)."""
    return "mcg" if mcg_per_unit is not None and mcg_per_unit < 1000 else "mg"


def _of_medication(fact: MedicationFact, units: Units) -> Strength | None:
    """The Medication's ingredient strength: "5 mg / 5 mL", "10 mg / 1 tablet", "10 mg"."""
    if fact.strength is None:
        return None
    num = mass_mcg(fact.strength.numerator, units)
    den = fact.strength.denominator
    if num is None:
        return None
    numerator = fact.strength.numerator
    unit = _stated_in(mass_mcg(replace(numerator, value=1.0), units) if numerator else None)
    per_ml = volume_ml(den, units)
    if per_ml:
        return Strength(num / per_ml, PER_ML, unit)
    if den is None or den.value in (None, 1.0):
        return Strength(num, PER_FORM, unit, _form_word(den, units))
    return None


def _form_word(q: Quantity | None, units: Units) -> str:
    word = unit_key(q) if q is not None else None
    if word and word in units.dose_forms and word.strip("{}").startswith("cap"):
        return "capsule"
    return "tablet"


def _of_table(fact: MedicationFact, terms: Terminology) -> Strength | None:
    found = terms.product_strength(fact.medication)
    if found is None:
        return None
    per = PER_ML if found.per.lower() == "ml" else PER_FORM
    return Strength(found.mcg, per, found.unit,  # the table states mg or mcg
                    found.per if per == PER_FORM else "tablet")


def _of_name(fact: MedicationFact, units: Units) -> Strength | None:
    """A tablet named with one strength ("Baclofen 10 mg tablet"); a combination product or a
    solution is not guessed from its name."""
    found = {(float(v), u) for v, u in units.strength_in_text.findall(fact.medication.words())}
    if len(found) != 1:
        return None
    value, unit = found.pop()
    return Strength(value * units.mass_mcg[unit], PER_FORM, _stated_in(units.mass_mcg[unit]))


def strength_of(fact: MedicationFact, terms: Terminology) -> Strength | None:
    """The product's strength, in the order the rule book gives (itb-candidacy, decisions)."""
    units = terms.units
    return _of_medication(fact, units) or _of_table(fact, terms) or _of_name(fact, units)


def convert(q: Quantity | None, units: Units, strength: Strength | None) -> Conversion | None:
    """A dose charted in mL or as a count, turned into micrograms with the strength; None
    when it is a mass already, or when the strength that fits its unit is not known."""
    if q is None or q.value is None or strength is None or mass_mcg(q, units) is not None:
        return None
    ml = volume_ml(q, units)
    if ml is not None and strength.per == PER_ML:
        return Conversion(q.value, "mL" if ml == q.value else (q.unit or q.code or ""),
                          strength, ml * strength.mcg)
    key = unit_key(q)
    if key in units.dose_forms and strength.per == PER_FORM:
        word = strength.form if q.value == 1 else f"{strength.form}s"
        return Conversion(q.value, word, strength, q.value * strength.mcg)
    return None


def written_dose_mcg(text: str | None, units: Units) -> float | None:
    """A dose written in words ("baclofen 50 mcg intrathecal"), by the units table's pattern."""
    found = units.trial_dose_in_text.search(text or "")
    return float(found.group(1)) if found else None


def stated_dose_mcg(value: object, units: Units, bare_max_mcg: float) -> float | None:
    """A dose in an extension: a mass quantity, or a bare number read as micrograms when it
    is no more than ``bare_max_mcg`` (a larger bare number is not a bolus)."""
    if isinstance(value, Quantity):
        return mass_mcg(value, units)
    if isinstance(value, int | float) and not isinstance(value, bool) and (
            0 < value <= bare_max_mcg):
        return float(value)
    return None


def dose_mcg(q: Quantity | None, units: Units, strength: Strength | None = None
             ) -> float | None:
    """One administration in micrograms: a mass as charted, else converted with the
    strength."""
    direct = mass_mcg(q, units)
    if direct is not None:
        return direct
    conversion = convert(q, units, strength)
    return conversion.mcg if conversion is not None else None
