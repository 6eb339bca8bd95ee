"""The FHIR client against a real loopback server: paging, caps, and misbehaving servers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from cds_service.config import Settings
from cds_service.fhir.client import FetchResult, FhirClient

TOKEN = "s3cret-bearer-token-value"


def fetch(
    settings: Settings, base_url: str, queries: Mapping[str, str], token: str | None = TOKEN
) -> FetchResult:
    async def go() -> FetchResult:
        async with FhirClient(settings) as client:
            return await client.fetch_all(base_url, token, queries)

    return asyncio.run(go())


def test_search_pages_are_followed_through_next_links(fhir_server):
    fhir_server.behaviour.page_size = 3
    result = fetch(Settings(), fhir_server.base_url, {"observations": "Observation?patient=itb-1"})
    obs = result.results["observations"]
    assert obs.ok and obs.note is None
    assert obs.pages == 3  # 8 observations in pages of 3
    assert [r["id"] for r in obs.resources] == [
        r["id"] for r in fhir_server.behaviour.chart if r["resourceType"] == "Observation"
    ]
    assert [e.page for e in result.log] == [1, 2, 3]
    assert all(e.status == 200 and e.outcome == "ok" for e in result.log)


def test_paging_stops_at_the_page_cap_and_says_so(fhir_server):
    fhir_server.behaviour.page_size = 1
    fhir_server.behaviour.modes = {"Observation": "endless"}
    result = fetch(
        Settings(fhir_page_cap=3), fhir_server.base_url, {"o": "Observation?patient=itb-1"}
    )
    obs = result.results["o"]
    assert obs.ok and obs.pages == 3
    assert obs.note == "page cap of 3 reached"
    assert len(fhir_server.behaviour.seen_paths) == 3


def test_a_next_link_loop_is_detected(fhir_server):
    fhir_server.behaviour.modes = {"Device": "loop"}
    result = fetch(Settings(), fhir_server.base_url, {"devices": "Device?patient=itb-1"})
    devices = result.results["devices"]
    assert devices.ok and devices.pages == 1
    assert devices.note is not None and "loop" in devices.note
    assert len(fhir_server.behaviour.seen_paths) == 1


def test_a_next_link_to_another_host_is_not_followed(fhir_server):
    fhir_server.behaviour.page_size = 2
    fhir_server.behaviour.modes = {"Procedure": "foreign-next"}
    result = fetch(Settings(), fhir_server.base_url, {"procedures": "Procedure?patient=itb-1"})
    procedures = result.results["procedures"]
    assert procedures.pages == 1
    assert procedures.note is not None and "outside fhirServer" in procedures.note
    assert fhir_server.behaviour.seen_hosts == [f"127.0.0.1:{fhir_server.port}"]


def test_server_errors_bad_json_and_non_bundles_fail_only_their_own_key(fhir_server):
    fhir_server.behaviour.modes = {
        "Condition": "error-500",
        "Device": "invalid-json",
        "Procedure": "not-bundle",
        "Appointment": "outcome",
    }
    result = fetch(
        Settings(),
        fhir_server.base_url,
        {
            "conditions": "Condition?patient=itb-1",
            "devices": "Device?patient=itb-1",
            "procedures": "Procedure?patient=itb-1",
            "appointments": "Appointment?patient=itb-1",
            "patient": "Patient/itb-1",
            "missing": "Patient/nobody",
        },
    )
    errors = {key: r.error for key, r in result.results.items()}
    assert errors == {
        "conditions": "HTTP 500",
        "devices": "response is not valid JSON",
        "procedures": "response is not a FHIR resource",
        "appointments": "server answered with an OperationOutcome",
        "patient": None,
        "missing": "HTTP 404",
    }
    assert result.results["patient"].resources[0]["id"] == "itb-1"


def test_the_whole_call_honours_one_deadline(fhir_server):
    fhir_server.behaviour.modes = {"Condition": "slow"}
    settings = Settings(fhir_budget_seconds=0.3)
    result = fetch(
        settings,
        fhir_server.base_url,
        {"conditions": "Condition?patient=itb-1", "devices": "Device?patient=itb-1"},
    )
    assert result.results["conditions"].error == "time budget of 0.3 s ran out"
    assert result.results["devices"].ok
    slow = [e for e in result.log if e.key == "conditions"]
    assert slow[0].status is None and slow[0].outcome == "cancelled at the time budget"


def test_an_unreachable_server_is_a_failure_not_an_exception():
    with_closed_port = "http://127.0.0.1:9/fhir"
    result = fetch(Settings(), with_closed_port, {"patient": "Patient/itb-1"})
    error = result.results["patient"].error
    assert error is not None and error.startswith("request failed (")


def test_the_token_goes_only_in_the_authorization_header(fhir_server, caplog):
    caplog.set_level("DEBUG")
    fhir_server.behaviour.modes = {"Condition": "error-500", "Device": "loop"}
    result = fetch(
        Settings(),
        fhir_server.base_url,
        {"conditions": "Condition?patient=itb-1", "devices": "Device?patient=itb-1"},
    )
    assert set(fhir_server.behaviour.seen_authorization) == {f"Bearer {TOKEN}"}
    assert TOKEN not in repr(result)
    assert TOKEN not in caplog.text
    assert caplog.text  # something was logged, so the check above means something


def test_no_token_means_no_authorization_header(fhir_server):
    fetch(Settings(), fhir_server.base_url, {"patient": "Patient/itb-1"}, token=None)
    assert fhir_server.behaviour.seen_authorization == [None]
