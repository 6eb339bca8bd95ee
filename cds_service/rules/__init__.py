"""Pure clinical rules: PatientRecord + now + settings + terminology -> findings.

The engine names the rule entries a service runs (the service registry lists them); each
entry reads the chart index built once for the call, and only its own settings section.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from cds_service.config import Settings
from cds_service.fhir.record import PatientRecord
from cds_service.rules import battery as _battery
from cds_service.rules import booking as _booking
from cds_service.rules import candidacy as _candidacy
from cds_service.rules import dataquality as _dataquality
from cds_service.rules import refill as _refill
from cds_service.rules import trial as _trial
from cds_service.rules.finding import Finding
from cds_service.rules.index import ChartIndex
from cds_service.terminology import Terminology

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Entry(Generic[S]):
    """A rule as a service runs it: the rule, the settings it is given, and for each rule
    id whose cards it makes, the settings sections those cards rest on (the rule book's
    thresholds)."""

    rule: Callable[[ChartIndex, datetime, S], list[Finding]]
    section: Callable[[Settings], S]
    reads: Mapping[str, tuple[str, ...]]

    def run(self, chart: ChartIndex, now: datetime, settings: Settings) -> list[Finding]:
        return self.rule(chart, now, self.section(settings))


RULE_ENTRIES: Mapping[str, Entry[Any]] = {
    # Candidacy weighs the screening trials on file too (rule book: itb-candidacy), so its cards
    # rest on the trial section as well.
    "candidacy": Entry(_candidacy.candidacy_entry,
                       lambda s: _candidacy.CandidacySections(s.candidacy, s.trial),
                       {_candidacy.RULE_ID: ("candidacy", "trial")}),
    "candidacy-on-order": Entry(_candidacy.candidacy_on_order_entry,
                                lambda s: _candidacy.CandidacySections(s.candidacy, s.trial),
                                {_candidacy.RULE_ID: ("candidacy", "trial")}),
    "trial-outcome": Entry(_trial.trial_outcome, lambda s: s.trial,
                           {_trial.RULE_ID: ("trial",)}),
    "refill": Entry(_refill.refill, lambda s: s.refill, {_refill.RULE_ID: ("refill",)}),
    "battery": Entry(_battery.battery, lambda s: s.battery, {_battery.RULE_ID: ("battery",)}),
    # The booking checks speak for the refill and battery rules (their cards and versions).
    "booking": Entry(_booking.booking,
                     lambda s: _booking.BookingSections(s.refill, s.battery, s.booking),
                     {_refill.RULE_ID: ("refill",), _battery.RULE_ID: ("battery", "booking")}),
}

# Rule id -> (version, outcome codes, note keys): what the catalogue must be able to render.
RULES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    _candidacy.RULE_ID: (_candidacy.RULE_VERSION, _candidacy.OUTCOMES, _candidacy.NOTES),
    _trial.RULE_ID: (_trial.RULE_VERSION, _trial.OUTCOMES, _trial.NOTES),
    # The booking checks (appointment-book) speak for the refill and battery rules.
    _refill.RULE_ID: (_refill.RULE_VERSION, _refill.OUTCOMES + _booking.REFILL_OUTCOMES,
                      _refill.NOTES + _refill.PUMP_NOTES + _booking.REFILL_NOTES),
    _battery.RULE_ID: (_battery.RULE_VERSION, _battery.OUTCOMES + _booking.BATTERY_OUTCOMES,
                       _battery.NOTES + _battery.PUMP_NOTES + _booking.BATTERY_NOTES),
    _dataquality.RULE_ID: (
        _dataquality.RULE_VERSION,
        _dataquality.OUTCOMES,
        tuple(dict.fromkeys(_refill.NOTES + _refill.PUMP_NOTES + _battery.NOTES)),
    ),
}
RULE_VERSIONS: dict[str, str] = {rule: spec[0] for rule, spec in RULES.items()}


def evaluate(entries: Sequence[str], record: PatientRecord, now: datetime, settings: Settings,
             terms: Terminology) -> list[Finding]:
    """Every finding of the named rule entries, in order. Unknown names raise KeyError."""
    chosen = [RULE_ENTRIES[name] for name in entries]
    chart = ChartIndex.for_rules(record, terms)
    if chart is None:
        return []
    findings: list[Finding] = []
    for entry in chosen:
        findings.extend(entry.run(chart, now, settings))
    return findings


__all__ = ["RULES", "RULE_ENTRIES", "RULE_VERSIONS", "Entry", "evaluate"]
