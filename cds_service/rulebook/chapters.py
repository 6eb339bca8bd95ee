"""The rule book's chapters around the rules: source attributes, services, conventions, the
text every card shares, value sets and tables, local codes and versions."""

from __future__ import annotations

from collections.abc import Iterator

from cds_service.config import Settings
from cds_service.rulebook.rules import cell, code_block
from cds_service.rulebook.source import RULE_SECTIONS, Sources
from cds_service.rules import RULE_VERSIONS
from cds_service.services import SERVICES


def _say(text: str) -> str:
    return " ".join(text.split())


def attributes(sources: Sources) -> Iterator[str]:
    yield "| Attribute | |"
    yield "|---|---|"
    for a in sources.book.attributes:
        yield f"| **{cell(a.name)}** | {cell(a.text)} |"
    yield ""


def changed_settings(sources: Sources) -> list[str]:
    """The rule settings in force that are not the defaults ("refill.warn_days = 10")."""
    defaults = Settings.model_construct()
    changed = []
    for section in RULE_SECTIONS:
        now, default = getattr(sources.settings, section), getattr(defaults, section)
        for name in type(now).model_fields:
            if getattr(now, name) != getattr(default, name):
                changed.append(f"`{section}.{name}` = {getattr(now, name)}")
    return changed


def services(sources: Sources) -> Iterator[str]:
    yield "| Service | Hook | What it answers | Rules | Prefetch (required) |"
    yield "|---|---|---|---|---|"
    for s in SERVICES:
        prefetch = ", ".join(f"**{k}**" if k in s.required_keys else k
                             for k in s.prefetch_keys)
        yield (f"| `{s.id}` | {s.hook} | {cell(s.description)} | "
               f"{', '.join(s.rules)} | {prefetch} |")
    yield ""
    yield "Required prefetch keys are in bold: without them a call is answered 412."
    yield ""


def conventions(sources: Sources) -> Iterator[str]:
    for c in sources.book.conventions:
        yield f'<a id="convention-{c.id}"></a>'
        yield ""
        yield f"**{c.title}.** {_say(c.text)}"
        yield ""


def shared_text(sources: Sources) -> Iterator[str]:
    common = sources.catalogue.common
    yield "Pump safety reminders (once per response, on its most urgent pump card):"
    yield ""
    yield from code_block(common.safety_reminders)
    yield ""
    yield "Said on every card when part of the chart could not be obtained:"
    yield ""
    yield from code_block(common.data_gap_note)
    yield ""
    for title, table in (
            ("How the numbers list names a number (empty: the card's text says it)",
             common.number_labels),
            ("How a chart entry reads in the evidence list (empty: a number cites it), and "
             "values in words", common.evidence_labels),
            ("How a number cites the chart entry it came from", common.evidence_cites),
            ("How a number's other sources read", common.source_labels),
            ("Kinds of chart entry", common.resource_words),
            ("Times a day", common.frequency_words)):
        yield f"{title}:"
        yield ""
        yield "| Key | Text |"
        yield "|---|---|"
        for key, text in table.items():
            yield f"| `{key or '(other)'}` | {cell(text) or '(empty)'} |"
        yield ""


def value_sets(sources: Sources) -> Iterator[str]:
    systems = sources.terminology.systems
    for name, vs in sources.value_sets.items():
        yield f'<a id="vs-{name}"></a>'
        yield ""
        yield f"#### `{name}` {vs.version}: {vs.title}"
        yield ""
        if name in sources.book.unused_value_sets:
            yield f"Read by no rule: {_say(sources.book.unused_value_sets[name])}"
            yield ""
        if vs.codes:
            yield "| System | Code | Display | Verified |"
            yield "|---|---|---|---|"
            for c in vs.codes:
                code = f"{c.code}*" if c.prefix else c.code
                yield (f"| {cell(systems.uri(c.system))} | `{cell(code)}` | {cell(c.display)} "
                       f"| {'**unverified**' if c.unverified else 'yes'} |")
            yield ""
            if any(c.prefix for c in vs.codes):
                yield "`*`: every code starting with this one."
                yield ""
        for t in vs.text:
            group = f" ({t.group})" if t.group else ""
            yield f"- text: all of {', '.join(repr(p) for p in t.all)}{group}"
        if vs.exclude_text:
            yield f"- never when the text says {', '.join(repr(p) for p in vs.exclude_text)}"
        if vs.codes_decide:
            yield f"- a code of {', '.join(vs.codes_decide)} decides: text cannot override it"
        yield ""
    yield from _tables(sources)


