"""Fixtures: a real FHIR server on loopback (see loopback.py), reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fhir.loopback import FhirBehaviour, FhirServer, running_server


@pytest.fixture(scope="session")
def _fhir_server_process() -> Iterator[tuple[int, dict[str, FhirBehaviour]]]:
    with running_server() as running:
        yield running


@pytest.fixture
def fhir_server(_fhir_server_process: tuple[int, dict[str, FhirBehaviour]]) -> FhirServer:
    port, state = _fhir_server_process
    state["b"] = FhirBehaviour()
    return FhirServer(port=port, behaviour=state["b"])
