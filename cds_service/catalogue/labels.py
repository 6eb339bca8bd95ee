"""Evidence and missing-input labels: rules emit codes and the chart's own words, the cards say
them (cards/common.yaml ``evidence_labels``, a family's ``missing``)."""

from __future__ import annotations

from collections.abc import Mapping

from cds_service.catalogue.schema import CatalogueError
from cds_service.catalogue.templates import Templates
from cds_service.catalogue.text import md
from cds_service.rules.finding import (
    Evidence,
    EvidenceLabel,
    Finding,
    MissingInput,
    Words,
    read_missing,
)

_WORST_WORD = "X" * 60


class Labels:
    def __init__(self, templates: Templates, evidence: Mapping[str, str],
                 missing: Mapping[str, str]) -> None:
        self._templates = templates
        self._evidence = evidence
        self._missing = missing

    def check_evidence(self, where: str) -> None:
        """Every evidence label a rule can emit is there and renders with any words."""
        absent = sorted(str(c) for c in set(EvidenceLabel) - set(self._evidence))
        if absent:
            raise CatalogueError(f"{where}: evidence_labels: no label for {absent}")
        for code, text in self._evidence.items():
            self._trial(text, f"{where}: evidence_labels.{code}")

    def check_missing(self, where: str, labels: Mapping[str, str]) -> list[str]:
        """A family's missing-input labels render with any words; returns them rendered."""
        return [self._trial(text, f"{where}: missing.{code}") for code, text in labels.items()]

    def absent_missing(self) -> list[str]:
        """Missing inputs a rule can emit that no family says."""
        return sorted(str(c) for c in set(MissingInput) - set(self._missing))

    def _trial(self, text: str, where: str) -> str:
        names = self._templates.names(text, where)
        return self._templates.render(text, dict.fromkeys(names, _WORST_WORD), where,
                                      strip=False)

    def _say(self, code: str, chart_words: Words) -> str:
        text = self._evidence.get(code)
        if text is None:
            raise CatalogueError(f"no evidence label for {code!r}")
        return self._templates.render(text, dict(chart_words), f"evidence label {code}",
                                      strip=False)

    def evidence_row(self, e: Evidence) -> tuple[str, str | None, str | None, str | None]:
        """What, when, value and source of one evidence row, in words."""
        value = self._say(e.value_label, e.words) if e.value_label is not None else e.value
        return self._say(e.what, e.words), e.date, value, e.reference

    def evidence_md(self, finding: Finding) -> str:
        if not finding.evidence:
            return ""
        rows = ["| What | When | Value | Source |", "|---|---|---|---|"]
        for e in finding.evidence:
            rows.append("| " + " | ".join(md(x) if x else "" for x in self.evidence_row(e))
                        + " |")
        return "\n".join(rows)

    def missing(self, finding: Finding) -> list[str]:
        """The missing inputs in words."""
        out = []
        for item in finding.missing:
            code, chart_words = read_missing(item)
            text = self._missing.get(code)
            if text is None:
                raise CatalogueError(f"{finding.rule}: no label for missing input {code!r}")
            out.append(self._templates.render(text, chart_words, f"missing {code}",
                                              strip=False))
        return out