def _tables(sources: Sources) -> Iterator[str]:
    versions = sources.table_versions
    yield '<a id="table-pump-models"></a>'
    yield ""
    yield f"#### Table `pump-models` {versions['pump-models']}"
    yield ""
    yield "| Model | Matched by | Programmable | Reservoir | Service life |"
    yield "|---|---|---|---|---|"
    for m in sources.pump_models.models:
        reservoir = f"{m.reservoir_ml:g} mL" if m.reservoir_ml else "—"
        life = f"{m.service_life_years:g} years" if m.service_life_years else "—"
        yield (f"| {cell(m.name)} | {cell(', '.join(m.match))} | "
               f"{'yes' if m.programmable else 'no'} | {reservoir} | {life} |")
    yield ""
    unknown = sources.pump_models.unknown_programmable_service_life_years
    yield f"An unknown programmable pump is assumed to last {unknown} years."
    yield ""
    yield '<a id="table-oral-max-doses"></a>'
    yield ""
    yield f"#### Table `oral-max-doses` {versions['oral-max-doses']}"
    yield ""
    yield "| Agent | From age (years) | Maximum daily dose (mg) |"
    yield "|---|---|---|"
    for agent, bands in sources.max_doses.agents.items():
        for band in bands:
            yield f"| {agent} | {band.min_age_years:g} | {band.max_mg_per_day:g} |"
    yield ""
    yield '<a id="table-product-strengths"></a>'
    yield ""
    yield f"#### Table `product-strengths` {versions['product-strengths']}"
    yield ""
    yield "| RxNorm | Strength | Display | Verified |"
    yield "|---|---|---|---|"
    for p in sources.strengths.products:
        yield (f"| `{p.code}` | {p.amount:g} {p.unit} per {p.per} | {cell(p.display)} | "
               f"{'**unverified**' if p.unverified else 'yes'} |")
    yield ""
    yield '<a id="table-units"></a>'
    yield ""
    yield ("#### Table `units`: units, timing codes and dose forms the dose arithmetic "
           "reads (`cds_service/terminology/data/tables/units.yaml`)")
    yield ""


def local_codes(sources: Sources) -> Iterator[str]:
    yield _say(sources.book.local_codes)
    yield ""
    yield "| Code | Display | Definition |"
    yield "|---|---|---|"
    for c in sources.local_codes:
        yield (f"| `{c.get('code', '')}` | {cell(c.get('display', ''))} | "
               f"{cell(c.get('definition', ''))} |")
    yield ""


def versions(sources: Sources) -> Iterator[str]:
    yield "| What | Version |"
    yield "|---|---|"
    yield f"| Rule book prose (`rulebook.yaml`) | {sources.book.version} |"
    for rule, version in RULE_VERSIONS.items():
        yield f"| Rule `{rule}` | {version} |"
    for name, version in sources.catalogue.versions.items():
        yield f"| Card file `{name}.yaml` | {version} |"
    for name, version in (sources.terminology.versions | sources.table_versions).items():
        yield f"| Value set or table `{name}` | {version} |"
    for key, system in sources.catalogue.common.override_systems.items():
        yield f"| Override codes `{key}`: {cell(system.title)} | {system.version or ''} |"
    yield ""
