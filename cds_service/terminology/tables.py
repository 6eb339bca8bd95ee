"""Model tables shipped as data: pump models, maximum oral doses, product strengths."""

from __future__ import annotations

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
