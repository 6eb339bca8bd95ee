"""Missing data is a finding, not a silence (clinical-rules.md section 0)."""

from __future__ import annotations

from cds_service.rules.finding import Evidence, Finding, Number, Tier

RULE_ID = "itb-data-quality"
RULE_VERSION = "1.0.0"
OUTCOMES = ("missing-data",)


def missing_data(
    blocks: str,
    missing: tuple[str, ...],
    *,
    evidence: tuple[Evidence, ...] = (),
    notes: tuple[str, ...] = (),
    device_ref: str | None = None,
    numbers: tuple[Number, ...] = (),
) -> Finding:
    return Finding(
        rule=RULE_ID,
        rule_version=RULE_VERSION,
        outcome="missing-data",
        tier=Tier.INFO,
        evidence=evidence,
        numbers=numbers,
        missing=missing,
        notes=notes,
        blocks=blocks,
        device_ref=device_ref,
        suggest=False,
    )
