"""Value sets and model tables as data, and matching on them (codes first, then text)."""

from cds_service.terminology.matching import Match, ValueSet
from cds_service.terminology.tables import ProductStrength, PumpModel, Units
from cds_service.terminology.terms import (
    LOCAL_SYSTEM,
    OBSERVATION_CODES,
    Terminology,
    TerminologyError,
)

__all__ = [
    "LOCAL_SYSTEM",
    "OBSERVATION_CODES",
    "Match",
    "ProductStrength",
    "PumpModel",
    "Terminology",
    "TerminologyError",
    "Units",
    "ValueSet",
]
