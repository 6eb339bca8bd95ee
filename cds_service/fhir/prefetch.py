"""Prefetch resolution: what the CDS client sent, what must be fetched, what is unobtainable.

Per key (CDS Hooks 2.0, Prefetch): absent -> fetch; ``null`` -> the query ran and found
nothing, so empty and never refetched; a Bundle -> its entries (its ``next`` page fetched when
a fhirServer is given); a single resource -> used; an OperationOutcome -> the client's query
failed, so fetch it as if absent. Every gap is fetched in one concurrent call under one budget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cds_service.fhir.allowlist import FhirServerRefused
from cds_service.fhir.client import FetchResult, QueryLogEntry, bundle_entries, next_link
from cds_service.fhir.memo import ValidationMemo
from cds_service.fhir.parse import DRAFT_ORDERS, Screen, parse_record
from cds_service.fhir.record import PatientRecord
from cds_service.fhir.templates import UnfillableTemplateError, render


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

    resources: dict[str, tuple[object, ...]]
    supplied: tuple[str, ...] = ()
    fetched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    failed: tuple[KeyFailure, ...] = ()
    query_log: tuple[QueryLogEntry, ...] = ()


@dataclass
class _Plan:
    """What the prefetch gave per key, and what must still be fetched."""

    resources: dict[str, list[object]] = dataclasses.field(default_factory=dict)
    supplied: list[str] = dataclasses.field(default_factory=list)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)
    queries: dict[str, str] = dataclasses.field(default_factory=dict)
    continuations: dict[str, str] = dataclasses.field(default_factory=dict)
    fetched: list[str] = dataclasses.field(default_factory=list)


def _take_prefetched(plan: _Plan, key: str, value: object, fhir_server: str | None) -> bool:
    """Use one prefetched value; False when the client's query failed (fetch it ourselves)."""
    if value is None:
        plan.resources[key] = []
        plan.supplied.append(key)
        return True
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        plan.resources[key] = bundle_entries(value)
        plan.supplied.append(key)
        link = next_link(value)
        if link and fhir_server:
            plan.continuations[key] = link
        elif link:
            plan.failures[key] = "prefetched Bundle has more pages and no fhirServer"
        return True
    if (
        isinstance(value, dict)
        and isinstance(value.get("resourceType"), str)
        and value["resourceType"] != "OperationOutcome"
    ):
        plan.resources[key] = [value]
        plan.supplied.append(key)
        return True
    return False  # an OperationOutcome (or garbage)


def _plan(templates: Mapping[str, str], request_context: Mapping[str, Any],
          prefetch: Mapping[str, Any], fhir_server: str | None) -> _Plan:
    plan = _Plan()
    for key, template in templates.items():
        absent = "not prefetched"
        if key in prefetch:
            if _take_prefetched(plan, key, prefetch[key], fhir_server):
                continue
            absent = "the client's prefetch failed"
        if not fhir_server:
            plan.failures[key] = f"{absent} and no fhirServer to fetch it from"
            continue
        try:
            plan.queries[key] = render(template, request_context)
        except UnfillableTemplateError as exc:
            plan.failures[key] = f"query not sent: {exc}"
    return plan


def _take_fetched(plan: _Plan, outcome: FetchResult) -> None:
    for key, result in outcome.results.items():
        if key in plan.continuations:
            plan.resources[key].extend(result.resources)
            problem = result.error or result.note
            if problem:
                plan.failures[key] = f"prefetched Bundle's next page: {problem}"
            continue
        if result.ok:
            plan.resources[key] = list(result.resources)
            plan.fetched.append(key)
            if result.note:
                plan.failures[key] = result.note
        else:
            plan.failures[key] = result.error or "failed"


# Medication uses whose Medication may be a separate resource (the strength of a
# referenced Medication converts a dose charted in mL or tablets).
_MEDICATION_USE_KEYS = frozenset({"medicationRequests", "medicationStatements",
                                  "medicationAdministrations"})


