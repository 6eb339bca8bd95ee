"""A finding being put together: a rule adds what it saw, computed, noted and missed, in the
order it found them, then closes the draft as a finding (or as the data-quality finding that
says what to record)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cds_service.rules import dataquality
from cds_service.rules.finding import (
    Evidence,
    Finding,
    MissingInput,
    Number,
    NumberValue,
    Tier,
    missing_input,
)


@dataclass(slots=True)
class Draft:
    rule: str
    version: str
    evidence: list[Evidence] = field(default_factory=list)
    numbers: list[Number] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def see(self, *evidence: Evidence) -> None:
        self.evidence.extend(evidence)

    def count(self, key: str, value: NumberValue, unit: str | None = None,
              source: str | None = None) -> None:
        self.numbers.append(Number(key, value, unit, source))

    def note(self, *keys: str) -> None:
        """A modifier the card states; each once, in the order first noted."""
        self.notes.extend(k for k in keys if k not in self.notes)

    def lack(self, code: MissingInput, **chart_words: str) -> None:
        self.missing.append(missing_input(code, **chart_words))

    def copy(self) -> Draft:
        """What has been put together so far, to build another finding on."""
        return Draft(self.rule, self.version, list(self.evidence), list(self.numbers),
                     list(self.notes), list(self.missing))

    def finding(self, outcome: str, tier: Tier, *, reason_refs: tuple[str, ...] = (),
                device_ref: str | None = None, suggest: bool = True,
                target_ref: str | None = None) -> Finding:
        return Finding(
            rule=self.rule, rule_version=self.version, outcome=outcome, tier=tier,
            evidence=tuple(self.evidence), numbers=tuple(self.numbers), notes=tuple(self.notes),
            reason_refs=reason_refs, device_ref=device_ref, suggest=suggest,
            target_ref=target_ref,
        )

    def missing_data(self, *, device_ref: str | None = None) -> Finding:
        """Missing data is a finding, not a silence: what this rule could not decide, and
        what to record so it can."""
        return Finding(
            rule=dataquality.RULE_ID,
            rule_version=dataquality.RULE_VERSION,
            outcome="missing-data",
            tier=Tier.INFO,
            evidence=tuple(self.evidence),
            numbers=tuple(self.numbers),
            missing=tuple(self.missing),
            notes=tuple(self.notes),
            blocks=self.rule,
            device_ref=device_ref,
            suggest=False,
        )
