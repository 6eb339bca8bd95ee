"""Fuzzing the HTTP surface from its OpenAPI document (schemathesis), over real HTTP.

Every operation of the document (the CDS Hooks endpoints, the operator probes and, with an
admin token, the admin endpoints) is called on two live servers on loopback with the
service's own connection limits: one with auth off, one with auth on (each call then carries
a freshly signed client token, so the fuzzing reaches past the token check). Every generated
request must get an answer that is not a server error and that matches what the document
says: status code, content type and body schema. The CDS routes read their body by hand;
the app documents those bodies itself (cds_service/api/openapi.py, from the wire models) and
``test_app_documents_cds_bodies`` keeps it so.

The fuzzed ``fhirServer`` is pinned to a closed loopback port: the service must never be
steered by a generated request to any other host.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from jwt.algorithms import ECAlgorithm
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service.api.connections import uvicorn_options
from cds_service.app import create_app
from tests.conftest import FIXED_NOW, LiveServer, free_port, make_settings

EXAMPLE_FIXTURE = Path(__file__).parents[2] / "fixtures/mixed/mixed-padded-refill-due-soon.json"
MAX_EXAMPLES = 20  # per operation and auth mode; the whole module stays well under 60 s
ISSUER = "https://ehr.example.org"
ADMIN_TOKEN = "fuzz-admin-token-" + "x" * 32
CLOSED_LOOPBACK = "http://127.0.0.1:9/fhir"  # discard port: nothing listens, refused at once
# What this module asserts is about responses. Not checked here (reported instead): whether a
# schema-valid body is accepted (the hook must match the service, which the shared wire schema
# cannot say), whether every schema-violating body is rejected (pydantic's lax coercions), and
# the Allow header of the CORS preflight (the same on every path).
RESPONSE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                   response_schema_conformance, response_headers_conformance]
STATUSES: Counter[str] = Counter()  # what the fuzzing got back, for -s runs and debugging

def fuzzing_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's own document, pinned to a closed fhirServer and with a real chart as example."""
    doc = copy.deepcopy(app.openapi())
    request = doc["components"]["schemas"]["CdsRequest"]["properties"]
    request["fhirServer"] = {"anyOf": [{"const": CLOSED_LOOPBACK}, {"type": "null"}]}
    invoke = doc["paths"]["/cds-services/{service_id}"]["post"]
    # One real chart as the explicit example, so the engine is reached, not only the 400s.
    invoke["parameters"] = [{**invoke["parameters"][0], "example": "itb-patient-view"}]
    invoke["requestBody"]["content"]["application/json"]["example"] = json.loads(
        EXAMPLE_FIXTURE.read_text())["request"]
    # Every operation but the OpenAPI UI (a page, with its own tests).
    doc["paths"] = {p: ops for p, ops in doc["paths"].items() if not p.startswith("/docs")}
    return doc


# Built at import: schemathesis parametrizes at collection time. The module fixture below
# starts the servers and removes the temp dir when the module is done.
_TMP = tempfile.TemporaryDirectory(prefix="itb-fuzz-")
_KEY = ec.generate_private_key(ec.SECP384R1())


def _app(mode: str) -> tuple[FastAPI, int]:
    root = Path(_TMP.name) / mode
    root.mkdir()
    port = free_port()
    overrides: dict[str, Any] = {}
    if mode == "jwt":
        jwk = {**ECAlgorithm.to_jwk(_KEY.public_key(), as_dict=True), "kid": "k1",
               "alg": "ES384"}
        (root / "trust.json").write_text(json.dumps({"issuers": {ISSUER: {"jwks": {
            "keys": [jwk]}}}}))
        overrides = {"auth_mode": "jwt", "trust_file": root / "trust.json"}
    app = create_app(make_settings(root, fhir_budget_seconds=0.5, admin_token=ADMIN_TOKEN,
                                   admin_failure_delay_seconds=0,
                                   public_base_url=f"http://127.0.0.1:{port}", **overrides),
                     clock=lambda: FIXED_NOW)
    return app, port


APPS = {mode: _app(mode) for mode in ("off", "jwt")}
schema = schemathesis.openapi.from_dict(fuzzing_openapi(APPS["off"][0]))
SERVERS: dict[str, LiveServer] = {}


@pytest.fixture(scope="module", autouse=True)
def _servers() -> Iterator[None]:
    for mode, (app, port) in APPS.items():
        SERVERS[mode] = LiveServer(app, port, **uvicorn_options(
            app.state.runtime.settings)).__enter__()
    yield
    by_status: Counter[str] = Counter()
    for key, count in STATUSES.items():
        mode, *_, status = key.split()
        by_status[f"{mode} {status}"] += count
    print("\nfuzz answers (auth mode, status: calls):", dict(sorted(by_status.items())))
    for server in SERVERS.values():
        server.__exit__()
    for app, _ in APPS.values():
        app.state.runtime.store.close()
    _TMP.cleanup()


def _headers(case: Any, mode: str) -> dict[str, str]:
    """The credentials a real client would send; the generated values stay elsewhere."""
    path = case.formatted_path
    if path.startswith("/admin/"):
        return {"authorization": f"Bearer {ADMIN_TOKEN}"}
    if mode != "jwt":
        return {}
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": SERVERS[mode].url + path, "iat": now, "exp": now + 300,
              "jti": str(uuid.uuid4())}
    token = jwt.encode(claims, _KEY, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("mode", ["off", "jwt"])
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_answer_is_documented_and_no_server_error(case: Any, mode: str) -> None:
    """No 5xx, and status, content type and body as documented, for generated input."""
    response = case.call_and_validate(base_url=SERVERS[mode].url,
                                      headers=_headers(case, mode), checks=RESPONSE_CHECKS)
    STATUSES[f"{mode} {case.method} {case.path} {response.status_code}"] += 1


def test_app_documents_cds_bodies() -> None:
    app = APPS["off"][0]
    post = app.openapi()["paths"]["/cds-services/{service_id}"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CdsRequest")
    assert "400" in post["responses"] and "422" not in post["responses"]


def test_every_operation_is_fuzzed() -> None:
    """The document holds the admin paths (admin is on here) and nothing is left out."""
    paths = set(fuzzing_openapi(APPS["off"][0])["paths"])
    assert {"/admin/audit/report", "/admin/audit/verify", "/cds-services",
            "/cds-services/{service_id}", "/cds-services/{service_id}/feedback", "/health",
            "/ready", "/metrics"} <= paths


def test_jwt_mode_fuzzing_reached_past_the_token_check() -> None:
    """Runs after the fuzzing (file order): in JWT mode most CDS Hooks answers were not 401,
    so the signed tokens were accepted and the service itself was fuzzed."""
    cds = {key: count for key, count in STATUSES.items()
           if key.startswith("jwt ") and " /cds-services" in key}
    total = sum(cds.values())
    refused = sum(count for key, count in cds.items() if key.endswith(" 401"))
    if not any(key.startswith("jwt ") for key in STATUSES):
        pytest.skip("the JWT-mode fuzzing was not selected in this run")
    assert total > 0 and refused * 2 < total, (refused, total)
