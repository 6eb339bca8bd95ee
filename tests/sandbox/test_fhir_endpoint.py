"""The read-only /fhir endpoint, over real HTTP: it answers every query the prefetch templates
make with the fixture's data (dates shifted to the service's today), pages with next links,
and lets the service's own FHIR fallback produce the same cards as a full prefetch."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from cds_service.config import PROJECT_ROOT, Settings
from cds_service.fhir.templates import render
from cds_service.sandbox.fixture_library import served_resources
from cds_service.sandbox.scenarios import Scenario, load_scenarios, shifted_request
from cds_service.services import SERVICES_BY_ID
from cds_service.terminology import Terminology
from tests.conftest import FIXED_NOW, LiveServer

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")
# Every scenario, whatever its hook: what the fallback fetches is the chart; the order hooks'
# draft orders and appointment-book's proposals travel in the context, with or without
# prefetch.
FETCHABLE = list(SCENARIOS)
PADDED = [s for s in SCENARIOS if "padded" in s.id]


def by_id(scenario_id: str) -> Scenario:
    return next(s for s in SCENARIOS if s.id == scenario_id)


def prefetch_resources(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per prefetch key, the resources the fixture's EHR sent."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, value in (request.get("prefetch") or {}).items():
        if value is None:
            out[key] = []
        elif value.get("resourceType") == "Bundle":
            out[key] = [e["resource"] for e in value.get("entry", [])]
        else:
            out[key] = [value]
    return out


def served_view(scenario: Scenario, request: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """The fixture's resources as the server must serve them (unique ids, same content)."""
    everything = [r for rs in prefetch_resources(request).values() for r in rs]
    served = served_resources(scenario.id, {"entry": [{"resource": r} for r in everything]})
    return {(r["resourceType"], r["id"]): r for r in served}


