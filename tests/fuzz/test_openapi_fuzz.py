"""Fuzzing the HTTP surface from its OpenAPI document (schemathesis, in-process ASGI).

Every generated request must get an answer that is not a server error and that matches what
the document says: status code, content type and body schema. The CDS routes read their body
by hand; the app documents those bodies itself (cds_service/api/openapi.py, from the wire
models) and ``test_app_documents_cds_bodies`` keeps it so.

The fuzzed ``fhirServer`` is pinned to a closed loopback port: the service must never be
steered by a generated request to any other host.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service.app import create_app
from tests.conftest import FIXED_NOW, make_settings

EXAMPLE_FIXTURE = Path(__file__).parents[2] / "fixtures/mixed/mixed-padded-refill-due-soon.json"
MAX_EXAMPLES = 25  # per operation; the whole module stays well under 60 s
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
    # The CDS Hooks surface and the operator probes; /admin is off without a token and the
    # web pages belong to their own tests.
    doc["paths"] = {p: ops for p, ops in doc["paths"].items()
                    if p.startswith("/cds-services") or p in ("/health", "/ready", "/metrics")}
    return doc


# Built at import: schemathesis parametrizes at collection time. The module fixture below
# removes the temp dir when the module is done.
_TMP = tempfile.TemporaryDirectory(prefix="itb-fuzz-")
APP = create_app(make_settings(Path(_TMP.name), fhir_budget_seconds=0.5), clock=lambda: FIXED_NOW)
schema = schemathesis.openapi.from_dict(fuzzing_openapi(APP))
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    print("\nfuzz answers:", dict(sorted(STATUSES.items())))
    APP.state.runtime.store.close()
    _TMP.cleanup()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_answer_is_documented_and_no_server_error(case: Any) -> None:
    """No 5xx, and status, content type and body as documented, for generated input."""
    response = case.call_and_validate(checks=RESPONSE_CHECKS)
    STATUSES[f"{case.method} {case.path} {response.status_code}"] += 1


def test_app_documents_cds_bodies() -> None:
    post = APP.openapi()["paths"]["/cds-services/{service_id}"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CdsRequest")
    assert "400" in post["responses"] and "422" not in post["responses"]
