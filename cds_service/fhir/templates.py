"""Prefetch templates per service, and rendering them against a hook's context.

The key names and queries are fixed by the project (shared with fixtures and rules); the
observation query asks only for the local codes the rules read, so an EHR never ships a
patient's whole vital-sign history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cds_service.config import Settings
from cds_service.terminology.terms import OBSERVATION_CODES, observed_value_set_codes

# Local observation codes (in settings.local_code_system) that some rule reads: one list,
# owned by the terminology.
RULE_OBSERVATION_CODES: tuple[str, ...] = OBSERVATION_CODES

_BASE_TEMPLATES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    # A referenced (not contained) Medication carries the strength that converts a dose
    # charted in mL or tablets: the search brings it along.
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}"
                          "&_include=MedicationRequest:medication",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}"
                            "&_include=MedicationStatement:medication",
    "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}"
                                 "&_include=MedicationAdministration:medication",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    "adverseEvents": "AdverseEvent?subject=Patient/{{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&code={codes}",
    "devices": "Device?patient={{context.patientId}}",
    "serviceRequests": "ServiceRequest?patient={{context.patientId}}",
    "appointments": "Appointment?patient={{context.patientId}}",
}

# Every prefetch key a service can ask for, in the order discovery lists them.
ALL_KEYS: tuple[str, ...] = tuple(_BASE_TEMPLATES)


def observation_codes(settings: Settings) -> tuple[tuple[str, str], ...]:
    """(system, code) pairs of every observation a rule reads, local codes first."""
    pairs = [(settings.local_code_system, code) for code in RULE_OBSERVATION_CODES]
    pairs += observed_value_set_codes()  # overdose signs charted as Observations
    for entry in settings.mas_alternate_codes:
        system, sep, code = entry.partition("|")
        if sep and system and code:
            pairs.append((system, code))
    return tuple(dict.fromkeys(pairs))


def prefetch_templates(keys: Sequence[str], settings: Settings) -> dict[str, str]:
    """The templates of ``keys`` (names from ``ALL_KEYS``), observation codes filled in."""
    codes = ",".join(f"{system}|{code}" for system, code in observation_codes(settings))
    return {key: _BASE_TEMPLATES[key].replace("{codes}", codes) for key in keys}


_TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
# A FHIR id; anything else could smuggle query syntax or path segments into the request.
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_USER_TOKENS = {
    "Practitioner": "userPractitionerId",
    "PractitionerRole": "userPractitionerRoleId",
    "Patient": "userPatientId",
    "RelatedPerson": "userRelatedPersonId",
}


class UnfillableTemplateError(ValueError):
    """A template token has no (valid) value in the context; the query must not be sent."""

    def __init__(self, token: str) -> None:
        super().__init__(f"no value for {{{{{token}}}}}")
        self.token = token


def token_values(context: Mapping[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in ("patientId", "encounterId", "userId"):
        value = context.get(name)
        if isinstance(value, str) and value:
            values[f"context.{name}"] = value
    user = values.get("context.userId", "")
    resource_type, _, user_id = user.partition("/")
    if resource_type in _USER_TOKENS and user_id:
        values[_USER_TOKENS[resource_type]] = user_id
    return values


def render(template: str, context: Mapping[str, Any]) -> str:
    """Fill ``{{context.*}}`` and user tokens; raise UnfillableTemplateError otherwise."""
    values = token_values(context)

    def fill(match: re.Match[str]) -> str:
        token = match.group(1)
        value = values.get(token)
        if token == "context.userId":
            # userId is a reference ("Practitioner/123"), not an id.
            type_, _, id_ = (value or "").partition("/")
            ok = bool(type_.isalpha() and _FHIR_ID.match(id_))
        else:
            ok = value is not None and _FHIR_ID.match(value) is not None
        if not ok or value is None:
            raise UnfillableTemplateError(token)
        return value

    return _TOKEN.sub(fill, template)
