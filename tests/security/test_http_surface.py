"""The HTTP surface a reviewer probes, over real HTTP on loopback: bounded input answers 400
and stores nothing; admin paths are hidden unless on, guarded and slowed; CORS only where
browsers need it; OPTIONS tells the truth; the sandbox shows only its own calls; requests in
flight and body bytes held are bounded with 503 + Retry-After."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.api.limits import RequestLimits
from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import load_scenarios, shifted_request
from tests.conftest import FIXED_NOW, LiveServer
from tests.sandbox.conftest import runtime_of

FEEDBACK = "/cds-services/itb-patient-view/feedback"
INVOKE = "/cds-services/itb-patient-view"
ADMIN_TOKEN = "t" * 40
ISSUER = "https://ehr.example.org"
# This test is about what is shown, not how fast: the first call of a new app on a loaded
# 2-core machine once took longer than httpx's 5 s default.
SLOW_OK = 30.0


def feedback(**item: Any) -> dict[str, Any]:
    return {"feedback": [{"card": str(uuid.uuid4()), "outcome": "accepted",
                          "outcomeTimestamp": "2026-06-15T09:00:00Z", **item}]}


def test_the_two_inputs_that_gave_500_now_get_400_and_store_nothing(
        live_app_factory: Callable[..., LiveServer]) -> None:
    server = live_app_factory()
    for body in (feedback(card="c" * 129),
                 feedback(outcomeTimestamp="0001-01-01T00:00:00+23:59"),
                 feedback(outcomeTimestamp="9999-12-31T23:59:59-23:59")):
        response = httpx.post(server.url + FEEDBACK, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
        assert "c" * 129 not in response.text  # the field is named, the value not echoed
    assert httpx.post(server.url + FEEDBACK, json=feedback(card="c" * 128)).status_code == 200
    assert runtime_of(server).store.verify().checked == 1  # only the valid one


def test_a_megabyte_in_one_field_is_refused(live_app_factory: Callable[..., LiveServer]) -> None:
    server = live_app_factory()
    scenario = load_scenarios(PROJECT_ROOT / "fixtures")[0]
    body = shifted_request(scenario, FIXED_NOW)
    body["context"]["patientId"] = "p" * 1024 * 1024
    response = httpx.post(server.url + f"/cds-services/{scenario.service}", json=body)
    assert response.status_code == 400
    assert "context.patientId" in response.text
    assert len(response.content) < 2048
    assert runtime_of(server).store.verify().checked == 0


def test_admin_paths_are_in_the_openapi_document_only_when_admin_is_on(
        live_app_factory: Callable[..., LiveServer]) -> None:
    off = httpx.get(live_app_factory().url + "/openapi.json").json()["paths"]
    on = httpx.get(live_app_factory(admin_token=ADMIN_TOKEN).url + "/openapi.json").json()
    assert not [p for p in off if p.startswith("/admin")]
    assert {"/admin/audit/report", "/admin/audit/verify"} <= set(on["paths"])


def test_failed_admin_attempts_are_logged_slowed_then_refused_at_once(
        live_app_factory: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture) -> None:
    server = live_app_factory(admin_token=ADMIN_TOKEN, admin_failure_delay_seconds=0.3,
                              admin_failures_per_minute=3)
    url = server.url + "/admin/audit/verify"
    wrong = {"Authorization": "Bearer " + "w" * 40}
    took = []
    for _ in range(3):
        started = time.monotonic()
        assert httpx.get(url, headers=wrong).status_code == 401
        took.append(time.monotonic() - started)
    started = time.monotonic()
    throttled = httpx.get(url, headers=wrong)
    fast = time.monotonic() - started
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "60"
    assert min(took) >= 0.3 and fast < 0.3
    # The right token is never locked out by someone else's guessing.
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
    refusals = [r.getMessage() for r in caplog.records if r.name == "itb_cds.admin"]
    assert len(refusals) == 4 and all("refused GET /admin/audit/verify" in m for m in refusals)
    assert not any("w" * 40 in m for m in refusals)


def test_cors_is_granted_to_the_cds_endpoints_only(
        live_app_factory: Callable[..., LiveServer]) -> None:
    server = live_app_factory(admin_token=ADMIN_TOKEN)
    origin = {"Origin": "https://evil.example"}
    assert httpx.get(server.url + "/cds-services",
                     headers=origin).headers["access-control-allow-origin"] == "*"
    for path in ("/admin/audit/verify", "/sandbox/api/fixtures", "/health", "/fhir/metadata"):
        response = httpx.get(server.url + path, headers=origin)
        assert "access-control-allow-origin" not in response.headers, path
        preflight = httpx.options(server.url + path, headers={
            **origin, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in preflight.headers, path


def test_options_advertises_only_the_methods_a_path_has(
        live_app_factory: Callable[..., LiveServer]) -> None:
    server = live_app_factory()
    assert httpx.options(server.url + "/health").headers["allow"] == "GET, OPTIONS"
    assert httpx.options(server.url + INVOKE).headers["allow"] == "POST, OPTIONS"
    assert httpx.options(server.url + "/no/such/path").status_code == 404


def test_the_sandbox_shows_no_call_made_outside_it(
        tmp_path: Path, live_app_factory: Callable[..., LiveServer]) -> None:
    """A JWT-authenticated call (a real CDS client) about a fixture patient, or one with
    another fhirServer, is not the sandbox's: its audit record stays hidden."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES384"}
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": {ISSUER: {"jwks": {"keys": [jwk]}}}}))
    secured = live_app_factory(auth_mode="jwt", trust_file=trust)
    scenario = next(s for s in load_scenarios(PROJECT_ROOT / "fixtures")
                    if s.id == "refill-overdue")
    request = shifted_request(scenario, FIXED_NOW)
    path = f"/cds-services/{scenario.service}"
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": secured.url + path, "iat": now, "exp": now + 300,
                        "jti": str(uuid.uuid4())}, key, algorithm="ES384",
                       headers={"kid": "k1", "typ": "JWT"})
    answered = httpx.post(secured.url + path, json=request, timeout=SLOW_OK,
                          headers={"Authorization": f"Bearer {token}"})
    assert answered.status_code == 200
    assert runtime_of(secured).store.calls_for(request["hookInstance"])  # it is recorded
    assert httpx.get(secured.url + f"/sandbox/api/audit/{request['hookInstance']}",
                     timeout=SLOW_OK).status_code == 404

    open_server = live_app_factory()
    elsewhere = {**shifted_request(scenario, FIXED_NOW), "hookInstance": str(uuid.uuid4()),
                 "fhirServer": "http://127.0.0.1:9/fhir"}
    assert httpx.post(open_server.url + path, json=elsewhere, timeout=SLOW_OK).status_code == 200
    assert httpx.get(open_server.url + f"/sandbox/api/audit/{elsewhere['hookInstance']}",
                     timeout=SLOW_OK).status_code == 404
    own = {**shifted_request(scenario, FIXED_NOW), "hookInstance": str(uuid.uuid4())}
    assert httpx.post(open_server.url + path, json=own, timeout=SLOW_OK).status_code == 200
    assert httpx.get(open_server.url + f"/sandbox/api/audit/{own['hookInstance']}",
                     timeout=SLOW_OK).status_code == 200