def get_all_pages(http: httpx.Client, url: str) -> tuple[list[dict[str, Any]], int]:
    resources: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        response = http.get(next_url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        bundle = response.json()
        Bundle.model_validate(bundle)
        assert bundle["type"] == "searchset"
        pages += 1
        resources += [e["resource"] for e in bundle.get("entry", [])]
        next_url = next(
            (link["url"] for link in bundle["link"] if link["relation"] == "next"), None
        )
    return resources, pages


@pytest.fixture
def fhir(live_web: tuple[LiveServer, httpx.Client]) -> Iterator[tuple[str, httpx.Client]]:
    server, http = live_web
    yield f"{server.url}/fhir", http


def test_metadata_is_a_valid_capability_statement_listing_every_prefetched_type(
    fhir: tuple[str, httpx.Client], settings: Settings
) -> None:
    base, http = fhir
    response = http.get(f"{base}/metadata")
    assert response.status_code == 200
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    served = {r["type"] for r in statement["rest"][0]["resource"]}
    for query in SERVICES_BY_ID["itb-patient-view"].templates(settings).values():
        assert query.split("?")[0].split("/")[0] in served


@pytest.mark.parametrize(
    "scenario",
    [by_id("refill-overdue"), *PADDED, by_id("battery-booked-appointment")],
    ids=lambda s: s.id,
)
def test_every_prefetch_query_returns_the_fixture_data_shifted_to_today(
    fhir: tuple[str, httpx.Client], settings: Settings, scenario: Scenario
) -> None:
    base, http = fhir
    request = shifted_request(scenario, FIXED_NOW)
    expected = served_view(scenario, request)
    sent = prefetch_resources(request)
    wanted_observation = Terminology.load(settings).observation_filter
    for key, template in SERVICES_BY_ID["itb-patient-view"].templates(settings).items():
        query = render(template, request["context"])
        if "?" not in query:  # a read
            response = http.get(f"{base}/{query}")
            assert response.status_code == 200, (key, response.text)
            got = [response.json()]
        else:
            got, _ = get_all_pages(http, f"{base}/{query}")
        # A padded fixture's EHR also sent resources the query did not ask for (other types,
        # unrelated observations); a real server answers only the query.
        resource_type = query.split("?")[0].split("/")[0]
        fixture = [r for r in sent.get(key, []) if r.get("resourceType") == resource_type]
        if key == "observations":
            fixture = [r for r in fixture if wanted_observation(r.get("code", {}))]
        assert len(got) == len(fixture), key
        for resource in got:
            assert resource == expected[(resource["resourceType"], resource["id"])], key


def test_dates_follow_the_service_clock(web_server: Callable[..., LiveServer]) -> None:
    scenario = by_id("refill-overdue")
    later = scenario.anchor + timedelta(days=40)
    server = web_server(clock=lambda: later)
    patient_id = scenario.request["context"]["patientId"]
    response = httpx.get(f"{server.url}/fhir/Patient/{patient_id}")
    assert response.json()["birthDate"] == shifted_request(scenario, later)["prefetch"][
        "patient"]["birthDate"]
    assert response.json()["birthDate"] != scenario.request["prefetch"]["patient"]["birthDate"]


@pytest.mark.parametrize("scenario", PADDED, ids=lambda s: s.id)
def test_searches_page_with_next_links_and_count(
    fhir: tuple[str, httpx.Client], scenario: Scenario
) -> None:
    base, http = fhir
    patient_id = scenario.request["context"]["patientId"]
    everything, pages = get_all_pages(http, f"{base}/Observation?patient={patient_id}&_count=1000")
    assert pages == 1
    assert len(everything) > 100  # the padded chart's vital signs
    paged, pages = get_all_pages(http, f"{base}/Observation?patient={patient_id}&_count=40")
    assert pages == -(-len(everything) // 40)
    assert [r["id"] for r in paged] == [r["id"] for r in everything]
    first = http.get(f"{base}/Observation", params={"patient": patient_id, "_count": "40"}).json()
    assert first["total"] == len(everything)
    assert len(first["entry"]) == 40


def test_subject_search_is_the_same_as_patient_search(fhir: tuple[str, httpx.Client]) -> None:
    base, http = fhir
    scenario = by_id("trial-adverse-respiratory-depression")
    patient_id = scenario.request["context"]["patientId"]
    by_subject, _ = get_all_pages(http, f"{base}/AdverseEvent?subject=Patient/{patient_id}")
    by_patient, _ = get_all_pages(http, f"{base}/AdverseEvent?patient={patient_id}")
    assert by_subject == by_patient
    assert len(by_subject) >= 1


@pytest.mark.parametrize(
    "path",
    ["Patient/no-such-patient", "Condition/cond-1", "Observation/..%2Fx", "Frobnicate/x"],
)
def test_unknown_ids_and_types_answer_404_with_an_operation_outcome(
    fhir: tuple[str, httpx.Client], path: str
) -> None:
    base, http = fhir
    response = http.get(f"{base}/{path}")
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["code"] == "not-found"


def test_a_bad_count_is_a_400_operation_outcome(fhir: tuple[str, httpx.Client]) -> None:
    base, http = fhir
    response = http.get(f"{base}/Observation", params={"_count": "-1"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def card_view(body: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    cards = []
    for card in body["cards"]:
        finding = card["extension"]["itb-cds.finding"]
        cards.append((finding["rule"], finding["outcome"], card["indicator"], card["summary"]))
    return sorted(cards)


@pytest.fixture(scope="module")
def fallback_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    from cds_service.app import create_app
    from tests.conftest import free_port, make_settings

    port = free_port()
    settings = make_settings(
        tmp_path_factory.mktemp("fallback"),
        public_base_url=f"http://127.0.0.1:{port}",
        # The service fetches from itself on a shared 2-core machine: be generous.
        fhir_budget_seconds=20.0,
        fhir_timeout_seconds=20.0,
    )
    server = LiveServer(create_app(settings, clock=lambda: FIXED_NOW), port)
    with server, httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.get("/fhir/metadata").status_code == 200  # builds the store once
        yield http


@pytest.mark.parametrize("scenario", FETCHABLE, ids=lambda s: s.id)
def test_without_prefetch_the_service_fetches_from_fhir_and_gives_the_same_cards(
    fallback_service: httpx.Client, scenario: Scenario
) -> None:
    http = fallback_service
    with_prefetch = shifted_request(scenario, FIXED_NOW)
    with_prefetch["hookInstance"] = str(uuid.uuid4())
    without = {k: v for k, v in with_prefetch.items() if k != "prefetch"}
    without["hookInstance"] = str(uuid.uuid4())
    without["fhirServer"] = str(http.base_url).rstrip("/") + "/fhir"

    expected = http.post(f"/cds-services/{scenario.service}", json=with_prefetch)
    fetched = http.post(f"/cds-services/{scenario.service}", json=without)
    assert expected.status_code == 200, expected.text
    assert fetched.status_code == 200, fetched.text
    assert card_view(fetched.json()) == card_view(expected.json()), scenario.story
    if scenario.service == "itb-appointment-book":
        # Bookings compare calendar days only, so the story holds at any hour of its day
        # (a trial's hours before the anchor would not: the clock here is FIXED_NOW's hour).
        expected_keys = sorted((e.rule, e.outcome, e.indicator) for e in scenario.expected)
        assert sorted(c[:3] for c in card_view(fetched.json())) == expected_keys, scenario.story
