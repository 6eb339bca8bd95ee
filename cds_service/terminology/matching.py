"""Value sets as matchers: system + code first, then the text fallback."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cds_service.fhir.record import Concept
from cds_service.terminology.files import ValueSetFile


@dataclass(frozen=True, slots=True)
class Match:
    value_set: str
    via: str  # "code" | "prefix" | "text"
    group: str | None = None
    system: str | None = None
    code: str | None = None
    display: str | None = None
    unverified: bool = False
    tags: tuple[str, ...] = ()

    @property
    def token(self) -> str | None:
        """"system|code" of the coding that matched (None for a text match)."""
        if self.system is None or self.code is None:
            return None
        return f"{self.system}|{self.code}"


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A phrase matched as whole words, case-insensitively ("tab" must not match "table")."""
    return re.compile(r"(?<![a-z0-9])" + re.escape(phrase.lower()) + r"(?![a-z0-9])")


@dataclass(frozen=True, slots=True)
class _TextRule:
    patterns: tuple[re.Pattern[str], ...]
    group: str | None
    label: str


class Systems:
    """Canonical system URIs and their aliases; code normalisation per system."""

    def __init__(self, canonical: dict[str, str], aliases: dict[str, str], dotless: set[str]):
        self._canonical = canonical  # key ("snomed") -> uri
        self._aliases = aliases  # any accepted uri -> canonical uri
        self._dotless = dotless  # canonical uris compared without dots

    def uri(self, key: str) -> str:
        return self._canonical[key]

    def canonical(self, system: str | None) -> str | None:
        if system is None:
            return None
        return self._aliases.get(system.strip(), system.strip())

    def normalise(self, system: str, code: str) -> str:
        code = code.strip()
        if system in self._dotless:
            return code.replace(".", "").upper()
        return code


# Distinct concepts a process remembers per value set. Rules ask the same question of the same
# concept several times per call (the pump history is read by three rules), and a clinic's
# charts repeat the same few hundred codings; a match depends only on the concept.
MATCH_CACHE_SIZE = 4096


class ValueSet:
    def __init__(self, spec: ValueSetFile, systems: Systems) -> None:
        self.spec = spec
        self._match_cached = lru_cache(maxsize=MATCH_CACHE_SIZE)(self._match)
        self._match_code_cached = lru_cache(maxsize=MATCH_CACHE_SIZE)(self._match_code)
        self.name = spec.name
        self.version = spec.version
        self.title = spec.title
        self._systems = systems
        self._exact: dict[tuple[str, str], Match] = {}
        self._prefixes: list[tuple[str, str, Match]] = []
        for entry in spec.codes:
            uri = systems.uri(entry.system)
            norm = systems.normalise(uri, entry.code)
            match = Match(
                value_set=spec.name,
                via="prefix" if entry.prefix else "code",
                group=entry.group,
                system=uri,
                code=entry.code,
                display=entry.display,
                unverified=entry.unverified,
                tags=entry.tags,
            )
            if entry.prefix:
                self._prefixes.append((uri, norm, match))
            else:
                self._exact[(uri, norm)] = match
        self._text = tuple(
            _TextRule(
                tuple(phrase_pattern(p) for p in rule.all), rule.group, " + ".join(rule.all)
            )
            for rule in spec.text
        )
        self._exclude = tuple(phrase_pattern(p) for p in spec.exclude_text)
        self._codes_decide = frozenset(systems.uri(key) for key in spec.codes_decide)

    def display_of(self, system: str | None, code: str | None) -> str | None:
        """The value set's display for a code it lists (exact codes only)."""
        uri = self._systems.canonical(system)
        if uri is None or not code:
            return None
        found = self._exact.get((uri, self._systems.normalise(uri, code)))
        return found.display if found is not None else None

    def match_coding(self, system: str | None, code: str | None) -> Match | None:
        uri = self._systems.canonical(system)
        if uri is None or not code:
            return None
        norm = self._systems.normalise(uri, code)
        found = self._exact.get((uri, norm))
        if found is not None:
            return found
        for p_uri, prefix, match in self._prefixes:
            if p_uri == uri and norm.startswith(prefix):
                return Match(
                    value_set=match.value_set,
                    via="prefix",
                    group=match.group,
                    system=uri,
                    code=code,
                    display=match.display,
                    unverified=match.unverified,
                    tags=match.tags,
                )
        return None

    def match_text(self, text: str | None) -> Match | None:
        if not text:
            return None
        lowered = text.lower()
        if any(p.search(lowered) for p in self._exclude):
            return None
        for rule in self._text:
            if all(p.search(lowered) for p in rule.patterns):
                return Match(value_set=self.name, via="text", group=rule.group, display=rule.label)
        return None

    def match_code(self, concept: Concept | None) -> Match | None:
        """Codes only, no text fallback."""
        return self._match_code_cached(concept)

    def _match_code(self, concept: Concept | None) -> Match | None:
        if concept is not None:
            for coding in concept.codings:
                found = self.match_coding(coding.system, coding.code)
                if found is not None:
                    return found
        return None

    def decided_by_code(self, concept: Concept | None) -> bool:
        """True when the concept carries a code of a system whose codes decide (none matched)."""
        return concept is not None and bool(self._codes_decide) and any(
            c.code and self._systems.canonical(c.system) in self._codes_decide
            for c in concept.codings
        )

    def match(self, concept: Concept | None, *extra_text: str | None) -> Match | None:
        """Codes first; the text fallback reads the concept's text/displays and ``extra_text``."""
        return self._match_cached(concept, extra_text)

    def _match(self, concept: Concept | None, extra_text: tuple[str | None, ...]) -> Match | None:
        found = self.match_code(concept)
        if found is not None:
            return found
        if self.decided_by_code(concept):
            return None
        words = concept.words() if concept is not None else ""
        extra = " ".join(t for t in extra_text if t)
        return self.match_text(f"{words} {extra}".strip())
