"""A real FHIR endpoint on loopback for the prefetch/fallback tests (fixtures in conftest).

A Starlette app under uvicorn in a thread, on a socket bound before the thread starts (so no
test ever waits for the server to come up). It serves tests/fhir/data/itb_chart.json: reads
by id, searches by patient with paging through ``next`` links, and misbehaves on request.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CHART_PATH = Path(__file__).parent / "data" / "itb_chart.json"
PATIENT_ID = "itb-1"

# Which search returns which resource types; Medication and Encounter ride along as
# _include results, the way EHRs ship them.
SEARCH_TYPES: dict[str, tuple[str, ...]] = {
    "Condition": ("Condition", "Encounter"),
    "MedicationRequest": ("MedicationRequest", "Medication"),
}
KEY_OF_SEARCH: dict[str, str] = {
    "Condition": "conditions",
    "MedicationRequest": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "MedicationAdministration": "medicationAdministrations",
    "AllergyIntolerance": "allergies",
    "AdverseEvent": "adverseEvents",
    "Procedure": "procedures",
    "Observation": "observations",
    "Device": "devices",
    "ServiceRequest": "serviceRequests",
    "Appointment": "appointments",
}


def load_chart() -> list[dict[str, Any]]:
    chart: list[dict[str, Any]] = json.loads(CHART_PATH.read_text())
    return chart


def search_results(chart: list[dict[str, Any]], search_type: str) -> list[dict[str, Any]]:
    wanted = SEARCH_TYPES.get(search_type, (search_type,))
    return [r for r in chart if r["resourceType"] in wanted]


def searchset(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


def prefetch_for(chart: list[dict[str, Any]]) -> dict[str, Any]:
    """Every patient-view key, as a CDS client that prefetched everything would send it."""
    patient = next(r for r in chart if r["resourceType"] == "Patient")
    prefetch: dict[str, Any] = {"patient": copy.deepcopy(patient)}
    for search_type, key in KEY_OF_SEARCH.items():
        prefetch[key] = searchset(copy.deepcopy(search_results(chart, search_type)))
    return prefetch


@dataclass
class FhirBehaviour:
    """What the server does; tests change it, the fixture resets it."""

    page_size: int = 100
    # resource type (or "*") -> one of: slow, error-500, invalid-json, loop, not-bundle,
    # outcome, foreign-next, endless
    modes: dict[str, str] = field(default_factory=dict)
    slow_seconds: float = 5.0
    chart: list[dict[str, Any]] = field(default_factory=load_chart)
    seen_authorization: list[str | None] = field(default_factory=list)
    seen_paths: list[str] = field(default_factory=list)
    seen_hosts: list[str] = field(default_factory=list)

    def mode(self, resource_type: str) -> str | None:
        return self.modes.get(resource_type, self.modes.get("*"))


@dataclass
class FhirServer:
    port: int
    behaviour: FhirBehaviour

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"


def _app(state: dict[str, FhirBehaviour]) -> Starlette:
    async def read(request: Request) -> Response:
        behaviour = _record(state["b"], request)
        resource_type = request.path_params["type"]
        misbehaviour = await _misbehave(behaviour, resource_type)
        if misbehaviour is not None:
            return misbehaviour
        for r in behaviour.chart:
            if r["resourceType"] == resource_type and r.get("id") == request.path_params["id"]:
                return JSONResponse(r, media_type="application/fhir+json")
        return JSONResponse(_outcome("not found"), status_code=404)

    async def search(request: Request) -> Response:
        behaviour = _record(state["b"], request)
        resource_type = request.path_params["type"]
        misbehaviour = await _misbehave(behaviour, resource_type)
        if misbehaviour is not None:
            return misbehaviour
        params = request.query_params
        patient = params.get("patient") or params.get("subject", "").removeprefix("Patient/")
        found = search_results(behaviour.chart, resource_type) if patient == PATIENT_ID else []
        if "_id" in params:  # Medication?_id=a,b: the Medications a prefetch referenced
            wanted = set(params["_id"].split(","))
            found = [r for r in behaviour.chart
                     if r["resourceType"] == resource_type and r.get("id") in wanted]
        page = int(params.get("_page", "1"))
        size = behaviour.page_size
        chunk = found[(page - 1) * size : page * size]
        mode = behaviour.mode(resource_type)
        query = f"patient={patient}&_page={page + 1}"
        next_url: str | None = None
        if mode == "loop":
            next_url = str(request.url)  # the same page again, forever
        elif mode == "endless":
            next_url = f"{request.base_url}fhir/{resource_type}?{query}"
        elif mode == "foreign-next":
            next_url = f"http://localhost:{request.url.port}/fhir/{resource_type}?{query}"
        elif page * size < len(found):
            next_url = f"{request.base_url}fhir/{resource_type}?{query}"
        return JSONResponse(searchset(chunk, next_url), media_type="application/fhir+json")

    return Starlette(
        routes=[
            Route("/fhir/{type}", search),
            Route("/fhir/{type}/{id}", read),
        ]
    )


def _record(behaviour: FhirBehaviour, request: Request) -> FhirBehaviour:
    behaviour.seen_authorization.append(request.headers.get("authorization"))
    behaviour.seen_paths.append(
        request.url.path + ("?" + request.url.query if request.url.query else "")
    )
    behaviour.seen_hosts.append(request.headers.get("host", ""))
    return behaviour


async def _misbehave(behaviour: FhirBehaviour, resource_type: str) -> Response | None:
    mode = behaviour.mode(resource_type)
    if mode == "slow":
        await asyncio.sleep(behaviour.slow_seconds)
    elif mode == "error-500":
        return JSONResponse(_outcome("boom"), status_code=500)
    elif mode == "invalid-json":
        return Response(b'{"resourceType": "Bundle", "entry": [', media_type="application/json")
    elif mode == "not-bundle":
        return JSONResponse(["a", "list"], media_type="application/fhir+json")
    elif mode == "outcome":
        return JSONResponse(_outcome("search failed"), media_type="application/fhir+json")
    return None


def _outcome(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "exception", "diagnostics": text}],
    }


@contextmanager
def running_server() -> Iterator[tuple[int, dict[str, FhirBehaviour]]]:
    """Serve on a socket bound before the thread starts: no test waits for start-up."""
    state = {"b": FhirBehaviour()}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        _app(state),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield port, state
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
