"""Pure clinical rules: PatientRecord + now + settings + terminology -> findings."""

from __future__ import annotations

from collections.abc import Callable
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

PATIENT_VIEW_RULES: tuple[Rule, ...] = (
    _candidacy.candidacy,
    _trial.trial_outcome,
    _refill.refill,
    _battery.battery,
)
ORDER_RULES: tuple[Rule, ...] = (_candidacy.candidacy_on_order,)

SERVICE_RULES: dict[str, tuple[Rule, ...]] = {
    "itb-patient-view": PATIENT_VIEW_RULES,
    "itb-order-select": ORDER_RULES,
    "itb-order-sign": ORDER_RULES,
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


def evaluate(service_id: str, record: PatientRecord, now: datetime, settings: Settings,
             terms: Terminology) -> list[Finding]:
    """Every finding for one call. Unknown service ids have no rules (the API 404s first)."""
    if record.patient is not None and record.patient.deceased:
        return []
    findings: list[Finding] = []
    for rule in SERVICE_RULES.get(service_id, ()):
        findings.extend(rule(record, now, settings, terms))
    return findings


__all__ = ["ORDER_RULES", "PATIENT_VIEW_RULES", "RULES", "SERVICE_RULES", "Rule", "evaluate"]
