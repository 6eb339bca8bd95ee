"""One rule's chapter of the rule book: intent, inputs, thresholds, value sets, every card
text with its tier, override reasons, evidence and the decisions taken."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from cds_service.catalogue.schema import FamilySpec, OutcomeSpec
from cds_service.config import Settings
from cds_service.rulebook.source import RuleProse, Sources
from cds_service.rules import RULES


def cell(text: object) -> str:
    """Text inside a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def code_block(text: str) -> list[str]:
    # A fence longer than any run of backticks in the text.
    fence = "```" if "```" not in text else "````"
    return [f"{fence}text", text.strip("\n"), fence]


def env_name(section: str, field: str) -> str:
    return f"ITB_CDS_{section.upper()}__{field.upper()}"


def family_of(sources: Sources, rule: str) -> tuple[str, FamilySpec]:
    for name, version in sources.catalogue.versions.items():
        family = sources.catalogue.family(name)
        if family is not None and family.rule == rule:
            return f"{name}.yaml {version}", family
    raise KeyError(rule)


def tiers(outcome: OutcomeSpec) -> str:
    if outcome.raised is None:
        return outcome.indicator
    return f"{outcome.indicator}; {outcome.raised.indicator} when {outcome.raised.when}"


def rule_chapter(sources: Sources, number: str, rule: str,
                 examples: dict[tuple[str, str], str]) -> Iterator[str]:
    prose = sources.book.rules[rule]
    file_version, family = family_of(sources, rule)
    version = RULES[rule][0]
    services = ", ".join(f"`{s}`" for s in sources.services_of(rule)) or "none"
    yield f'<a id="{rule}"></a>'
    yield ""
    yield f"### {number} `{rule}`: {family.topic}"
    yield ""
    yield (f"Rule version {version} · card family `{file_version}` · services: {services}")
    yield ""
    yield f"**Intent.** {prose.intent}"
    yield ""
    yield from _inputs(prose)
    yield from _thresholds(sources, rule)
    yield from _value_sets(sources, prose)
    yield from _outcomes(rule, family, examples)
    yield from _shared_text(family)
    yield from _overrides(sources, family)
    yield from _evidence(sources, prose)
    if prose.decisions:
        yield "#### Decisions where the requirements were silent"
        yield ""
        for d in prose.decisions:
            yield f"- **{d.id}.** {' '.join(d.text.split())}"
        yield ""


def _inputs(prose: RuleProse) -> Iterator[str]:
    yield "#### Inputs and their sources"
    yield ""
    yield "| Input | Source, in order |"
    yield "|---|---|"
    for i in prose.inputs:
        yield f"| {cell(i.input)} | {cell(i.source)} |"
    yield ""


def _thresholds(sources: Sources, rule: str) -> Iterator[str]:
    sections = sources.rule_settings(rule)
    yield "#### Thresholds"
    yield ""
    if not sections:
        yield "None of its own: a data-quality card is decided by the rule it blocks."
        yield ""
        return
    defaults = Settings.model_construct()
    yield "| Setting | Environment variable | Value | Default | Meaning |"
    yield "|---|---|---|---|---|"
    for section in sections:
        model: BaseModel = getattr(sources.settings, section)
        default: BaseModel = getattr(defaults, section)
        for name, field in type(model).model_fields.items():
            yield (f"| `{section}.{name}` | `{env_name(section, name)}` | "
                   f"{cell(getattr(model, name))} | {cell(getattr(default, name))} | "
                   f"{cell(field.description or '')} |")
    yield ""


def _value_sets(sources: Sources, prose: RuleProse) -> Iterator[str]:
    versions = sources.table_versions
    yield "#### Value sets and tables"
    yield ""
    if not prose.value_sets and not prose.tables:
        yield "Those of the rule it blocks."
        yield ""
        return
    for name in prose.value_sets:
        vs = sources.value_sets[name]
        unverified = sum(1 for c in vs.codes if c.unverified)
        marks = f", {unverified} unverified" if unverified else ""
        yield (f"- [`{name}`](#vs-{name}) {vs.version}: {vs.title} "
               f"({plural(len(vs.codes), 'code')}{marks}, "
               f"{plural(len(vs.text), 'text fallback')})")
    for table in prose.tables:
        yield f"- table [`{table}`](#table-{table}) {versions[table]}"
    yield ""


def _outcomes(rule: str, family: FamilySpec, examples: dict[tuple[str, str], str]
              ) -> Iterator[str]:
    yield "#### Outcomes and cards"
    yield ""
    yield "| Outcome | Tier | Suggestion | Example |"
    yield "|---|---|---|---|"
    for outcome, spec in family.outcomes.items():
        suggestion = "; ".join(s.label for s in spec.suggestions) or "none"
        example = examples.get((rule, outcome))
        link = f"[{example}](card-gallery.html#{example})" if example else "no scenario"
        yield f"| `{outcome}` | {cell(tiers(spec))} | {cell(suggestion)} | {link} |"
    yield ""
    for outcome, spec in family.outcomes.items():
        yield f"##### `{rule}` / `{outcome}` ({spec.indicator})"
        yield ""
        yield "Summary:"
        yield ""
        yield from code_block(spec.summary)
        yield ""
        yield "Detail:"
        yield ""
        yield from code_block(spec.detail)
        yield ""
        for s in spec.suggestions:
            if s.moves_to is not None:
                yield (f"Suggestion: {s.label} (the appointment being booked, moved to "
                       f"`{s.moves_to}`)")
                yield ""
                continue
            before = f", due before `{s.before}`" if s.before else ""
            yield (f"Suggestion: {s.label} (ServiceRequest `{s.code}`, \"{s.text}\""
                   f"{before})")
            yield ""


def _shared_text(family: FamilySpec) -> Iterator[str]:
    if family.sections:
        yield "Text the outcomes share (`sections`):"
        yield ""
        for name, text in family.sections.items():
            yield f"`{name}`:"
            yield ""
            yield from code_block(text)
            yield ""
    if family.notes:
        yield "Notes (modifiers the card states; empty: said elsewhere):"
        yield ""
        yield "| Note | Text |"
        yield "|---|---|"
        for key, text in family.notes.items():
            yield f"| `{key}` | {cell(text) or '(said in the pump safety reminders)'} |"
        yield ""
    if family.missing:
        yield "Missing inputs the card asks to record:"
        yield ""
        yield "| Code | Text |"
        yield "|---|---|"
        for key, text in family.missing.items():
            yield f"| `{key}` | {cell(text)} |"
        yield ""


def _overrides(sources: Sources, family: FamilySpec) -> Iterator[str]:
    yield "#### Override reasons"
    yield ""
    yield "| Code | Code system | Shown as | Standard display | Offered on |"
    yield "|---|---|---|---|---|"
    for o in family.override_reasons:
        system = sources.catalogue.override_system(o.system)
        yield (f"| `{o.code}` | {cell(system)} | {cell(o.display)} | "
               f"{cell(o.standard_display or '(local code)')} | "
               f"{cell(', '.join(o.applies_to) or 'every card')} |")
    yield ""


def _evidence(sources: Sources, prose: RuleProse) -> Iterator[str]:
    yield "#### Evidence cited"
    yield ""
    for key in prose.evidence:
        src = sources.catalogue.common.sources[key]
        yield f"- [{src.label}]({src.url})"
    yield ""