def _medication_id(resource: object) -> str | None:
    ref = resource.get("medicationReference") if isinstance(resource, Mapping) else None
    text = ref.get("reference") if isinstance(ref, Mapping) else None
    if not isinstance(text, str) or "Medication/" not in text:
        return None  # absent, or "#id" (contained)
    found = text.rsplit("Medication/", 1)[1].split("/", 1)[0]
    return found if found.replace("-", "").replace(".", "").isalnum() else None


def _unresolved_medications(plan: _Plan) -> dict[str, str]:
    """Per medication-use key (prefetched or fetched), a query for the Medications it
    references but did not bring (a server that ignores ``_include``, an EHR that does not
    run it)."""
    queries: dict[str, str] = {}
    for key in (*plan.supplied, *plan.fetched):
        if key not in _MEDICATION_USE_KEYS:
            continue
        items = plan.resources.get(key, [])
        have = {r.get("id") for r in items
                if isinstance(r, Mapping) and r.get("resourceType") == "Medication"}
        wanted = sorted({i for i in map(_medication_id, items) if i and i not in have})
        if wanted:
            queries[f"{key}:Medication"] = f"Medication?_id={','.join(wanted)}"
    return queries


async def _fetch_medications(plan: _Plan, client: Fetcher, fhir_server: str,
                             access_token: str | None, budget_s: float | None
                             ) -> tuple[QueryLogEntry, ...]:
    queries = _unresolved_medications(plan)
    if not queries:
        return ()
    outcome = await client.fetch_all(fhir_server, access_token, queries, budget_s)
    for name, result in outcome.results.items():
        if result.ok:
            plan.resources[name.rsplit(":", 1)[0]].extend(result.resources)
    return outcome.log


async def resolve(
    templates: Mapping[str, str],
    request_context: Mapping[str, Any],
    prefetch: Mapping[str, Any] | None,
    fhir_server: str | None,
    access_token: str | None,
    client: Fetcher,
    budget_s: float | None = None,
    *,
    server_allowed: bool = True,
) -> Resolved:
    """``templates``: the service's prefetch templates (key -> query), in order. Raises
    ``FhirServerRefused``, before any request, when ``fhir_server`` must be queried and
    ``server_allowed`` is false (a server the prefetch makes unnecessary is never contacted,
    so it need not be allowed)."""
    plan = _plan(templates, request_context, prefetch or {}, fhir_server)
    query_log: tuple[QueryLogEntry, ...] = ()
    if fhir_server and (plan.queries or plan.continuations):
        if not server_allowed:
            raise FhirServerRefused(fhir_server)
        outcome = await client.fetch_all(
            fhir_server, access_token, {**plan.queries, **plan.continuations}, budget_s
        )
        query_log = outcome.log
        _take_fetched(plan, outcome)
    if fhir_server and server_allowed:
        query_log += await _fetch_medications(plan, client, fhir_server, access_token,
                                              budget_s)
    failures = plan.failures
    return Resolved(
        resources={key: tuple(items) for key, items in plan.resources.items()},
        supplied=tuple(plan.supplied),
        fetched=tuple(plan.fetched),
        missing=tuple(key for key in templates if key not in plan.resources),
        failed=tuple(KeyFailure(key, failures[key]) for key in templates if key in failures),
        query_log=query_log,
    )


def required_missing(resolved: Resolved, required: Sequence[str]) -> list[str]:
    """The ``required`` keys for which no data at all could be obtained."""
    return [key for key in required if key in resolved.missing]


def build_record(
    resolved: Resolved,
    draft_orders: object | None,
    accepts_observation: Callable[[Mapping[str, Any]], bool],
    screen: Screen | None = None,
    memo: ValidationMemo | None = None,
    draft_source: str = DRAFT_ORDERS,
) -> PatientRecord:
    """parse_record over what was resolved, with the keys that stayed missing marked.
    ``accepts_observation`` is the terminology's ``observation_filter``."""
    record = parse_record(resolved.resources, draft_orders, accepts_observation, screen, memo,
                          draft_source)
    return dataclasses.replace(record, unavailable=resolved.missing)
