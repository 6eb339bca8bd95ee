"""Pure clinical rules: PatientRecord + now + settings + terminology -> findings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from cds_service.config import Settings
from cds_service.fhir.record import PatientRecord
from cds_service.rules import battery as _battery
from cds_service.rules import candidacy as _candidacy
from cds_service.rules import dataquality as _dataquality
from cds_service.rules import refill as _refill
from cds_service.rules import trial as _trial
from cds_service.rules.finding import Finding
from cds_service.terminology import Terminology

Rule = Callable[[PatientRecord, datetime, Settings, Terminology], list[Finding]]

RULE_ENTRIES: dict[str, Rule] = {
    "candidacy": _candidacy.candidacy,
    "candidacy-on-order": _candidacy.candidacy_on_order,
    "trial-outcome": _trial.trial_outcome,
    "refill": _refill.refill,
    "battery": _battery.battery,
}

# Rule id -> (version, outcome codes, note keys): what the catalogue must be able to render.
RULES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    _candidacy.RULE_ID: (_candidacy.RULE_VERSION, _candidacy.OUTCOMES, _candidacy.NOTES),
    _trial.RULE_ID: (_trial.RULE_VERSION, _trial.OUTCOMES, _trial.NOTES),
    _refill.RULE_ID: (_refill.RULE_VERSION, _refill.OUTCOMES,
                      _refill.NOTES + _refill.PUMP_NOTES),
    _battery.RULE_ID: (_battery.RULE_VERSION, _battery.OUTCOMES,
                       _battery.NOTES + _battery.PUMP_NOTES),
    _dataquality.RULE_ID: (
        _dataquality.RULE_VERSION,
        _dataquality.OUTCOMES,
        tuple(dict.fromkeys(_refill.NOTES + _refill.PUMP_NOTES + _battery.NOTES)),
    ),
}


def evaluate(entries: Sequence[str], record: PatientRecord, now: datetime, settings: Settings,
             terms: Terminology) -> list[Finding]:
    """Every finding of the named rule entries, in order."""
    if record.patient is not None and record.patient.deceased:
        return []
    findings: list[Finding] = []
    for name in entries:
        findings.extend(RULE_ENTRIES[name](record, now, settings, terms))
    return findings


__all__ = ["RULES", "RULE_ENTRIES", "Rule", "evaluate"]
