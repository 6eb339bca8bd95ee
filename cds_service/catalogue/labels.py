"""Evidence, references and missing inputs in the card's words: rules emit codes and the
chart's own words, the cards say them (cards/common.yaml ``evidence_labels``,
``evidence_cites``, ``source_labels``, ``resource_words``; a family's ``missing``).

A chart entry is never named by its resource id on a card: it is cited by what it is and its
date ("refill 2026-03-13", "order 2026-01-10"); the ids stay in the card's ``itb-cds.finding``
extension for machines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.catalogue.schema import CatalogueError, CommonSpec
from cds_service.catalogue.templates import Templates
from cds_service.catalogue.text import md, moment_text
from cds_service.rules.finding import (
    VALUE_WORDS,
    Evidence,
    EvidenceLabel,
    Finding,
    MissingInput,
    SourceKind,
    read_missing,
)

_WORST_WORD = "X" * 60
# Names every evidence template may read besides the chart's words.
_ROW_NAMES = ("date", "value", "kind_word")


@dataclass(frozen=True, slots=True)
class Row:
    """One evidence row as templates see it (the candidacy dose arithmetic reads these)."""

    what: str
    value_label: str | None
    reference: str | None
    value: str  # in words: the value label rendered, else the chart's value, else ""
    text: str  # the whole row as the evidence list says it ("" = not listed)
    cite: str  # how a number that came from this row names it ("refill 2026-03-13")


class Labels:
    def __init__(self, templates: Templates, common: CommonSpec,
                 missing: Mapping[str, str]) -> None:
        self._templates = templates
        self._evidence = common.evidence_labels
        self._cites = common.evidence_cites
        self._sources = common.source_labels
        self._resources = common.resource_words
        self._missing = missing

    # ---------------------------------------------------------------- load-time checks

    def check_evidence(self, where: str) -> None:
        """Every label, citation and source a rule can emit is there and renders with any
        words."""
        absent = sorted(str(c) for c in set(EvidenceLabel) - set(self._evidence))
        if absent:
            raise CatalogueError(f"{where}: evidence_labels: no label for {absent}")
        uncited = sorted(str(c) for c in set(EvidenceLabel) - VALUE_WORDS - set(self._cites))
        if uncited:
            raise CatalogueError(f"{where}: evidence_cites: no citation for {uncited}")
        kinds = sorted(str(k) for k in set(SourceKind) - set(self._sources))
        if kinds:
            raise CatalogueError(f"{where}: source_labels: no label for {kinds}")
        for table, name in ((self._evidence, "evidence_labels"), (self._cites, "evidence_cites"),
                            (self._sources, "source_labels")):
            for code, text in table.items():
                self._trial(text, f"{where}: {name}.{code}")

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

    # ---------------------------------------------------------------- rendering

    def _say(self, table: Mapping[str, str], code: str, context: Mapping[str, Any],
             where: str) -> str:
        text = table.get(code)
        if text is None:
            raise CatalogueError(f"no {where} for {code!r}")
        return self._templates.render(text, context, f"{where} {code}").strip()

    def _words(self, e: Evidence) -> dict[str, Any]:
        kind = dict(e.words).get("kind") or (e.reference or "").partition("/")[0]
        context: dict[str, Any] = dict.fromkeys(_ROW_NAMES, "")
        context.update(e.words)
        context["date"] = moment_text(e.date) if e.date else ""
        context["kind_word"] = self._resources.get(kind, self._resources.get("", ""))
        return context

    def row(self, e: Evidence) -> Row:
        context = self._words(e)
        if e.value_label is not None:
            context["value"] = self._say(self._evidence, e.value_label, context,
                                         "evidence label")
        else:
            context["value"] = e.value or ""
        text = self._say(self._evidence, e.what, context, "evidence label")
        cite = self._say(self._cites, e.what, context, "evidence citation") if (
            e.what in self._cites) else ""
        return Row(e.what, e.value_label, e.reference, context["value"], md(text), md(cite))

    def rows(self, finding: Finding) -> list[Row]:
        return [self.row(e) for e in finding.evidence]

    def evidence_md(self, rows: list[Row]) -> str:
        """The evidence list: one line per chart entry (its first row), rows whose label is
        empty left out (a number shows them with its source)."""
        seen: set[str] = set()
        lines: list[str] = []
        for r in rows:
            key = r.reference or r.text
            if not r.text or key in seen or r.text in lines:
                continue
            seen.add(key)
            lines.append(r.text)
        return "\n".join(f"- {line}" for line in lines)

    def source(self, origin: str | None, rows: list[Row]) -> str:
        """How a number's source reads: a chart entry by its citation, else its kind."""
        if not origin:
            return ""
        kind, _, detail = origin.partition(":")
        if kind in self._sources:
            return md(self._say(self._sources, kind, {"detail": detail}, "source label"))
        if "/" in origin:
            cited = next((r.cite for r in rows if r.reference == origin and r.cite), None)
            if cited is not None:
                return cited
            return md(self._resources.get(origin.partition("/")[0],
                                          self._resources.get("", "")))
        raise CatalogueError(f"no source label for a number from {origin!r}")

    def missing(self, finding: Finding, rows: list[Row]) -> list[str]:
        """The missing inputs in words; a chart entry they name is cited, not given by id."""
        out = []
        for item in finding.missing:
            code, chart_words = read_missing(item)
            text = self._missing.get(code)
            if text is None:
                raise CatalogueError(f"{finding.rule}: no label for missing input {code!r}")
            context = dict(chart_words)
            if "ref" in context:
                context["ref"] = self.source(context["ref"], rows)
            out.append(self._templates.render(text, context, f"missing {code}", strip=False))
        return out
