"""The card catalogue: cards/*.yaml (reviewed clinical text) rendered from findings.

The catalogue decides wording, sources, suggestions and override reasons; it never decides
clinical logic (tiers and outcomes come from the rules).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
from cds_service.rules.finding import Finding, Number, Tier

FAMILIES = ("candidacy", "trial", "refill", "battery", "data-quality")
_TIER_ORDER = {Tier.CRITICAL: 0, Tier.WARNING: 1, Tier.INFO: 2}
# ServiceRequest.reasonReference may only point at these (FHIR R4).
_REASON_TYPES = ("Condition/", "Observation/", "DiagnosticReport/", "DocumentReference/")


_M = TypeVar("_M", bound=BaseModel)


class CatalogueError(RuntimeError):
    """A catalogue file is missing, malformed or renders badly (names file, path, problem)."""


# ------------------------------------------------------------------ schema (pydantic)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Spec):
    label: str = Field(min_length=1)
    url: str = Field(pattern=r"^https://\S+$")


class OverrideSpec(_Spec):
    code: str = Field(min_length=1)
    display: str = Field(min_length=1)
    # Outcomes, or for data-quality cards the blocked rule ids, this reason fits; empty: all.
    applies_to: tuple[str, ...] = ()


class LinkSpec(_Spec):
    label: str = Field(min_length=1)
    url: str = Field(pattern=r"^https://\S+$")


class SuggestionSpec(_Spec):
    label: str = Field(min_length=1)
    code: str = Field(min_length=1)  # local code of urn:itb-cds:codes
    text: str = Field(min_length=1)  # ServiceRequest.code.text
    before: str | None = None  # number key of the date the request is due before
    note: str | None = None  # template for ServiceRequest.note


class OutcomeSpec(_Spec):
    indicator: Literal["info", "warning", "critical"]
    summary: str = Field(min_length=1)
    detail: str = Field(min_length=1)
    source: str | None = None  # key of common.yaml sources; default: the family's
    suggestions: tuple[SuggestionSpec, ...] = ()


class FamilySpec(_Spec):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    rule: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    source: str
    pump_card: bool = False  # safety reminders travel with the card
    override_reasons: tuple[OverrideSpec, ...] = ()
    links: tuple[LinkSpec, ...] = ()
    notes: dict[str, str] = Field(default_factory=dict)
    outcomes: dict[str, OutcomeSpec] = Field(min_length=1)


class CommonSpec(_Spec):
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    code_system: str = Field(min_length=1)
    sources: dict[str, SourceSpec]
    number_labels: dict[str, str]
    safety_reminders: str = Field(min_length=1)
    # Said on every card when some prefetch data could not be obtained (template gets
    # ``unavailable``: the labels below of the keys that are missing).
    data_gap_note: str = Field(min_length=1)
    prefetch_labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("sources")
    @classmethod
    def _some(cls, value: dict[str, SourceSpec]) -> dict[str, SourceSpec]:
        if not value:
            raise ValueError("at least one source is needed")
        return value


# ------------------------------------------------------------------ template context


@dataclass(frozen=True, slots=True)
class NumberView:
    value: object
    unit: str | None
    source: str | None

    def __str__(self) -> str:
        if self.unit == "d" and isinstance(self.value, int | float) and not isinstance(
                self.value, bool):
            return days_in_words(self.value)
        if isinstance(self.value, str) and _INSTANT.fullmatch(self.value):
            return f"{self.value[:10]} {self.value[11:16]} UTC"
        if isinstance(self.value, float):
            # As computed (a mean drop of 1.25 is not 1.2), to three decimals at most.
            text = f"{self.value:.3f}".rstrip("0").rstrip(".")
        else:
            text = str(self.value)
        return f"{text} {self.unit}" if self.unit and self.unit not in ("a",) else (
            f"{text} years" if self.unit == "a" else text)


_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z")
_TABLE_ROW = re.compile(r"^\s*\|")


def days_in_words(days: float) -> str:
    """Whole days in words: "today", "in 1 day", "in 152 days", "5 days ago"."""
    whole = int(days)
    if whole == 0:
        return "today"
    unit = "day" if abs(whole) == 1 else "days"
    return f"in {whole} {unit}" if whole > 0 else f"{-whole} {unit} ago"


def count_of(number: object, noun: str) -> str:
    """ "1 agent", "2 agents": a count with its noun."""
    value = number.value if isinstance(number, NumberView) else number
    plural = noun if value == 1 else f"{noun}s"
    return f"{number} {plural}"


def blank_line_before_tables(text: str) -> str:
    """Markdown needs a blank line before a table, whatever a template's whitespace did."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if _TABLE_ROW.match(line) and out and out[-1].strip() and not _TABLE_ROW.match(out[-1]):
            out.append("")
        out.append(line)
    return "\n".join(out)


