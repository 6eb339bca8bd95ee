"""The engine's memos change nothing a caller sees: every scenario answered by an engine that
remembers charts equals the answer of an engine that remembers nothing, on the first call and
on the repeat; a changed chart is read afresh."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from cds_service.config import PROJECT_ROOT, Settings
from cds_service.engine import Engine
from cds_service.sandbox.scenarios import Scenario, load_scenarios
from cds_service.services import SERVICES_BY_ID

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def build(loop: asyncio.AbstractEventLoop, **overrides: Any) -> Iterator[tuple[Engine, Any]]:
    clock: dict[str, datetime] = {}
    engine = Engine.build(Settings(**overrides), lambda: clock["now"])
    yield engine, clock
    loop.run_until_complete(engine.aclose())


@pytest.fixture(scope="module")
def remembering(loop: asyncio.AbstractEventLoop) -> Iterator[tuple[Engine, Any]]:
    yield from build(loop)


@pytest.fixture(scope="module")
def forgetful(loop: asyncio.AbstractEventLoop) -> Iterator[tuple[Engine, Any]]:
    yield from build(loop, validation_memo_entries=0, record_memo_entries=0)


def answer(loop: asyncio.AbstractEventLoop, engine_clock: tuple[Engine, Any],
           scenario: Scenario, request: dict[str, Any]) -> Any:
    engine, clock = engine_clock
    clock["now"] = scenario.anchor
    outcome = loop.run_until_complete(
        engine.invoke(SERVICES_BY_ID[scenario.service], copy.deepcopy(request)))
    return outcome.body


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_remembered_answers_equal_fresh_answers(
        loop: asyncio.AbstractEventLoop, remembering: tuple[Engine, Any],
        forgetful: tuple[Engine, Any], scenario: Scenario) -> None:
    fresh = answer(loop, forgetful, scenario, scenario.request)
    first = answer(loop, remembering, scenario, scenario.request)
    again = answer(loop, remembering, scenario, scenario.request)
    assert first == fresh
    assert again == fresh


def test_a_repeated_chart_is_served_from_the_record_memo_and_a_changed_one_is_not(
        loop: asyncio.AbstractEventLoop) -> None:
    scenario = next(s for s in SCENARIOS if s.family == "refill" and s.expected)
    for engine_clock in build(loop):
        engine = engine_clock[0]
        answer(loop, engine_clock, scenario, scenario.request)
        hits = engine.record_memo.stats.hits
        answer(loop, engine_clock, scenario, scenario.request)
        assert engine.record_memo.stats.hits == hits + 1

        changed = copy.deepcopy(scenario.request)
        changed["prefetch"]["patient"]["gender"] = "unknown"
        answer(loop, engine_clock, scenario, changed)
        assert engine.record_memo.stats.hits == hits + 1
        assert len(engine.record_memo) == 2


def test_a_chart_that_needed_the_fhir_server_is_never_remembered(
        loop: asyncio.AbstractEventLoop) -> None:
    scenario = next(s for s in SCENARIOS if s.service == "itb-patient-view")
    request = copy.deepcopy(scenario.request)
    del request["prefetch"]["observations"]
    request["fhirServer"] = "http://127.0.0.1:9"  # refused at once: the key stays missing
    for engine_clock in build(loop):
        for _ in range(2):
            answer(loop, engine_clock, scenario, request)
        assert len(engine_clock[0].record_memo) == 0
