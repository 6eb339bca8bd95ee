"""Schemas of the terminology data files (validated at load: a bad file fails startup)."""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemEntry(_File):
    uri: str
    aliases: tuple[str, ...] = ()


class SystemsFile(_File):
    version: str
    systems: dict[str, SystemEntry]
    dotless: tuple[str, ...] = ()


class CodeEntry(_File):
    system: str  # a key of systems.yaml ("snomed", "icd10cm", "local", ...)
    code: str
    display: str
    unverified: bool = False
    prefix: bool = False  # ICD-10 style: every code starting with this one matches
    group: str | None = None
    tags: tuple[str, ...] = ()


class TextEntry(_File):
    all: tuple[str, ...] = Field(min_length=1)  # every phrase must occur as whole words
    group: str | None = None
    # Codes of this value set that mean the same concept (for the coverage report: a keyword
    # with none, and whose words no listed display holds, is the only path to its concept).
    codes: tuple[str, ...] = ()


class ValueSetFile(_File):
    name: str
    version: str
    title: str
    codes: tuple[CodeEntry, ...] = ()
    text: tuple[TextEntry, ...] = ()
    exclude_text: tuple[str, ...] = ()
    # Systems (keys of systems.yaml) whose codes decide: a concept carrying a code of one of
    # them that is not in the value set is not rescued by the text fallback (a CPT-coded breast
    # implant removal is not a pump removal because its text says "explant").
    codes_decide: tuple[str, ...] = ()


class PumpModelEntry(_File):
    name: str
    match: tuple[str, ...] = Field(min_length=1)
    programmable: bool
    reservoir_ml: float | None = None
    service_life_years: float | None = None


class PumpModelsFile(_File):
    version: str
    models: tuple[PumpModelEntry, ...]
    unknown_programmable_service_life_years: float


class DoseBand(_File):
    min_age_years: float
    max_mg_per_day: float


class MaxDosesFile(_File):
    version: str
    agents: dict[str, tuple[DoseBand, ...]]


class ProductStrengthEntry(_File):
    code: str  # RxNorm
    amount: float
    unit: str  # mg | mcg
    per: str  # mL | tablet
    display: str
    unverified: bool = False


class ProductStrengthsFile(_File):
    version: str
    products: tuple[ProductStrengthEntry, ...]


def _fraction(value: object) -> object:
    """"1/24" as the float 1/24 (the division Python does, so the arithmetic is unchanged)."""
    if isinstance(value, str) and "/" in value:
        try:
            return float(Fraction(value.replace(" ", "")))
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"not a fraction: {value!r}") from exc
    return value


Amount = Annotated[float, BeforeValidator(_fraction), Field(gt=0)]


class UnitsFile(_File):
    version: str
    mass_mcg: dict[str, Amount]
    time_days: dict[str, Amount]
    timing_codes_per_day: dict[str, Amount]
    dose_forms: tuple[str, ...]
    strength_text_units: tuple[str, ...] = Field(min_length=1)
    trial_dose_text_units: tuple[str, ...] = Field(min_length=1)
    concentration_mcg_per_ml: dict[str, Amount]
    # mL in one unit of volume (a dose charted as a volume).
    volume_ml: dict[str, Amount] = Field(default_factory=dict)