class _WorstCaseNumbers(Mapping[str, NumberView]):
    """Every key present, with the longest plausible value: summaries are checked against it."""

    def __getitem__(self, key: str) -> NumberView:
        if key.endswith("Date"):
            return NumberView("2099-12-31", None, "x" * 40)
        return NumberView(99999.9, "mcg/day", "x" * 40)

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(("dueDate", "volumeMl"))

    def __len__(self) -> int:
        return 2


def _numbers(finding: Finding) -> dict[str, NumberView]:
    return {n.key: NumberView(n.value, n.unit, n.source) for n in finding.numbers}


def _number_json(n: Number) -> object:
    return {"value": n.value, "unit": n.unit} if n.unit else n.value


def _md(text: object) -> str:
    """Chart text inside markdown: keep it from becoming markup."""
    return str(text).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_").replace(
        "\n", " ")


# ------------------------------------------------------------------ catalogue


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
        self._env = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
        )
        self._env.filters["md"] = _md
        self._env.filters["count_of"] = count_of
        # Compiling a template costs more than rendering it: compile each text once.
        self._templates: dict[str, Any] = {}

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, cards_dir: Path) -> Catalogue:
        common = _load(cards_dir / "common.yaml", CommonSpec)
        families = {name: _Family(name, _load(cards_dir / f"{name}.yaml", FamilySpec))
                    for name in FAMILIES}
        catalogue = cls(common, families)
        catalogue._check(cards_dir)
        return catalogue

    def _check(self, cards_dir: Path) -> None:
        self._compile(cards_dir / "common.yaml", "safety_reminders", self.common.safety_reminders)
        self._compile(cards_dir / "common.yaml", "data_gap_note", self.common.data_gap_note)
        for name, family in ((f.name, f) for f in self._by_rule.values()):
            path = cards_dir / f"{name}.yaml"
            spec = family.spec
            if spec.source not in self.common.sources:
                raise CatalogueError(f"{path}: source: unknown source {spec.source!r}")
            for key, text in spec.notes.items():
                self._trial_render(path, f"notes.{key}", text, spec.rule)
            for outcome, o in spec.outcomes.items():
                where = f"outcomes.{outcome}"
                if o.source is not None and o.source not in self.common.sources:
                    raise CatalogueError(f"{path}: {where}.source: unknown {o.source!r}")
                summary = self._trial_render(path, f"{where}.summary", o.summary, spec.rule)
                if len(summary.strip()) > SUMMARY_MAX:
                    raise CatalogueError(
                        f"{path}: {where}.summary: {len(summary.strip())} characters with "
                        f"worst-case values (limit {SUMMARY_MAX}): {summary.strip()!r}")
                self._trial_render(path, f"{where}.detail", o.detail, spec.rule)
                for i, s in enumerate(o.suggestions):
                    if s.note is not None:
                        self._trial_render(path, f"{where}.suggestions.{i}.note", s.note,
                                           spec.rule)

    def _compile(self, path: Path, where: str, text: str) -> Any:
        try:
            template = self._templates[text] = self._env.from_string(text)
            return template
        except TemplateError as exc:
            raise CatalogueError(f"{path}: {where}: template error: {exc}") from exc

    def _trial_render(self, path: Path, where: str, text: str, rule: str) -> str:
        template = self._compile(path, where, text)
        context = self._sample_context(rule)
        try:
            return str(template.render(context))
        except TemplateError as exc:
            raise CatalogueError(f"{path}: {where}: {exc}") from exc

    def _sample_context(self, rule: str) -> dict[str, Any]:
        return {
            "n": _WorstCaseNumbers(),
            "rule": rule,
            "outcome": "x",
            "tier": "critical",
            "blocks": "itb-refill",
            "missing": ["reservoir volume put in at the last refill" * 2],
            "notes": [],
            "evidence_md": "",
            "numbers_md": "",
            "patient_id": "p" * 64,
            "today": "2099-12-31",
            "unavailable": ["medication administrations", "observations"],
        }

    # ---------------------------------------------------------------- rendering

    def render(self, findings: list[Finding], *, patient_id: str, now: datetime,
               terminology_versions: dict[str, str],
               unavailable: Sequence[str] = ()) -> list[Card]:
        """One card per finding, in ``order(findings)``. ``unavailable``: prefetch keys that
        could not be obtained; every card says so."""
        ordered = self.order(findings)
        labels = [self.common.prefetch_labels.get(k, k) for k in unavailable]
        return [self._card(f, patient_id, now, terminology_versions, labels) for f in ordered]

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

    def _context(self, finding: Finding, patient_id: str, now: datetime) -> dict[str, Any]:
        return {
            "n": _numbers(finding),
            "rule": finding.rule,
            "outcome": finding.outcome,
            "tier": str(finding.tier),
            "blocks": finding.blocks or "",
            "missing": list(finding.missing),
            "notes": list(finding.notes),
            "evidence_md": self._evidence_md(finding),
            "numbers_md": self._numbers_md(finding),
            "patient_id": patient_id,
            "today": now.date().isoformat(),
        }

    def _evidence_md(self, finding: Finding) -> str:
        if not finding.evidence:
            return ""
        rows = ["| What | When | Value | Source |", "|---|---|---|---|"]
        for e in finding.evidence:
            rows.append("| " + " | ".join(_md(x) if x else "" for x in (
                e.what, e.date, e.value, e.reference)) + " |")
        return "\n".join(rows)

    def _numbers_md(self, finding: Finding) -> str:
        if not finding.numbers:
            return ""
        labels = self.common.number_labels
        rows = ["| Number | Value | From |", "|---|---|---|"]
        for n in finding.numbers:
            view = NumberView(n.value, n.unit, n.source)
            rows.append(f"| {_md(labels.get(n.key, n.key))} | {_md(view)} | "
                        f"{_md(n.source or '')} |")
        return "\n".join(rows)

    def _render(self, text: str, context: dict[str, Any], where: str) -> str:
        try:
            template = self._templates.get(text)
            if template is None:
                template = self._templates[text] = self._env.from_string(text)
            return str(template.render(context)).strip()
        except TemplateError as exc:
            raise CatalogueError(f"{where}: {exc}") from exc

    def _card(self, finding: Finding, patient_id: str, now: datetime,
              terminology_versions: dict[str, str], unavailable: list[str]) -> Card:
        family, spec = self._family(finding)
        where = f"{finding.rule}/{finding.outcome}"
        context = self._context(finding, patient_id, now)
        context["unavailable"] = unavailable
        summary = self._render(spec.summary, context, f"{where} summary")
        if len(summary) > SUMMARY_MAX:
            summary = summary[: SUMMARY_MAX - 1].rstrip() + "…"
        parts = [self._render(spec.detail, context, f"{where} detail")]
        # A note whose text is empty is said elsewhere (the pump safety reminders).
        rendered_notes = [
            self._render(family.notes[key], context, f"{where} note {key}")
            for key in finding.notes if key in family.notes
        ]
        note_lines = ["- " + text for text in rendered_notes if text]
        if note_lines:
            parts.append("**Notes**\n\n" + "\n".join(note_lines))
        if family.pump_card or (finding.device_ref is not None):
            parts.append(self._render(self.common.safety_reminders, context, "safety"))
        if unavailable:
            parts.append(self._render(self.common.data_gap_note, context, "data gap"))
        detail = blank_line_before_tables("\n\n".join(p for p in parts if p))
        source_key = spec.source or family.source
        src = self.common.sources[source_key]
        topic = Coding(system=self.common.code_system, code=finding.rule, display=family.topic)
        suggestions = []
        if finding.suggest:
            suggestions = [self._suggestion(s, finding, context, patient_id, now, where)
                           for s in spec.suggestions]
        return Card(
            uuid=str(uuid.uuid4()),
            summary=summary,
            detail=detail,
            indicator=finding.tier.value,
            source=Source(label=src.label, url=src.url, topic=topic),
            suggestions=suggestions,
            selectionBehavior="at-most-one" if suggestions else None,
            overrideReasons=[
                OverrideReason(system=self.common.code_system, code=o.code, display=o.display)
                for o in family.override_reasons
                if not o.applies_to or finding.outcome in o.applies_to
                or (finding.blocks is not None and finding.blocks in o.applies_to)
            ],
            links=[Link(label=link.label, url=link.url, type="absolute")
                   for link in family.links],
            extension={"itb-cds.finding": self._extension(finding, terminology_versions)
                       | ({"dataNotObtained": unavailable} if unavailable else {})},
        )

    def _extension(self, finding: Finding, terminology_versions: dict[str, str]
                   ) -> dict[str, Any]:
        dates = {n.key: n.value for n in finding.numbers
                 if n.key.endswith("Date") and isinstance(n.value, str)}
        body: dict[str, Any] = {
            "rule": finding.rule,
            "ruleVersion": finding.rule_version,
            "outcome": finding.outcome,
            "tier": finding.tier.value,
            "catalogueVersion": self.version,
            "valueSetVersions": dict(terminology_versions),
            "numbers": {n.key: _number_json(n) for n in finding.numbers},
            "dates": dates,
            "missing": list(finding.missing),
            "notes": list(finding.notes),
            "evidence": [e.reference for e in finding.evidence if e.reference],
        }
        if finding.blocks:
            body["blocks"] = finding.blocks
        if finding.device_ref:
            body["device"] = finding.device_ref
        return body

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
            notes.append(self._render(spec.note, context, f"{where} suggestion note"))
        if notes:
            resource["note"] = [{"text": " ".join(notes)}]
        return Suggestion(
            label=spec.label,
            uuid=str(uuid.uuid4()),
            actions=[Action(type="create", description=spec.label, resource=resource)],
        )


# libyaml's loader when PyYAML was built with it: the pure-Python one dominated cold start.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(path: Path, model: type[_M]) -> _M:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CatalogueError(f"{path}: {problems}") from exc
