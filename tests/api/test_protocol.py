"""CDS Hooks protocol contract: discovery, the error table, CORS, response hygiene (issue 2)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cds_service.services import SERVICES_BY_ID

SERVICES = {
    "itb-patient-view": "patient-view",
    "itb-order-select": "order-select",
    "itb-order-sign": "order-sign",
    "itb-appointment-book": "appointment-book",
}


def minimal_request(hook: str = "patient-view", **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/1", "patientId": "p1"}
    if hook in ("order-select", "order-sign"):
        context["draftOrders"] = {"resourceType": "Bundle", "entry": []}
    if hook == "order-select":
        context["selections"] = []
    if hook == "appointment-book":
        context["appointments"] = {"resourceType": "Bundle", "entry": []}
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": dict.fromkeys(SERVICES_BY_ID[f"itb-{hook}"].prefetch_keys),
    }
    body["prefetch"]["patient"] = {"resourceType": "Patient", "id": "p1",
                                   "birthDate": "1980-01-01"}
    body.update(extra)
    return body


def assert_outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all("severity" in i and "code" in i for i in body["issue"])
    assert "Traceback" not in response.text
    return body


def test_discovery_lists_one_service_per_hook(live: httpx.Client) -> None:
    response = live.get("/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    assert {s["id"]: s["hook"] for s in services} == SERVICES
    for service in services:
        assert service["description"] and service["title"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    by_id = {s["id"]: s for s in services}
    assert "observations" in by_id["itb-patient-view"]["prefetch"]
    assert "observations" not in by_id["itb-order-sign"]["prefetch"]


@pytest.mark.parametrize("service_id,hook", sorted(SERVICES.items()))
def test_each_service_answers_its_hook(live: httpx.Client, service_id: str, hook: str) -> None:
    response = live.post(f"/cds-services/{service_id}", json=minimal_request(hook))
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


def test_appointment_book_without_its_appointments_is_400(live: httpx.Client) -> None:
    body = minimal_request("appointment-book")
    del body["context"]["appointments"]
    out = assert_outcome(live.post("/cds-services/itb-appointment-book", json=body), 400)
    assert "context.appointments" in str(out)


def test_no_prefetch_and_no_fhir_server_is_412(live: httpx.Client) -> None:
    body = minimal_request()
    del body["prefetch"]
    out = assert_outcome(live.post("/cds-services/itb-patient-view", json=body), 412)
    assert "conditions" in str(out)


def test_null_prefetch_means_nothing_found_not_missing(live: httpx.Client) -> None:
    response = live.post("/cds-services/itb-patient-view", json=minimal_request())
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_malformed_json_is_400(live: httpx.Client) -> None:
    response = live.post(
        "/cds-services/itb-patient-view",
        content=b'{"hook": "patient-view",',
        headers={"content-type": "application/json"},
    )
    assert_outcome(response, 400)


def test_schema_violation_is_400_with_details(live: httpx.Client) -> None:
    body = minimal_request()
    body["hookInstance"] = "not-a-uuid"
    del body["context"]
    out = assert_outcome(live.post("/cds-services/itb-patient-view", json=body), 400)
    text = str(out)
    assert "hookInstance" in text and "context" in text


def test_context_missing_patient_is_400(live: httpx.Client) -> None:
    body = minimal_request()
    del body["context"]["patientId"]
    assert_outcome(live.post("/cds-services/itb-patient-view", json=body), 400)


def test_hook_mismatch_is_400(live: httpx.Client) -> None:
    out = assert_outcome(
        live.post("/cds-services/itb-patient-view", json=minimal_request("order-sign")), 400
    )
    assert "order-sign" in str(out)


def test_authorization_without_fhir_server_is_400(live: httpx.Client) -> None:
    body = minimal_request(
        fhirAuthorization={"access_token": "secret-token-xyz", "token_type": "Bearer",
                           "expires_in": 300, "scope": "patient/*.read", "subject": "cds"}
    )
    response = live.post("/cds-services/itb-patient-view", json=body)
    assert_outcome(response, 400)
    assert "secret-token-xyz" not in response.text


def test_unknown_service_is_404(live: httpx.Client) -> None:
    assert_outcome(live.post("/cds-services/no-such-service", json=minimal_request()), 404)
    assert_outcome(live.get("/nothing-here"), 404)


def test_body_over_limit_is_413(live: httpx.Client) -> None:
    body = minimal_request()
    body["padding"] = "x" * (10 * 1024 * 1024 + 10)
    assert_outcome(live.post("/cds-services/itb-patient-view", json=body), 413)


def test_chunked_body_over_limit_is_413(live: httpx.Client) -> None:
    def chunks() -> Any:
        yield b'{"hook": "patient-view", "x": "'
        for _ in range(11):
            yield b"y" * (1024 * 1024)
        yield b'"}'

    response = live.post(
        "/cds-services/itb-patient-view",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert_outcome(response, 413)


def test_wrong_method_is_405(live: httpx.Client) -> None:
    assert_outcome(live.get("/cds-services/itb-patient-view"), 405)
    assert_outcome(live.delete("/cds-services"), 405)


def test_wrong_content_type_is_415(live: httpx.Client) -> None:
    response = live.post(
        "/cds-services/itb-patient-view",
        content=b"hook=patient-view",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_outcome(response, 415)


def test_deep_nesting_is_400(live: httpx.Client) -> None:
    deep = "[" * 5000 + "]" * 5000
    response = live.post(
        "/cds-services/itb-patient-view",
        content=f'{{"hook": "patient-view", "context": {deep}}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert_outcome(response, 400)


def garbage_bodies(seed: int = 20261121) -> list[bytes]:
    rng = random.Random(seed)
    out = [rng.randbytes(rng.randint(1, 4000)) for _ in range(25)]
    out += [
        b"null", b"[]", b"42", b'"text"', b"{}", b"true",
        b'{"hook": 5, "hookInstance": [], "context": "x", "prefetch": 7}',
        b'{"hook": "patient-view", "hookInstance": "' + str(uuid.uuid4()).encode()
        + b'", "context": {"userId": 1, "patientId": {"a": 1}}}',
        b'{"hook": "patient-view", "hookInstance": "' + str(uuid.uuid4()).encode()
        + b'", "context": {"userId": "Practitioner/1", "patientId": "p"}, "prefetch": "x"}',
        b'{"hook": "patient-view", "hookInstance": "' + str(uuid.uuid4()).encode()
        + b'", "context": {"userId": "Practitioner/1", "patientId": "p"},'
        b' "prefetch": {"patient": [1, 2], "conditions": {"resourceType": "Bundle",'
        b' "entry": "no"}, "devices": {"resourceType": "Bundle", "entry": [1, null, {}]}}}',
        b'{"hook": "' + b"h" * 200_000 + b'"}',
        b"{" * 100_000,
        b'{"hook": "patient-view", "hookInstance": "' + str(uuid.uuid4()).encode()
        + b'", "context": {"userId": "Practitioner/1", "patientId": "p"},'
        b' "fhirServer": "ftp://x", "prefetch": null}',
        "{\"hook\": \"patient-view\", \"\u0000\": \"\ud800\"}".encode("utf-8", "surrogatepass"),
    ]
    return out


@pytest.mark.parametrize("path", ["/cds-services/itb-patient-view",
                                  "/cds-services/itb-order-sign",
                                  "/cds-services/itb-patient-view/feedback"])
def test_garbage_never_produces_a_server_error(live: httpx.Client, path: str) -> None:
    for body in garbage_bodies():
        response = live.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code < 500, (body[:80], response.status_code, response.text)
        assert response.status_code in (200, 400, 412, 413), (body[:80], response.text)


@pytest.mark.parametrize(
    ("path", "method"),
    [("/cds-services", "GET"), ("/cds-services/itb-patient-view", "POST"),
     ("/cds-services/itb-order-select", "POST"), ("/cds-services/itb-order-sign", "POST"),
     ("/cds-services/itb-patient-view/feedback", "POST")],
)
def test_cors_preflight_is_answered_for_every_endpoint(client: TestClient, path: str,
                                                      method: str) -> None:
    response = client.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert 200 <= response.status_code < 300
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.headers["access-control-allow-origin"] in ("*", "https://sandbox.cds-hooks.org")
    # Only the methods the path has: discovery is GET-only, a service POST-only.
    assert response.headers["access-control-allow-methods"] == f"{method}, OPTIONS"
    assert response.headers["allow"] == f"{method}, OPTIONS"


def test_simple_responses_carry_cors_and_security_headers(client: TestClient) -> None:
    response = client.get("/cds-services", headers={"Origin": "http://localhost:8080"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["authMode"] == "off"
    assert ready["catalogue"]
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "itb_cds_calls_total" in metrics.text


def test_feedback_is_accepted_and_idempotent(client: TestClient) -> None:
    item = {
        "card": str(uuid.uuid4()),
        "outcome": "overridden",
        "overrideReason": {"reason": {"code": "patient-declines", "system": "urn:itb-cds:codes",
                                      "display": "Patient declines"}, "userComment": "n/a"},
        "outcomeTimestamp": "2026-06-15T09:05:00Z",
    }
    first = client.post("/cds-services/itb-patient-view/feedback", json={"feedback": [item]})
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == 1 and first.json()["unknownCards"] == 1
    again = client.post("/cds-services/itb-patient-view/feedback", json={"feedback": [item, item]})
    assert again.status_code == 200
    assert again.json().get("stored", 0) == 0 and again.json()["duplicates"] == 2


def test_feedback_validation_errors_are_400(client: TestClient) -> None:
    for body in ({}, {"feedback": []}, {"feedback": [{"card": "x", "outcome": "maybe",
                                                      "outcomeTimestamp": "2026-01-01T00:00Z"}]},
                 {"feedback": [{"card": "x", "outcome": "accepted",
                                "outcomeTimestamp": "2026-01-01T00:00:00"}]}):
        response = client.post("/cds-services/itb-patient-view/feedback", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
