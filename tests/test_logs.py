"""What an operator reads: the log of a two-worker run in JWT mode through a refused token, a
call answered from a FHIR server that echoes the access token into its next links, a JWT in
a query string, and a client that hangs up mid-body. Every line is one JSON object; both
workers log at the configured level; the refusal and its reason are there; no token, no
patient id and no traceback are."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cds_service.logs import JsonFormatter, Redact, redact
from tests.workers import two_workers

ISSUER = "https://ehr.example.org"
PATIENT_ID = "pt-4711-secret"
FHIR_TOKEN = "opaque-fhir-access-7f3a9c"
SERVICE = "/cds-services/itb-patient-view"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")


@contextlib.contextmanager
def echoing_fhir_server() -> Iterator[str]:
    """Searches answer an empty first page whose next link carries the access token (in the
    path and the query); the patient reads fine."""

    async def search(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        rtype = request.path_params["type"]
        link = f"{request.base_url}fhir/{rtype}/_page/{token}?patient={PATIENT_ID}&t={token}"
        return JSONResponse({"resourceType": "Bundle", "type": "searchset",
                             "link": [{"relation": "next", "url": link}]})

    async def page(request: Request) -> JSONResponse:
        return JSONResponse({"resourceType": "Bundle", "type": "searchset"})

    async def patient(request: Request) -> JSONResponse:
        return JSONResponse({"resourceType": "Patient", "id": request.path_params["id"],
                             "birthDate": "1980-02-01"})

    app = Starlette(routes=[Route("/fhir/Patient/{id}", patient),
                            Route("/fhir/{type}/_page/{token}", page),
                            Route("/fhir/{type}", search)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/fhir"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class Signer:
    def __init__(self, kid: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = kid
        self.jwk = {**ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": kid}

    def token(self, audience: str) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.key, algorithm="ES256",
                          headers={"kid": self.kid, "typ": "JWT"})


def hang_up_mid_body(port: int, token: str) -> None:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall((f"POST {SERVICE} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                      "Content-Length: 100000\r\n\r\n{\"hook\": ").encode())
        time.sleep(0.2)  # let the worker start reading the body before the line drops


def test_a_two_worker_log_names_refusals_and_leaks_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # This test's own client would log the URL with the JWT in it (conftest fails on that).
    caplog.set_level(logging.WARNING, logger="httpx")
    trusted, impostor = Signer("ehr-1"), Signer("ehr-1")
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": {ISSUER: {"jwks": {"keys": [trusted.jwk]},
                                                      "algorithms": ["ES256"]}}}))
    tokens: list[str] = []

    with echoing_fhir_server() as fhir_base, two_workers(
            tmp_path, "--log-level", "info", ITB_CDS_AUTH_MODE="jwt",
            ITB_CDS_TRUST_FILE=str(trust)) as service:
        def bearer(signer: Signer, path: str = SERVICE) -> dict[str, str]:
            tokens.append(signer.token(service.url + path))
            return {"Authorization": f"Bearer {tokens[-1]}"}

        refused = httpx.post(service.url + SERVICE, json={}, headers=bearer(impostor))
        assert refused.status_code == 401

        call = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                "fhirServer": fhir_base,
                "fhirAuthorization": {"access_token": FHIR_TOKEN, "token_type": "Bearer",
                                      "expires_in": 300, "scope": "patient/*.read",
                                      "subject": "itb-cds"},
                "context": {"userId": "Practitioner/1", "patientId": PATIENT_ID}}
        answered = httpx.post(service.url + SERVICE, json=call, headers=bearer(trusted),
                              timeout=30)
        assert answered.status_code == 200, answered.text

        in_query = trusted.token(service.url + "/cds-services")
        tokens.append(in_query)
        discovery = httpx.get(f"{service.url}/cds-services?jwt={in_query}",
                              headers=bearer(trusted, "/cds-services"))
        assert discovery.status_code == 200

        hang_up_mid_body(service.port, trusted.token(service.url + SERVICE))
        service.wait_for_record("the disconnect's line", outcome="client_disconnected")
        records = service.records()  # every line parses as one JSON object

    text = service.log.read_text()
    refusals = [r for r in records if r["msg"].startswith("refused CDS client token")]
    assert [r["level"] for r in refusals] == ["info"]
    assert "bad signature" in refusals[0]["msg"]
    starts = {r["pid"] for r in records if r["msg"] == "auth mode: jwt"}
    assert len(starts) == 2, "a worker's INFO lines were dropped"
    [fallback] = [r for r in records if r.get("hookInstance") == call["hookInstance"]]
    assert fallback["status"] == 200 and fallback["fhir_fetches"] > 0
    assert fallback["cards"] == {} and fallback["duration_ms"] > 0
    [disconnect] = [r for r in records if r.get("outcome") == "client_disconnected"]
    assert disconnect["level"] == "info" and disconnect["endpoint"] == "service"

    assert all(token not in text for token in tokens)
    assert JWT_SHAPE.search(text) is None
    assert FHIR_TOKEN not in text and PATIENT_ID not in text
    assert "Traceback" not in text and "ClientDisconnect" not in text
    assert all("exception" not in r for r in records)


@pytest.mark.parametrize(("line", "kept", "gone"), [
    ('127.0.0.1:5 - "GET /cds-services?jwt=eyJhbGciOi.eyJzdWIi.c2ln HTTP/1.1" 200',
     '"GET /cds-services?[query] HTTP/1.1" 200', "eyJ"),
    ('HTTP Request: GET http://fhir/Condition?patient=pt-1 "HTTP/1.1 200 OK"',
     "http://fhir/Condition?[query]", "pt-1"),
    ("GET /fhir/Patient/pt-1 HTTP/1.1", "/fhir/Patient/[id]", "pt-1"),
    ('{"access_token": "s3cret"}', '"access_token": "[redacted]"', "s3cret"),
    ("Authorization: Bearer s3cret", "Bearer [redacted]", "s3cret"),
    ("refused CDS client token: bad signature (iss='https://ehr', kid='k1')",
     "refused CDS client token: bad signature (iss='https://ehr', kid='k1')", "[redacted]"),
])
def test_redaction_keeps_the_story_and_drops_the_secret(line: str, kept: str, gone: str
                                                        ) -> None:
    assert kept in redact(line) and gone not in redact(line)


def test_an_exception_is_logged_as_its_type_and_place_not_its_message() -> None:
    try:
        raise ValueError(f"patient {PATIENT_ID} has token {FHIR_TOKEN}")
    except ValueError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None,
                                   (type(exc), exc, exc.__traceback__))
    Redact().filter(record)
    line: dict[str, Any] = json.loads(JsonFormatter().format(record))
    assert line["exception"] == "ValueError" and line["at"].startswith(__file__)
    assert PATIENT_ID not in json.dumps(line) and FHIR_TOKEN not in json.dumps(line)
