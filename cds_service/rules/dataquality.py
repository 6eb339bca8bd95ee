"""Missing data is a finding, not a silence (rule book: "Conventions"): the rule id its
findings carry (``Draft.missing_data`` builds them for the rule they block)."""

from __future__ import annotations

from cds_service.rules.finding import Evidence, Finding, Tier

RULE_ID = "itb-data-quality"
RULE_VERSION = "1.1.0"
OUTCOMES = ("missing-data", "stale-device")


def stale_device(evidence: tuple[Evidence, ...]) -> Finding:
    """A pump Device still active after the pump's removal: the removal counts, and the
    device list asks to be updated (rule book: itb-refill, decisions). No pump is in use, so
    it is no pump card (the pump safety reminders do not travel with it)."""
    return Finding(rule=RULE_ID, rule_version=RULE_VERSION, outcome="stale-device",
                   tier=Tier.INFO, evidence=evidence, suggest=False)
