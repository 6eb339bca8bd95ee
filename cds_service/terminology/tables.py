"""Model tables shipped as data: pump models, maximum oral doses, product strengths, units."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PumpModel:
    name: str
    match: tuple[str, ...]
    programmable: bool
    reservoir_ml: float | None = None
    service_life_years: float | None = None


@dataclass(frozen=True, slots=True)
class ProductStrength:
    code: str
    amount: float
    unit: str  # mg | mcg
    per: str  # mL | tablet
    display: str

    @property
    def mcg(self) -> float:
        return self.amount * 1000.0 if self.unit == "mg" else self.amount


@dataclass(frozen=True, slots=True)
class Units:
    """The unit and timing table (tables/units.yaml): keys lower-cased, timing codes upper."""

    mass_mcg: Mapping[str, float]
    time_days: Mapping[str, float]
    timing_per_day: Mapping[str, float]
    dose_forms: frozenset[str]
    # "(number) (unit)" in a product name, group 2 a key of mass_mcg ("10 mg")
    strength_in_text: re.Pattern[str]
    # "(number) (unit)" of a screening dose in a procedure note, in mcg ("50 mcg")
    trial_dose_in_text: re.Pattern[str]
    concentration_mcg_per_ml: Mapping[str, float]
    volume_ml: Mapping[str, float]


def amount_in_text(units: tuple[str, ...], flags: int = 0) -> re.Pattern[str]:
    """A number followed by one of the units, as a whole word: "50 mcg", "10mg"."""
    return re.compile(r"(\d+(?:\.\d+)?)\s*(" + "|".join(re.escape(u) for u in units) + r")\b",
                      flags)
