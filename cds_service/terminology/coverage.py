"""The terminology coverage report (`itb-cds terminology report`): per value set, how many
codes each system contributes, which are unverified, and which text keywords remain the only
path to their concept (rule book: "Conventions", codes: words are the fallback, never the
only path)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cds_service.terminology.files import ValueSetFile
from cds_service.terminology.matching import phrase_pattern
from cds_service.terminology.terms import Terminology


@dataclass(frozen=True, slots=True)
class Coverage:
    name: str
    version: str
    codes_per_system: tuple[tuple[str, int], ...]
    unverified: tuple[str, ...]  # "system|code"
    keywords: int
    keyword_only: tuple[str, ...]  # the keyword rules no code stands for


def _keyword_only(spec: ValueSetFile) -> tuple[str, ...]:
    listed = {c.code for c in spec.codes}
    displays = [c.display.lower() for c in spec.codes]
    out: list[str] = []
    for rule in spec.text:
        if any(code in listed for code in rule.codes):
            continue
        patterns = [phrase_pattern(p) for p in rule.all]
        if any(all(p.search(d) for p in patterns) for d in displays):
            continue
        out.append(" + ".join(rule.all))
    return tuple(out)


def coverage(terms: Terminology) -> list[Coverage]:
    report: list[Coverage] = []
    for name in terms.value_set_names():
        spec = terms.value_set(name).spec
        per_system = Counter(terms.systems.uri(c.system) for c in spec.codes)
        report.append(Coverage(
            name=spec.name, version=spec.version,
            codes_per_system=tuple(sorted(per_system.items())),
            unverified=tuple(f"{terms.systems.uri(c.system)}|{c.code}"
                             for c in spec.codes if c.unverified),
            keywords=len(spec.text), keyword_only=_keyword_only(spec)))
    return report


def render(report: list[Coverage]) -> str:
    lines = ["Terminology coverage (codes per system, unverified codes, keyword-only concepts)"]
    for c in report:
        systems = ", ".join(f"{uri} {n}" for uri, n in c.codes_per_system) or "no codes"
        lines.append(f"\n{c.name} {c.version}: {systems}")
        lines.append(f"  unverified: {len(c.unverified)}"
                     + (f" ({', '.join(c.unverified)})" if c.unverified else ""))
        lines.append(f"  keywords: {c.keywords}; only path to their concept: "
                     f"{len(c.keyword_only)}"
                     + (f" ({'; '.join(c.keyword_only)})" if c.keyword_only else ""))
    total_codes = sum(n for c in report for _, n in c.codes_per_system)
    total_unverified = sum(len(c.unverified) for c in report)
    total_only = sum(len(c.keyword_only) for c in report)
    lines.append(f"\nTotal: {len(report)} value sets, {total_codes} codes, {total_unverified} "
                 f"unverified, {total_only} keyword-only concepts")
    return "\n".join(lines) + "\n"
