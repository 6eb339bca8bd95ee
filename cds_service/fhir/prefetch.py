"""Prefetch resolution: what the CDS client sent, what must be fetched, what is unobtainable.

Per key (CDS Hooks 2.0, Prefetch): absent -> fetch; ``null`` -> the query ran and found
nothing, so empty and never refetched; a Bundle -> its entries (its ``next`` page fetched when
a fhirServer is given); a single resource -> used; an OperationOutcome -> the client's query
failed, so fetch it as if absent. Every gap is fetched in one concurrent call under one budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cds_service.config import Settings
from cds_service.fhir.client import FetchResult, QueryLogEntry, bundle_entries, next_link
from cds_service.fhir.memo import ValidationMemo
from cds_service.fhir.parse import parse_record
from cds_service.fhir.record import PatientRecord
from cds_service.fhir.templates import (
    UnfillableTemplateError,
    prefetch_templates,
    render,
)

# Keys without which no rule can answer correctly. Candidacy needs the diagnoses and the
# medication history; every pump rule (refill, battery, trial) starts from the pump (devices)
# and its implant/refill/trial procedures, and age comes from the patient. Observations,
# statements, administrations, allergies, adverse events, service requests and appointments
# refine an answer: when they are missing a card says so (PatientRecord.unavailable) instead
# of the call failing.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "itb-patient-view": ("patient", "conditions", "medicationRequests", "devices", "procedures"),
    "itb-order-select": ("patient", "conditions", "medicationRequests", "devices", "procedures"),
    "itb-order-sign": ("patient", "conditions", "medicationRequests", "devices", "procedures"),
}


class Fetcher(Protocol):
    async def fetch_all(
        self,
        base_url: str,
        token: str | None,
        queries: Mapping[str, str],
        budget_s: float | None = None,
    ) -> FetchResult: ...


@dataclass(frozen=True, slots=True)
class KeyFailure:
    key: str
    reason: str  # our own words; never a server's text and never a token


@dataclass(frozen=True, slots=True)
class Resolved:
    """Per key the raw resources obtained, and how each key fared.

    ``supplied``: came in the request's prefetch (including ``null``). ``fetched``: fetched
    from fhirServer (at least the first page). ``missing``: no data at all. ``failed``: every
    key where something went wrong, with why; a key can be in ``failed`` and still have data
    (a prefetched Bundle whose next page failed, a fetch stopped at the page cap).
    """

    service_id: str
    resources: dict[str, tuple[object, ...]]
    supplied: tuple[str, ...] = ()
    fetched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    failed: tuple[KeyFailure, ...] = ()
    query_log: tuple[QueryLogEntry, ...] = ()


class RequiredDataUnavailable(Exception):
    """Answer 412 with an OperationOutcome carrying ``message`` (it holds no secrets)."""

    def __init__(self, keys: list[str], message: str) -> None:
        super().__init__(message)
        self.keys = keys
        self.message = message


async def resolve(
    service_id: str,
    request_context: Mapping[str, Any],
    prefetch: Mapping[str, Any] | None,
    fhir_server: str | None,
    access_token: str | None,
    client: Fetcher,
    settings: Settings,
) -> Resolved:
    templates = prefetch_templates(service_id, settings)
    prefetch = prefetch or {}
    resources: dict[str, list[object]] = {}
    supplied: list[str] = []
    failures: dict[str, str] = {}
    queries: dict[str, str] = {}
    continuations: dict[str, str] = {}

    for key, template in templates.items():
        absent = "not prefetched"
        if key in prefetch:
            value = prefetch[key]
            if value is None:
                resources[key] = []
                supplied.append(key)
                continue
            if isinstance(value, dict) and value.get("resourceType") == "Bundle":
                resources[key] = bundle_entries(value)
                supplied.append(key)
                link = next_link(value)
                if link and fhir_server:
                    continuations[key] = link
                elif link:
                    failures[key] = "prefetched Bundle has more pages and no fhirServer"
                continue
            if (
                isinstance(value, dict)
                and isinstance(value.get("resourceType"), str)
                and value["resourceType"] != "OperationOutcome"
            ):
                resources[key] = [value]
                supplied.append(key)
                continue
            # An OperationOutcome (or garbage): the client's query failed; fetch it ourselves.
            absent = "the client's prefetch failed"
        if not fhir_server:
            failures[key] = f"{absent} and no fhirServer to fetch it from"
            continue
        try:
            queries[key] = render(template, request_context)
        except UnfillableTemplateError as exc:
            failures[key] = f"query not sent: {exc}"

    fetched: list[str] = []
    query_log: tuple[QueryLogEntry, ...] = ()
    if fhir_server and (queries or continuations):
        outcome = await client.fetch_all(
            fhir_server,
            access_token,
            {**queries, **continuations},
            settings.fhir_budget_seconds,
        )
        query_log = outcome.log
        for key, result in outcome.results.items():
            if key in continuations:
                resources[key].extend(result.resources)
                problem = result.error or result.note
                if problem:
                    failures[key] = f"prefetched Bundle's next page: {problem}"
                continue
            if result.ok:
                resources[key] = list(result.resources)
                fetched.append(key)
                if result.note:
                    failures[key] = result.note
            else:
                failures[key] = result.error or "failed"

    missing = tuple(key for key in templates if key not in resources)
    return Resolved(
        service_id=service_id,
        resources={key: tuple(items) for key, items in resources.items()},
        supplied=tuple(supplied),
        fetched=tuple(fetched),
        missing=missing,
        failed=tuple(KeyFailure(key, failures[key]) for key in templates if key in failures),
        query_log=query_log,
    )


def required_missing(resolved: Resolved) -> list[str]:
    required = REQUIRED_KEYS.get(resolved.service_id, ())
    return [key for key in required if key in resolved.missing]


def ensure_required(resolved: Resolved) -> None:
    """Raise RequiredDataUnavailable when ``required_missing`` is non-empty."""
    keys = required_missing(resolved)
    if not keys:
        return
    reasons = {f.key: f.reason for f in resolved.failed}
    detail = "; ".join(f"{key}: {reasons.get(key, 'unavailable')}" for key in keys)
    raise RequiredDataUnavailable(keys, f"Required data could not be obtained ({detail})")


def build_record(
    resolved: Resolved,
    draft_orders: object | None,
    accepts_observation: Callable[[Mapping[str, Any]], bool],
    screen: Callable[[str, Mapping[str, Any], Mapping[str, Mapping[str, Any]]], bool]
    | None = None,
    memo: ValidationMemo | None = None,
) -> PatientRecord:
    """parse_record over what was resolved, with the keys that stayed missing marked.
    ``accepts_observation`` is the terminology's ``observation_filter``."""
    record = parse_record(resolved.resources, draft_orders, accepts_observation, screen, memo)
    return dataclasses.replace(record, unavailable=resolved.missing)
