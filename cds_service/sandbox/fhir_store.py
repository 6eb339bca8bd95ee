"""An in-memory, read-only FHIR R4 store over the fixtures' resources: read by id, and the
searches CDS Hooks prefetch templates make (by patient or subject reference, by token on
``code``, by ``_id``).

It is deliberately tiny: it exists so that a CDS client with no FHIR server of its own (the
public CDS Hooks Sandbox included) can be pointed at the service, and so that the service's own
FHIR fallback can be exercised against real HTTP. No maintained package fits a read-only server
over a folder of JSON; the full FHIR search grammar is out of scope.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# A FHIR resource as served: raw JSON, never interpreted beyond the fields searched here.
Resource = dict[str, Any]

RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

# Elements that put a resource into a patient's compartment, for the types the prefetch
# templates search (R4 CompartmentDefinition "Patient", the subset that matters here).
_PATIENT_ELEMENTS = ("subject", "patient")


class DuplicateResourceError(ValueError):
    """Two different resources share a type and id: reads would be ambiguous."""


@dataclass(frozen=True, slots=True)
class Token:
    """One alternative of a token search value: ``system|code``, ``|code``, ``system|`` or
    ``code`` (R4 search, token parameters)."""

    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code

    @classmethod
    def parse(cls, text: str) -> Token:
        if "|" not in text:
            return cls(system=None, code=text)
        system, _, code = text.partition("|")
        return cls(system=system, code=code or None)

    def matches(self, coding: Mapping[str, Any]) -> bool:
        if self.code is not None and coding.get("code") != self.code:
            return False
        if self.system is None:
            return True
        if self.system == "":
            return not coding.get("system")
        return bool(coding.get("system") == self.system)


@dataclass(frozen=True, slots=True)
class TokenFilter:
    """A comma-separated token value: matches when any alternative matches any coding."""

    alternatives: tuple[Token, ...]

    @classmethod
    def parse(cls, value: str) -> TokenFilter:
        return cls(tuple(Token.parse(part) for part in value.split(",") if part))

    def matches(self, concept: object) -> bool:
        codings = concept.get("coding") if isinstance(concept, Mapping) else None
        if not isinstance(codings, list):
            return False
        return any(
            token.matches(coding)
            for coding in codings
            if isinstance(coding, Mapping)
            for token in self.alternatives
        )


@dataclass(frozen=True, slots=True)
class Search:
    """The filters of one search; every filter given must hold (AND)."""

    resource_type: str
    patient_ids: frozenset[str] | None = None
    ids: frozenset[str] | None = None
    codes: tuple[TokenFilter, ...] = ()


def reference_id(value: str, resource_type: str = "Patient") -> str:
    """The id in a reference search value: ``id``, ``Patient/id`` or ``<base>/Patient/id``."""
    marker = f"{resource_type}/"
    if marker in value:
        value = value.rsplit(marker, 1)[1]
    return value.split("/", 1)[0]


def patient_of(resource: Mapping[str, Any]) -> str | None:
    """The id of the patient whose compartment holds ``resource``, if any."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    references: list[object] = [resource.get(name) for name in _PATIENT_ELEMENTS]
    participants = resource.get("participant")
    if isinstance(participants, list):  # Appointment
        references += [p.get("actor") for p in participants if isinstance(p, Mapping)]
    for ref in references:
        text = ref.get("reference") if isinstance(ref, Mapping) else None
        if isinstance(text, str) and text.startswith("Patient/"):
            return text.removeprefix("Patient/")
    return None


class FixtureFhirStore:
    """Resources indexed by type and id, and by patient, in the order they were added."""

    def __init__(self, resources: Iterable[Mapping[str, Any]]) -> None:
        self._by_key: dict[tuple[str, str], Resource] = {}
        self._by_type: dict[str, list[Resource]] = {}
        for resource in resources:
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if not isinstance(rtype, str) or not isinstance(rid, str):
                continue
            existing = self._by_key.get((rtype, rid))
            if existing is not None:
                if existing != resource:
                    raise DuplicateResourceError(f"{rtype}/{rid} is defined twice, differently")
                continue
            copy = dict(resource)
            self._by_key[(rtype, rid)] = copy
            self._by_type.setdefault(rtype, []).append(copy)

    @property
    def resource_types(self) -> frozenset[str]:
        return frozenset(self._by_type)

    def __len__(self) -> int:
        return len(self._by_key)

    def read(self, resource_type: str, resource_id: str) -> Resource | None:
        return self._by_key.get((resource_type, resource_id))

    def search(self, search: Search) -> list[Resource]:
        found = []
        for resource in self._by_type.get(search.resource_type, ()):
            if search.ids is not None and resource.get("id") not in search.ids:
                continue
            if search.patient_ids is not None and patient_of(resource) not in search.patient_ids:
                continue
            if not all(f.matches(resource.get("code")) for f in search.codes):
                continue
            found.append(resource)
        return found
