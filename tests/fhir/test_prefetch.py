"""Prefetch resolution per the CDS Hooks table, against a real loopback FHIR server."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from typing import Any

from cds_service.config import Settings
from cds_service.fhir.client import FhirClient
from cds_service.fhir.prefetch import Resolved, build_record, required_missing, resolve
from cds_service.services import SERVICES_BY_ID
from cds_service.terminology import Terminology
from tests.fhir.loopback import KEY_OF_SEARCH, prefetch_for

# The engine filters observations with the terminology's list of codes the rules read.
ACCEPT = Terminology.load(Settings()).observation_filter

TOKEN = "tok-3f9a8b7c6d5e4f30-never-log-me"
VIEW = "itb-patient-view"
REQUIRED = SERVICES_BY_ID[VIEW].required_keys
CONTEXT = {"userId": "Practitioner/doc-7", "patientId": "itb-1"}
ALL_KEYS = {"patient", *KEY_OF_SEARCH.values()}


def run_resolve(
    settings: Settings,
    prefetch: Mapping[str, Any] | None,
    fhir_server: str | None,
    service_id: str = VIEW,
    token: str | None = TOKEN,
) -> Resolved:
    async def go() -> Resolved:
        async with FhirClient(settings) as client:
            return await resolve(
                SERVICES_BY_ID[service_id].templates(settings), CONTEXT, prefetch, fhir_server,
                token, client, settings.fhir_budget_seconds,
            )

    return asyncio.run(go())


def fetched_types(server) -> set[str]:
    return {path.split("?")[0].split("/")[2] for path in server.behaviour.seen_paths}


def test_absent_keys_are_fetched_and_supplied_ones_are_not(fhir_server):
    prefetch = prefetch_for(fhir_server.behaviour.chart)
    partial = {k: prefetch[k] for k in ("patient", "conditions", "devices")}
    resolved = run_resolve(Settings(), partial, fhir_server.base_url)
    assert set(resolved.supplied) == {"patient", "conditions", "devices"}
    assert set(resolved.fetched) == ALL_KEYS - {"patient", "conditions", "devices"}
    assert resolved.missing == () and resolved.failed == ()
    assert {"Patient", "Condition", "Device"}.isdisjoint(fetched_types(fhir_server))
    assert len(resolved.query_log) == len(resolved.fetched)


def test_null_means_nothing_found_and_is_not_refetched(fhir_server):
    prefetch = prefetch_for(fhir_server.behaviour.chart)
    prefetch["allergies"] = None
    resolved = run_resolve(Settings(), prefetch, fhir_server.base_url)
    assert resolved.resources["allergies"] == ()
    assert "allergies" in resolved.supplied
    assert fhir_server.behaviour.seen_paths == []


def test_an_operation_outcome_is_refetched(fhir_server):
    prefetch = prefetch_for(fhir_server.behaviour.chart)
    prefetch["devices"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    resolved = run_resolve(Settings(), prefetch, fhir_server.base_url)
    assert resolved.fetched == ("devices",)
    assert [r["id"] for r in resolved.resources["devices"]] == ["pump"]
    assert fhir_server.behaviour.seen_paths == ["/fhir/Device?patient=itb-1"]


def test_a_paginated_prefetch_bundle_is_completed_from_fhir_server(fhir_server):
    fhir_server.behaviour.page_size = 3
    observations = [r for r in fhir_server.behaviour.chart if r["resourceType"] == "Observation"]
    prefetch = prefetch_for(fhir_server.behaviour.chart)
    prefetch["observations"]["entry"] = [{"resource": r} for r in observations[:3]]
    prefetch["observations"]["link"] = [
        {"relation": "next", "url": f"{fhir_server.base_url}/Observation?patient=itb-1&_page=2"}
    ]
    resolved = run_resolve(Settings(), prefetch, fhir_server.base_url)
    assert [r["id"] for r in resolved.resources["observations"]] == [r["id"] for r in observations]
    assert "observations" in resolved.supplied and resolved.failed == ()


def test_a_slow_server_cannot_hold_the_call_past_its_budget(fhir_server):
    fhir_server.behaviour.modes = {"*": "slow"}
    settings = Settings(fhir_budget_seconds=0.5)
    started = time.monotonic()
    resolved = run_resolve(settings, None, fhir_server.base_url)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5 + 0.2, f"resolve took {elapsed:.3f} s"
    assert set(resolved.missing) == ALL_KEYS
    assert {f.reason for f in resolved.failed} == {"time budget of 0.5 s ran out"}


def test_failing_server_makes_keys_missing_with_reasons(fhir_server):
    fhir_server.behaviour.modes = {
        "Device": "error-500",
        "Procedure": "invalid-json",
        "Condition": "loop",
    }
    resolved = run_resolve(Settings(), None, fhir_server.base_url)
    reasons = {f.key: f.reason for f in resolved.failed}
    assert reasons == {
        "devices": "HTTP 500",
        "procedures": "response is not valid JSON",
        "conditions": "next link loops back to a page already read",
    }
    assert set(resolved.missing) == {"devices", "procedures"}
    assert required_missing(resolved, REQUIRED) == ["devices", "procedures"]


def test_no_prefetch_and_no_fhir_server_means_required_data_is_missing():
    resolved = run_resolve(Settings(), None, None)
    assert set(resolved.missing) == ALL_KEYS
    assert required_missing(resolved, REQUIRED) == [
        "patient",
        "conditions",
        "medicationRequests",
        "devices",
        "procedures",
    ]
    assert resolved.query_log == ()


def test_missing_optional_keys_do_not_block_an_answer_but_are_marked_unavailable():
    prefetch = prefetch_for([{"resourceType": "Patient", "id": "itb-1"}])  # empty searchsets...
    del prefetch["appointments"], prefetch["observations"]  # ...and two keys not sent
    resolved = run_resolve(Settings(), prefetch, None)
    assert required_missing(resolved, REQUIRED) == []
    record = build_record(resolved, None, ACCEPT)
    assert record.unavailable == ("observations", "appointments")


def test_order_hooks_do_not_ask_for_observations_or_appointments(fhir_server):
    resolved = run_resolve(Settings(), None, fhir_server.base_url, service_id="itb-order-sign")
    assert set(resolved.fetched) == ALL_KEYS - {"observations", "appointments"}
    assert "Observation" not in fetched_types(fhir_server)


def test_the_bearer_token_reaches_the_server_and_nowhere_else(fhir_server, caplog):
    caplog.set_level("DEBUG")
    fhir_server.behaviour.modes = {
        "Device": "error-500",
        "Procedure": "foreign-next",
        "Condition": "slow",
    }
    fhir_server.behaviour.page_size = 1
    resolved = run_resolve(Settings(fhir_budget_seconds=0.5), None, fhir_server.base_url)
    assert set(fhir_server.behaviour.seen_authorization) == {f"Bearer {TOKEN}"}
    assert required_missing(resolved, REQUIRED)
    for text in (repr(resolved), caplog.text):
        assert TOKEN not in text
    assert "conditions" in caplog.text  # the failures were logged, without the token


def test_records_from_prefetch_and_from_fhir_fallback_are_equal(fhir_server):
    fhir_server.behaviour.page_size = 2  # fallback pages; prefetch arrives in one piece
    settings = Settings()
    chart = fhir_server.behaviour.chart
    from_prefetch = run_resolve(settings, prefetch_for(chart), None)
    from_server = run_resolve(settings, None, fhir_server.base_url)
    assert from_server.fetched and not from_server.supplied and not from_prefetch.fetched
    record_a = build_record(from_prefetch, None, ACCEPT)
    record_b = build_record(from_server, None, ACCEPT)
    assert record_a == record_b
    assert record_a.patient is not None and len(record_a.medications) == 5
    assert len(record_a.skipped) == 1  # the malformed Condition, in both


def test_records_do_not_depend_on_the_order_of_keys_or_entries(fhir_server):
    settings = Settings()
    prefetch = prefetch_for(fhir_server.behaviour.chart)
    reversed_prefetch: dict[str, Any] = {}
    for key in reversed(list(prefetch)):
        value = copy.deepcopy(prefetch[key])
        if value.get("resourceType") == "Bundle":
            value["entry"].reverse()
        reversed_prefetch[key] = value
    a = build_record(run_resolve(settings, prefetch, None), None, ACCEPT)
    b = build_record(run_resolve(settings, reversed_prefetch, None), None, ACCEPT)
    assert a.conditions == b.conditions and a.medications == b.medications
    assert a.observations == b.observations and a.procedures == b.procedures


def test_a_prefetch_without_its_referenced_medication_gets_it_from_the_server(fhir_server):
    """An EHR that ran the search without _include: the Medication the tizanidine order
    references (its strength converts a dose in tablets) is fetched, and nothing else."""
    prefetch = prefetch_for(fhir_server.behaviour.chart)
    bundle = prefetch["medicationRequests"]
    bundle["entry"] = [e for e in bundle["entry"]
                       if e["resource"]["resourceType"] != "Medication"]
    resolved = run_resolve(Settings(), prefetch, fhir_server.base_url)
    assert "medicationRequests" in resolved.supplied
    assert fhir_server.behaviour.seen_paths == ["/fhir/Medication?_id=tiz4"]
    assert any(r.get("resourceType") == "Medication" and r.get("id") == "tiz4"
               for r in resolved.resources["medicationRequests"])


def test_a_complete_prefetch_sends_no_query(fhir_server):
    resolved = run_resolve(Settings(), prefetch_for(fhir_server.behaviour.chart),
                           fhir_server.base_url)
    assert resolved.supplied and not resolved.fetched
    assert fhir_server.behaviour.seen_paths == []
