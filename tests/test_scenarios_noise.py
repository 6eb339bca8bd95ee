"""Every patient-view scenario buried in Synthea-like noise (vital signs, encounters, claims,
unrelated problems, prescriptions, immunizations and procedures: bench/charts.py) still gets
exactly its cards, and the noise-only charts of the bench panel get no clinical card at all
(real-looking charts, no false positive)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.charts import _fixture_builders, _pad_to, _resource_count
from bench.panel import ANCHOR, _chart, plan
from tests.conftest import Clock, clocked_service

FX = _fixture_builders()
SCENARIOS = [fn for fn in FX.SCENARIOS if fn().service == "itb-patient-view"]
NOISE_PATIENTS = [p for p in plan(80) if p.kind == "noise"][:25]
EXTRA_NOISE = 200  # resources added to each scenario's chart


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Clock]]:
    with clocked_service(tmp_path_factory.mktemp("noise"), timeout=60) as running:
        yield running


def _cards(http: httpx.Client, request: dict[str, Any]) -> Counter[tuple[str, str, str]]:
    response = http.post("/cds-services/itb-patient-view", json=request)
    assert response.status_code == 200, response.text
    keys: Counter[tuple[str, str, str]] = Counter()
    for card in response.json()["cards"]:
        finding = card["extension"]["itb-cds.finding"]
        keys[(finding["rule"], finding["outcome"], card["indicator"])] += 1
    return keys


@pytest.mark.parametrize("build", SCENARIOS, ids=[fn.__name__ for fn in SCENARIOS])
def test_scenario_in_noise_keeps_its_cards(service: tuple[httpx.Client, Clock],
                                           build: Any) -> None:
    http, clock = service
    s = build()
    _pad_to(FX, s.chart, _resource_count(s.chart) + EXTRA_NOISE)
    clock.now = s.anchor
    expected = Counter((e["rule"], e["outcome"], e["indicator"]) for e in s.expected)
    assert _cards(http, FX.build_request(s)) == expected, s.story


@pytest.mark.parametrize("patient", NOISE_PATIENTS, ids=[p.patient_id for p in NOISE_PATIENTS])
def test_noise_only_chart_gets_no_card(service: tuple[httpx.Client, Clock],
                                       patient: Any) -> None:
    http, clock = service
    c = _chart(patient)
    _pad_to(FX, c, 60 + patient.index % 200)
    s = FX.Scenario(id=c.sid, family="bench", title=c.sid, story="", anchor=ANCHOR,
                    expected=[], chart=c)
    clock.now = ANCHOR
    assert _cards(http, FX.build_request(s)) == Counter()
