"""Every fixture, sent over HTTP to the running service, yields exactly its expected cards
(rule, outcome, indicator) and no others — at its anchor date, and shifted to today."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class

from cds_service.config import PROJECT_ROOT
from cds_service.hooks.models import CdsResponse
from cds_service.sandbox.scenarios import Scenario, load_scenarios, shifted_anchor, shifted_request
from tests.conftest import Clock, clocked_service

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")
TODAY = datetime.now(UTC).replace(microsecond=0)


def card_keys(body: dict[str, object]) -> Counter[tuple[str, str, str]]:
    keys: Counter[tuple[str, str, str]] = Counter()
    for card in body["cards"]:  # type: ignore[attr-defined]
        finding = card["extension"]["itb-cds.finding"]
        keys[(finding["rule"], finding["outcome"], card["indicator"])] += 1
    return keys


def expected_keys(scenario: Scenario) -> Counter[tuple[str, str, str]]:
    return Counter((e.rule, e.outcome, e.indicator) for e in scenario.expected)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Clock]]:
    with clocked_service(tmp_path_factory.mktemp("scenarios")) as running:
        yield running


def post(http: httpx.Client, scenario: Scenario, request: dict[str, object]) -> dict[str, object]:
    response = http.post(f"/cds-services/{scenario.service}", json=request)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    CdsResponse.model_validate(body)
    return body


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 40


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario_at_its_anchor(
    service: tuple[httpx.Client, Clock], scenario: Scenario
) -> None:
    http, clock = service
    clock.now = scenario.anchor
    body = post(http, scenario, scenario.request)
    assert card_keys(body) == expected_keys(scenario), scenario.story
    for card in body["cards"]:  # type: ignore[attr-defined]
        for suggestion in card.get("suggestions", []):
            for action in suggestion["actions"]:
                if "resource" in action:
                    resource = action["resource"]
                    model = get_fhir_model_class(resource["resourceType"])
                    model.model_validate(resource)
                    assert about_the_patient(resource, scenario)


def about_the_patient(resource: dict[str, object], scenario: Scenario) -> bool:
    """A suggestion's resource names the patient: a request's subject, an appointment's
    participant."""
    patient = f"Patient/{scenario.request['context']['patientId']}"
    if resource["resourceType"] == "Appointment":
        actors = [p["actor"]["reference"] for p in resource["participant"]]  # type: ignore
        return patient in actors
    return resource["subject"]["reference"] == patient  # type: ignore


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario_shifted_to_today(
    service: tuple[httpx.Client, Clock], scenario: Scenario
) -> None:
    http, clock = service
    # Dates move by whole days, so "now" is the anchor's time of day on today's date.
    clock.now = shifted_anchor(scenario, TODAY)
    body = post(http, scenario, shifted_request(scenario, TODAY))
    assert card_keys(body) == expected_keys(scenario), scenario.story


