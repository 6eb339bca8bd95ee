"""What a rule returns: findings, rendered into cards by the catalogue, recorded by the audit."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of the chart that drove the finding."""

    what: str  # human label: "Oral baclofen 20 mg TID", "Pump refill"
    reference: str | None = None  # "MedicationRequest/123"
    code: str | None = None  # "system|code" that matched, when one did
    date: str | None = None  # ISO 8601 date or dateTime
    value: str | None = None  # the value used, with its unit: "20 mL", "positive"


# A number behind a decision: value plus unit (e.g. ("V", 20.0, "mL")) or an ISO date string.
NumberValue = float | int | str | bool


@dataclass(frozen=True, slots=True)
class Number:
    key: str  # machine key used in itb-cds.finding and by card templates: "volumeMl"
    value: NumberValue
    unit: str | None = None  # "mL", "mcg/mL", "mcg/day", "d"; None for dates and flags
    source: str | None = None  # where it came from: "Observation/5", "model table", "setting"


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # "itb-candidacy" | "itb-trial-outcome" | "itb-refill" | "itb-battery" | ...
    rule_version: str
    outcome: str  # one outcome code of the rule (clinical-rules.md section 1b)
    tier: Tier
    evidence: tuple[Evidence, ...] = ()
    numbers: tuple[Number, ...] = ()
    missing: tuple[str, ...] = ()  # inputs that were absent (names a clinician can act on)
    notes: tuple[str, ...] = ()  # short catalogue keys for modifiers, e.g. "off-label-dystonia"
    reason_refs: tuple[str, ...] = ()  # references the suggestion's reasonReference cites
    blocks: str | None = None  # for itb-data-quality: the rule id this finding blocks
    device_ref: str | None = None  # the pump a refill/battery finding is about
    suggest: bool = True  # False where the card must carry no suggestion

    def number(self, key: str) -> Number | None:
        for n in self.numbers:
            if n.key == key:
                return n
        return None
