"""Cards from findings: the families of cards/*.yaml, checked at load, rendered per finding."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cds_service.catalogue.labels import Labels
from cds_service.catalogue.moves import moved_to
from cds_service.catalogue.schema import (
    CatalogueError,
    CommonSpec,
    FamilySpec,
    OutcomeSpec,
    SuggestionSpec,
    load_spec,
)
from cds_service.catalogue.templates import Templates
from cds_service.catalogue.text import (
    WorstCaseNumbers,
    blank_line_before_tables,
    keep_units,
    md,
    number_json,
    numbers_of,
    sourced,
)
from cds_service.hooks.models import (
    SUMMARY_MAX,
    Action,
    Card,
    Coding,
    Link,
    OverrideReason,
    Source,
    Suggestion,
)
from cds_service.rules.finding import Finding, Tier

_BLANK_LINES = re.compile(r"\n{3,}")
FAMILIES = ("candidacy", "trial", "refill", "battery", "data-quality")
_TIER_ORDER = {Tier.CRITICAL: 0, Tier.WARNING: 1, Tier.INFO: 2}
# ServiceRequest.reasonReference may only point at these (FHIR R4).
_REASON_TYPES = ("Condition/", "Observation/", "DiagnosticReport/", "DocumentReference/")


class _Section:
    """A family's named block of text, rendered where an outcome's text puts it (and only
    then: a section may read numbers that only some outcomes have)."""

    def __init__(self, templates: Templates, text: str, context: dict[str, Any],
                 where: str) -> None:
        self._args = (templates, text, context, where)
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            templates, text, context, where = self._args
            self._text = templates.render(text, context, where)
        return self._text

    def __bool__(self) -> bool:
        return bool(str(self))


@dataclass(frozen=True)
class _Family:
    name: str
    spec: FamilySpec


class Catalogue:
    def __init__(self, common: CommonSpec, families: dict[str, _Family]) -> None:
        self.common = common
        self._by_rule = {f.spec.rule: f for f in families.values()}
        self.versions: dict[str, str] = {"common": common.version} | {
            name: f.spec.version for name, f in families.items()
        }
        self.version = ";".join(f"{k}@{v}" for k, v in self.versions.items())
        self._templates = Templates()
        self._templates.use_frequencies(common.frequency_words)
        # One table of missing-input labels: a code means the same input whichever family
        # (today only data-quality) says it.
        missing = {code: text for f in families.values() for code, text in f.spec.missing.items()}
        self._labels = Labels(self._templates, common, missing)
        # The longest missing-input label: what the trial renderings list as missing.
        self._sample_missing = "x" * 80

    def family(self, name: str) -> FamilySpec | None:
        """A card family by its file name ("refill"), for the rule book."""
        return next((f.spec for f in self._by_rule.values() if f.name == name), None)

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, cards_dir: Path) -> Catalogue:
        common = load_spec(cards_dir / "common.yaml", CommonSpec)
        families = {name: _Family(name, load_spec(cards_dir / f"{name}.yaml", FamilySpec))
                    for name in FAMILIES}
        catalogue = cls(common, families)
        catalogue._check(cards_dir)
        return catalogue

    def _check(self, cards_dir: Path) -> None:
        common_path = cards_dir / "common.yaml"
        self._templates.compile(self.common.safety_reminders, f"{common_path}: safety_reminders")
        self._templates.compile(self.common.data_gap_note, f"{common_path}: data_gap_note")
        self._labels.check_evidence(str(common_path))
        self._check_missing_labels(cards_dir)
        for name, family in ((f.name, f) for f in self._by_rule.values()):
            path = cards_dir / f"{name}.yaml"
            spec = family.spec
            if spec.source not in self.common.sources:
                raise CatalogueError(f"{path}: source: unknown source {spec.source!r}")
            for key, text in spec.notes.items():
                self._trial_render(f"{path}: notes.{key}", text, spec.rule)
            for key, text in spec.sections.items():
                self._trial_render(f"{path}: sections.{key}", text, spec.rule)
            for o_spec in spec.override_reasons:
                if o_spec.system != "local" and o_spec.system not in self.common.override_systems:
                    raise CatalogueError(f"{path}: override_reasons: {o_spec.code}: unknown "
                                         f"system {o_spec.system!r}")
            for outcome, o in spec.outcomes.items():
                self._check_outcome(f"{path}: outcomes.{outcome}", o, spec.rule)

    def _check_missing_labels(self, cards_dir: Path) -> None:
        rendered: list[str] = []
        seen: dict[str, str] = {}
        for family in self._by_rule.values():
            where = str(cards_dir / f"{family.name}.yaml")
            rendered += self._labels.check_missing(where, family.spec.missing)
            for code in family.spec.missing:
                if code in seen:
                    raise CatalogueError(f"{where}: missing.{code}: also said in {seen[code]}")
                seen[code] = where
        absent = self._labels.absent_missing()
        if absent:
            raise CatalogueError(f"{cards_dir}: no card family says the missing inputs {absent}")
        self._sample_missing = max(rendered, key=len, default=self._sample_missing)

    def _check_outcome(self, where: str, o: OutcomeSpec, rule: str) -> None:
        if o.source is not None and o.source not in self.common.sources:
            raise CatalogueError(f"{where}.source: unknown {o.source!r}")
        summary = self._trial_render(f"{where}.summary", o.summary, rule)
        if len(summary.strip()) > SUMMARY_MAX:
            raise CatalogueError(
                f"{where}.summary: {len(summary.strip())} characters with "
                f"worst-case values (limit {SUMMARY_MAX}): {summary.strip()!r}")
        self._trial_render(f"{where}.detail", o.detail, rule)
        for i, s in enumerate(o.suggestions):
            if s.note is not None:
                self._trial_render(f"{where}.suggestions.{i}.note", s.note, rule)

    def _trial_render(self, where: str, text: str, rule: str) -> str:
        return self._templates.render(text, self._sample_context(rule), where, strip=False)

    def _sample_context(self, rule: str) -> dict[str, Any]:
        family = self._by_rule[rule].spec
        return dict.fromkeys(family.sections, "") | {
            "n": WorstCaseNumbers(),
            "rule": rule,
            "outcome": "x",
            "tier": "critical",
            "blocks": "itb-refill",
            "missing": [self._sample_missing * 2],
            "notes": [],
            "evidence_md": "",
            "numbers_md": "",
            "rows": [],
            "patient_id": "p" * 64,
            "today": "2099-12-31",
            "unavailable": ["medication administrations", "observations"],
        }

    # ---------------------------------------------------------------- rendering

    def render(self, findings: list[Finding], *, patient_id: str, now: datetime,
               terminology_versions: dict[str, str],
               unavailable: Sequence[str] = (),
               proposals: Mapping[str, Mapping[str, Any]] | None = None) -> list[Card]:
        """One card per finding, in ``order(findings)``. ``unavailable``: prefetch keys that
        could not be obtained; every card says so. The pump safety reminders are said once,
        on the first (most urgent) pump card. ``proposals``: the resources of the hook's
        context that findings are about (``Finding.target_ref``), as R4 JSON."""
        ordered = self.order(findings)
        labels = [self.common.prefetch_labels.get(k, k) for k in unavailable]
        pump = next((i for i, f in enumerate(ordered) if self._is_pump_card(f)), None)
        return [self._card(f, patient_id, now, terminology_versions, labels, i == pump,
                           proposals or {})
                for i, f in enumerate(ordered)]

    def _is_pump_card(self, finding: Finding) -> bool:
        family = self._by_rule.get(finding.rule)
        return finding.device_ref is not None or (family is not None and family.spec.pump_card)

    def missing_labels(self, finding: Finding) -> list[str]:
        """A data-quality finding's missing inputs as its card lists them (not rendered)."""
        return self._labels.missing(finding, self._labels.rows(finding))

    def topic(self, rule: str) -> str:
        """A rule's topic as its cards name it (``source.topic.display``)."""
        family = self._by_rule.get(rule)
        return family.spec.topic if family is not None else rule

    @staticmethod
    def order(findings: Sequence[Finding]) -> list[Finding]:
        """The order cards are shown in: critical, warning, info (stable within a tier)."""
        return sorted(findings, key=lambda f: _TIER_ORDER.get(f.tier, 3))

    def _family(self, finding: Finding) -> tuple[FamilySpec, OutcomeSpec]:
        family = self._by_rule.get(finding.rule)
        if family is None:
            raise CatalogueError(f"no card family for rule {finding.rule!r}")
        outcome = family.spec.outcomes.get(finding.outcome)
        if outcome is None:
            raise CatalogueError(f"{finding.rule}: no card for outcome {finding.outcome!r}")
        return family.spec, outcome

    def _context(self, family: FamilySpec, finding: Finding, patient_id: str, now: datetime,
                 where: str) -> dict[str, Any]:
        rows = self._labels.rows(finding)
        numbers = numbers_of(finding, lambda origin: self._labels.source(origin, rows))
        context: dict[str, Any] = {
            "n": numbers,
            "rule": finding.rule,
            "outcome": finding.outcome,
            "tier": str(finding.tier),
            "blocks": finding.blocks or "",
            "missing": self._labels.missing(finding, rows),
            "notes": list(finding.notes),
            "rows": rows,
            "evidence_md": self._labels.evidence_md(rows),
            "numbers_md": self._numbers_md(finding, numbers),
            "patient_id": patient_id,
            "today": now.date().isoformat(),
        }
        for name, text in family.sections.items():
            context[name] = _Section(self._templates, text, context, f"{where} section {name}")
        return context

    def _numbers_md(self, finding: Finding, numbers: dict[str, Any]) -> str:
        """The numbers list: "Label: value (source)", one short line each."""
        lines = []
        for n in finding.numbers:
            label = self.common.number_labels.get(n.key, n.key)
            if label:
                lines.append(f"- {md(label)}: {md(sourced(numbers[n.key]))}")
        return "\n".join(lines)

    def _detail(self, family: FamilySpec, spec: OutcomeSpec, finding: Finding,
                context: dict[str, Any], where: str, safety: bool) -> str:
        parts = [self._templates.render(spec.detail, context, f"{where} detail")]
        # A note whose text is empty is said elsewhere (the pump safety reminders).
        rendered_notes = [
            self._templates.render(family.notes[key], context, f"{where} note {key}")
            for key in finding.notes if key in family.notes
        ]
        note_lines = ["- " + text for text in rendered_notes if text]
        if note_lines:
            parts.append("**Notes**\n\n" + "\n".join(note_lines))
        if safety:
            parts.append(self._templates.render(self.common.safety_reminders, context, "safety"))
        if context["unavailable"]:
            parts.append(self._templates.render(self.common.data_gap_note, context, "data gap"))
        text = blank_line_before_tables("\n\n".join(p for p in parts if p))
        # A section left empty (no dose problem, no evidence) leaves no gap behind.
        return _BLANK_LINES.sub("\n\n", text)

    def _overrides(self, family: FamilySpec, finding: Finding) -> list[OverrideReason]:
        fits = {finding.outcome, *finding.notes} | ({finding.blocks} if finding.blocks else set())
        return [
            OverrideReason(system=self.override_system(o.system), code=o.code,
                           display=o.display)
            for o in family.override_reasons
            if not o.applies_to or fits & set(o.applies_to)
        ]

    def override_system(self, key: str) -> str:
        """The URI of an override reason's code system ("local": the service's own)."""
        if key == "local":
            return self.common.code_system
        return self.common.override_systems[key].url

    def _card(self, finding: Finding, patient_id: str, now: datetime,
              terminology_versions: dict[str, str], unavailable: list[str],
              safety: bool, proposals: Mapping[str, Mapping[str, Any]]) -> Card:
        family, spec = self._family(finding)
        where = f"{finding.rule}/{finding.outcome}"
        context = self._context(family, finding, patient_id, now, where)
        context["unavailable"] = unavailable
        summary = keep_units(self._templates.render(spec.summary, context, f"{where} summary"))
        if len(summary) > SUMMARY_MAX:
            summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
        detail = keep_units(self._detail(family, spec, finding, context, where, safety))
        src = self.common.sources[spec.source or family.source]
        topic = Coding(system=self.common.code_system, code=finding.rule, display=family.topic)
        suggestions: list[Suggestion] = []
        if finding.suggest:
            for s in spec.suggestions:
                made = (self._move(s, finding, proposals, context, where)
                        if s.moves_to is not None
                        else self._suggestion(s, finding, context, patient_id, now, where))
                if made is not None:
                    suggestions.append(made)
        extension = self._extension(finding, context["missing"], terminology_versions)
        return Card(
            uuid=str(uuid.uuid4()),
            summary=summary,
            detail=detail,
            indicator=finding.tier.value,
            source=Source(label=src.label, url=src.url, topic=topic),
            suggestions=suggestions,
            selectionBehavior="at-most-one" if suggestions else None,
            overrideReasons=self._overrides(family, finding),
            links=[Link(label=link.label, url=link.url, type="absolute")
                   for link in family.links],
            extension={"itb-cds.finding": extension
                       | ({"dataNotObtained": unavailable} if unavailable else {})},
        )

    def _extension(self, finding: Finding, missing: list[str],
                   terminology_versions: dict[str, str]) -> dict[str, Any]:
        dates = {n.key: n.value for n in finding.numbers
                 if n.key.endswith("Date") and isinstance(n.value, str)}
        body: dict[str, Any] = {
            "rule": finding.rule,
            "ruleVersion": finding.rule_version,
            "outcome": finding.outcome,
            "tier": finding.tier.value,
            "catalogueVersion": self.version,
            "valueSetVersions": dict(terminology_versions),
            "numbers": {n.key: number_json(n) for n in finding.numbers},
            "dates": dates,
            "missing": list(missing),
            "notes": list(finding.notes),
            "evidence": list(dict.fromkeys(e.reference for e in finding.evidence
                                           if e.reference)),
        }
        if finding.blocks:
            body["blocks"] = finding.blocks
        if finding.device_ref:
            body["device"] = finding.device_ref
        return body

    def _move(self, spec: SuggestionSpec, finding: Finding,
              proposals: Mapping[str, Mapping[str, Any]], context: dict[str, Any],
              where: str) -> Suggestion | None:
        """Update the proposed resource the finding is about, moved to the day of a number."""
        target = proposals.get(finding.target_ref or "")
        day = finding.number(spec.moves_to or "")
        if target is None or day is None or not isinstance(day.value, str):
            return None
        resource = moved_to(target, date.fromisoformat(day.value))
        if resource is None:
            return None
        label = self._templates.render(spec.label, context, f"{where} suggestion label")
        return Suggestion(label=label, uuid=str(uuid.uuid4()), actions=[
            Action(type="update", description=label, resource=resource)])

    def _suggestion(self, spec: SuggestionSpec, finding: Finding, context: dict[str, Any],
                    patient_id: str, now: datetime, where: str) -> Suggestion:
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": f"Patient/{patient_id}"},
            "code": {
                "coding": [{"system": self.common.code_system, "code": spec.code,
                            "display": spec.text}],
                "text": spec.text,
            },
            "authoredOn": now.isoformat(),
        }
        reasons = [r for r in finding.reason_refs if r.startswith(_REASON_TYPES)]
        if reasons:
            resource["reasonReference"] = [{"reference": r} for r in reasons]
        support = [r for r in (finding.device_ref, *(
            e.reference for e in finding.evidence)) if r and "/" in r]
        if support:
            resource["supportingInfo"] = [{"reference": r} for r in dict.fromkeys(support)]
        before = finding.number(spec.before) if spec.before else None
        notes = []
        if before is not None and isinstance(before.value, str):
            resource["occurrencePeriod"] = {"end": before.value}
            notes.append(f"Before {before.value}.")
        if spec.note is not None:
            notes.append(self._templates.render(spec.note, context,
                                                f"{where} suggestion note"))
        if notes:
            resource["note"] = [{"text": " ".join(notes)}]
        return Suggestion(
            label=spec.label,
            uuid=str(uuid.uuid4()),
            actions=[Action(type="create", description=spec.label, resource=resource)],
        )