def request_limits(server: LiveServer) -> RequestLimits:
    """The live app's RequestLimits middleware, to see what it holds."""
    layer: Any = server.server.config.app.middleware_stack
    while not isinstance(layer, RequestLimits):
        layer = layer.app
    return layer


class SilentListener:
    """Accepts connections and never answers: a FHIR server that keeps a call waiting."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_requests_in_flight_beyond_the_limit_get_503_with_retry_after(
        live_app_factory: Callable[..., LiveServer]) -> None:
    server = live_app_factory(max_in_flight=1, fhir_budget_seconds=1.5)
    silent = SilentListener()
    waiting = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
               "fhirServer": f"http://127.0.0.1:{silent.port}/fhir",
               "context": {"userId": "Practitioner/1", "patientId": "p1"}}
    first: list[httpx.Response] = []
    holder = threading.Thread(target=lambda: first.append(
        httpx.post(server.url + INVOKE, json=waiting, timeout=30)))
    try:
        holder.start()
        deadline = time.monotonic() + 10
        while not silent.held:  # the first call is in flight once it reached the FHIR server
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second = httpx.post(server.url + INVOKE, json=waiting)
        assert second.status_code == 503
        assert second.headers["retry-after"] == "1"
        assert second.json()["issue"][0]["code"] == "transient"
        assert httpx.get(server.url + "/ready").status_code == 200  # probes are exempt
        holder.join(30)
    finally:
        silent.close()
    assert first[0].status_code == 412  # the first call ran out of its FHIR time budget


def test_request_bodies_held_beyond_the_budget_get_503(
        live_app_factory: Callable[..., LiveServer]) -> None:
    server = live_app_factory(max_body_bytes=40_000, max_body_bytes_in_flight=64 * 1024)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        # 39,000 of 40,000 bytes sent: the worker holds them while it waits for the rest.
        slow.sendall(b"POST /cds-services/itb-patient-view HTTP/1.1\r\nHost: itb\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 40000\r\n\r\n"
                     + b" " * 39_000)
        limits = request_limits(server)
        deadline = time.monotonic() + 10
        while limits.body_bytes < 39_000:  # read by the worker's event loop, in its thread
            assert time.monotonic() < deadline
            time.sleep(0.01)
        response = httpx.post(server.url + INVOKE, content=b" " * 30_000,
                              headers={"content-type": "application/json"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
    after = httpx.post(server.url + INVOKE, content=b" " * 30_000,
                       headers={"content-type": "application/json"})
    assert after.status_code == 400  # the budget is free again: read, and found empty



def test_a_failing_sqlite_write_makes_ready_say_degraded(
        live_app_factory: Callable[..., LiveServer]) -> None:
    """A full disk does not stop ``SELECT 1``: /ready must notice the writes failing. The
    database refuses every insert here (a trigger), as it would when it cannot grow."""
    server = live_app_factory()
    store = runtime_of(server).store
    scenario = load_scenarios(PROJECT_ROOT / "fixtures")[0]
    path = f"/cds-services/{scenario.service}"

    def call() -> int:
        body = {**shifted_request(scenario, FIXED_NOW), "hookInstance": str(uuid.uuid4())}
        return httpx.post(server.url + path, json=body).status_code

    assert call() == 200 and httpx.get(server.url + "/ready").status_code == 200
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER full BEFORE INSERT ON audit_entry "
                             "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    assert call() == 200  # the record is in the spool
    ready = httpx.get(server.url + "/ready")
    assert ready.status_code == 503
    assert ready.json()["database"] == "ok"  # the ping alone would have said ready
    assert any("audit writes fail" in reason for reason in ready.json()["degraded"])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER full")
    assert call() == 200
    assert httpx.get(server.url + "/ready").json()["status"] == "ready"


def test_bytes_read_from_the_fhir_server_are_capped_per_call(
        live_app_factory: Callable[..., LiveServer]) -> None:
    from tests.security.test_connection_limits import StreamingFhirServer

    streaming = StreamingFhirServer(4 * 1024 * 1024)
    try:
        # A time budget far beyond what 64 KiB takes: the byte cap, not the clock, must end
        # the call, even on a loaded machine (the 2 s default ran out first once in CI).
        server = live_app_factory(fhir_max_bytes_per_call=64 * 1024, fhir_budget_seconds=30)
        body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                "fhirServer": f"http://127.0.0.1:{streaming.port}/fhir",
                "context": {"userId": "Practitioner/1", "patientId": "p1"}}
        response = httpx.post(server.url + INVOKE, json=body)
    finally:
        streaming.sock.close()
    assert response.status_code == 412
    assert "exceeded the 65536 bytes one call may read" in response.text


def test_sandbox_trust_is_warned_about_at_start_and_in_ready(
        live_app_factory: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture) -> None:
    server = live_app_factory(auth_mode="jwt", trust_sandbox=True)
    ready = httpx.get(server.url + "/ready").json()
    assert ready["status"] == "ready"  # a warning, not a degradation
    (warning,) = ready["warnings"]
    assert "ITB_CDS_TRUST_SANDBOX" in warning and "Development only" in warning
    assert any(r.levelname == "WARNING" and "ITB_CDS_TRUST_SANDBOX is on" in r.getMessage()
               for r in caplog.records)
    assert "warnings" not in httpx.get(live_app_factory().url + "/ready").json()
