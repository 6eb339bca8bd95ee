"""Which raw conditions, medications and procedures any rule can read: the parser's
pre-validation screen.

Validating a resource with fhir.resources costs ~0.3 ms, and a typical chart carries dozens of
unrelated conditions, medications and procedures. Every rule reads medications only through
``chart.oral_agent`` / ``is_intrathecal`` / ``is_intrathecal_baclofen``, conditions only
through the spasticity-origin, dystonia and overdose-signs value sets, and procedures only
through the ITB procedure value sets (implant, removal, refill, trial, replacement), so the
screen asks exactly those matchers, on a concept built straight from the raw JSON. A rule that
starts to read other medications, conditions or procedures must widen this screen (tests/rules
pin it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cds_service.fhir.parse import Screen, local_reference
from cds_service.fhir.record import Coding, Concept
from cds_service.terminology import Terminology

CONDITION_VALUE_SETS = ("spasticity-origin", "dystonia", "overdose-signs")
PROCEDURE_VALUE_SETS = (
    "itb-pump-implant",
    "itb-pump-removal",
    "itb-pump-refill",
    "itb-trial-procedure",
    "itb-pump-replacement",
)
MEDICATION_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationAdministration")

class _Unreadable(Exception):
    """A shape the screen does not understand: validation (and its repairs) must decide."""


def raw_concept(value: object) -> Concept | None:
    """The CodeableConcept as the parser will read it; raises _Unreadable for any shape the
    repairer might still mend (one coding sent as an object is wrapped in a list here too)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Unreadable
    codings = value.get("coding", [])
    if isinstance(codings, dict):
        codings = [codings]
    text = value.get("text")
    if not isinstance(codings, list) or not (text is None or isinstance(text, str)):
        raise _Unreadable
    out = []
    for c in codings:
        if not isinstance(c, dict):
            raise _Unreadable
        fields = (c.get("system"), c.get("code"), c.get("display"))
        if not all(f is None or isinstance(f, str) for f in fields):
            raise _Unreadable
        out.append(Coding(system=fields[0], code=fields[1], display=fields[2]))
    return Concept(codings=tuple(out), text=text)


def _referenced_medication(
    raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | bool | None:
    """The Medication a resource points at; True when it points somewhere we cannot see."""
    ref = raw.get("medicationReference")
    if not isinstance(ref, dict):
        return None
    target = ref.get("reference")
    if not isinstance(target, str):
        return True
    if target.startswith("#"):
        for item in raw.get("contained") or ():
            if isinstance(item, dict) and item.get("id") == target[1:]:
                return item
        return True
    found = medications.get(local_reference(target))
    return found if found is not None else True


def _dosages(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    value = raw.get("dosageInstruction", raw.get("dosage"))
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [d for d in value if isinstance(d, dict)]
    return []


def make_screen(terms: Terminology) -> Screen:
    def wants(
        resource_type: str, raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
    ) -> bool:
        try:
            return read(resource_type, raw, medications)
        except _Unreadable:
            return True

    def read(
        resource_type: str, raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
    ) -> bool:
        if resource_type == "Condition":
            code = raw_concept(raw.get("code"))
            return code is None or any(terms.match(v, code) for v in CONDITION_VALUE_SETS)
        if resource_type == "Procedure":
            code = raw_concept(raw.get("code"))
            return code is None or any(terms.match(v, code) for v in PROCEDURE_VALUE_SETS)
        if resource_type not in MEDICATION_TYPES:
            return True
        target = _referenced_medication(raw, medications)
        if target is True:
            return True  # an unresolvable reference: let validation and the rules decide
        form = None
        if isinstance(target, Mapping):
            medication = raw_concept(target.get("code"))
            form = raw_concept(target.get("form"))
        else:
            medication = raw_concept(raw.get("medicationCodeableConcept"))
        if medication is not None and (
            terms.match("oral-antispasticity", medication) is not None
            or terms.match("intrathecal-baclofen", medication) is not None
        ):
            return True
        if form is not None and terms.match("intrathecal-route", form) is not None:
            return True
        for dosage in _dosages(raw):
            text = dosage.get("text")
            route = raw_concept(dosage.get("route"))
            if terms.match("intrathecal-route", route, text if isinstance(text, str) else None):
                return True
        return False

    return wants
