"""The audit trail as the service writes it, over HTTP: one record per hookInstance under
concurrency, retries answered identically, the database stopped mid-run, no token stored."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.audit.store import AuditStore
from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import load_scenario
from tests.conftest import LiveServer, make_settings
from tests.fhir.loopback import PATIENT_ID, running_server
from tests.pg import PostgresServer, postgres_server

SCENARIO = load_scenario(PROJECT_ROOT / "fixtures" / "refill" / "refill-overdue.json")
PATH = f"/cds-services/{SCENARIO.service}"


def fresh(hook_instance: str | None = None) -> dict[str, Any]:
    body = copy.deepcopy(SCENARIO.request)
    body["hookInstance"] = hook_instance or str(uuid.uuid4())
    return body


def card_uuids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [card["uuid"] for card in response.json()["cards"]]


def test_concurrent_calls_and_retries_make_one_record_each(
    live_app_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    server = live_app_factory(clock=lambda: SCENARIO.anchor)
    instances = [str(uuid.uuid4()) for _ in range(200)]
    retried = instances[:40]

    def call(hook_instance: str) -> tuple[str, list[str]]:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            return hook_instance, card_uuids(http.post(PATH, json=fresh(hook_instance)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, instances + retried))

    first: dict[str, list[str]] = {}
    for hook_instance, uuids in results:
        assert uuids, "refill-overdue must produce cards"
        # A retry answers with the same card uuids, so feedback on either joins the call.
        assert first.setdefault(hook_instance, uuids) == uuids
    store = AuditStore(make_settings(tmp_path))
    try:
        assert sum(len(store.calls_for(h)) for h in instances) == len(instances)
        verdict = store.verify()
        assert verdict.ok and verdict.checked == len(instances)
        card = first[instances[0]][0]
        with httpx.Client(base_url=server.url) as http:
            reply = http.post(PATH + "/feedback", json={"feedback": [{
                "card": card, "outcome": "accepted", "acceptedSuggestions": [],
                "outcomeTimestamp": "2026-06-15T09:05:00Z"}]})
        assert reply.json()["stored"] == 1 and reply.json()["unknownCards"] == 0
        assert [f.card_uuid for f in store.feedback_for(instances[0])] == [card]
    finally:
        store.close()


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    # Its own server: this module stops and starts it.
    yield from postgres_server()


@pytest.mark.postgres
def test_database_stopped_mid_run_loses_nothing(
    live_app_factory: Callable[..., LiveServer], pg_server: PostgresServer, tmp_path: Path
) -> None:
    url = pg_server.create_database()
    server = live_app_factory(clock=lambda: SCENARIO.anchor, database_url=url)
    order: list[str] = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        def call() -> None:
            hook_instance = str(uuid.uuid4())
            assert http.post(PATH, json=fresh(hook_instance)).status_code == 200
            order.append(hook_instance)

        for _ in range(5):
            call()
        pg_server.stop()
        try:
            for _ in range(8):
                call()
            spool = tmp_path / "audit.spool"
            assert spool.exists() and len(spool.read_text().splitlines()) == 8
            assert http.get("/ready").status_code == 503
        finally:
            pg_server.start()
        call()  # the first write after the outage replays the spool first
        assert http.get("/ready").status_code == 200

    store = AuditStore(make_settings(tmp_path, database_url=url))
    try:
        stored = [c.hook_instance for _, c in store.calls()]
        assert stored == order
        assert store.verify().ok
    finally:
        store.close()


def test_no_token_reaches_the_database_spool_or_response(
    live_app_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    token = "tok-" + uuid.uuid4().hex
    server = live_app_factory()
    with running_server() as (port, state):
        from tests.fhir.loopback import FhirBehaviour

        state["b"] = behaviour = FhirBehaviour()
        body = {
            "hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "fhirServer": f"http://127.0.0.1:{port}/fhir",
            "fhirAuthorization": {"access_token": token, "token_type": "Bearer",
                                  "expires_in": 300, "scope": "patient/*.read",
                                  "subject": "itb-cds"},
            "context": {"userId": "Practitioner/1", "patientId": PATIENT_ID},
        }
        with httpx.Client(base_url=server.url, timeout=60) as http:
            response = http.post("/cds-services/itb-patient-view", json=body)
    assert response.status_code == 200, response.text
    assert f"Bearer {token}" in behaviour.seen_authorization
    assert token not in response.text
    for path in tmp_path.iterdir():
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path.name


def test_data_that_could_not_be_obtained_is_said_on_every_card(
    live_app_factory: Callable[..., LiveServer],
) -> None:
    server = live_app_factory(clock=lambda: SCENARIO.anchor)
    body = fresh()
    del body["prefetch"]["observations"]  # not prefetched and no fhirServer to fetch it from
    with httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.post(PATH, json=body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards
    for card in cards:
        assert card["extension"]["itb-cds.finding"]["dataNotObtained"] == [
            "pump and trial observations"]
        assert "Incomplete chart data" in card["detail"]
    complete = fresh()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        full = http.post(PATH, json=complete).json()["cards"]
    assert all("dataNotObtained" not in c["extension"]["itb-cds.finding"] for c in full)
