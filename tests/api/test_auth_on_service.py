"""The real service with ITB_CDS_AUTH_MODE=jwt: preflights pass, everything else needs a token."""

from __future__ import annotations

import json
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

from cds_service.services import SERVICES_BY_ID
from tests.conftest import LiveServer

ISSUER = "https://ehr.example.org"


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def secured(
    tmp_path: Path,
    live_app_factory: Callable[..., LiveServer],
    signing_key: ec.EllipticCurvePrivateKey,
) -> tuple[LiveServer, Callable[..., str]]:
    jwk = {**ECAlgorithm.to_jwk(signing_key.public_key(), as_dict=True), "kid": "k1",
           "alg": "ES384"}
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": {ISSUER: {"jwks": {"keys": [jwk]}}}}))
    server = live_app_factory(auth_mode="jwt", trust_file=trust)

    def token(path: str, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "ehr-client", "aud": server.url + path, "iat": now,
                  "exp": now + 300, "jti": str(uuid.uuid4())}
        claims.update(overrides)
        return jwt.encode(claims, signing_key, algorithm="ES384",
                          headers={"kid": "k1", "typ": "JWT"})

    return server, token


def request_body() -> dict[str, Any]:
    prefetch: dict[str, Any] = dict.fromkeys(SERVICES_BY_ID["itb-patient-view"].prefetch_keys)
    prefetch["patient"] = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-02-03"}
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "p1"}, "prefetch": prefetch}


def test_preflight_needs_no_token(secured: tuple[LiveServer, Callable[..., str]]) -> None:
    server, _ = secured
    for path in ("/cds-services", "/cds-services/itb-patient-view",
                 "/cds-services/itb-patient-view/feedback"):
        response = httpx.options(server.url + path, headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert 200 <= response.status_code < 300
        assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_discovery_without_token_is_401(secured: tuple[LiveServer, Callable[..., str]]) -> None:
    server, _ = secured
    response = httpx.get(server.url + "/cds-services")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "login", "diagnostics": "unauthorized"}]}


def test_valid_token_opens_every_endpoint_once(
    secured: tuple[LiveServer, Callable[..., str]],
) -> None:
    server, token = secured
    discovery = httpx.get(server.url + "/cds-services",
                          headers={"Authorization": "Bearer " + token("/cds-services")})
    assert discovery.status_code == 200
    path = "/cds-services/itb-patient-view"
    bearer = {"Authorization": "Bearer " + token(path)}
    first = httpx.post(server.url + path, json=request_body(), headers=bearer)
    assert first.status_code == 200, first.text
    replay = httpx.post(server.url + path, json=request_body(), headers=bearer)
    assert replay.status_code == 401
    feedback_path = path + "/feedback"
    feedback = httpx.post(
        server.url + feedback_path,
        json={"feedback": [{"card": "c", "outcome": "accepted",
                            "outcomeTimestamp": "2026-06-15T09:00:00Z"}]},
        headers={"Authorization": "Bearer " + token(feedback_path)})
    assert feedback.status_code == 200
    assert httpx.post(server.url + feedback_path, json={}).status_code == 401
    ready = httpx.get(server.url + "/ready").json()
    assert ready["authMode"] == "jwt"


def test_audience_must_be_the_exact_endpoint(
    secured: tuple[LiveServer, Callable[..., str]],
) -> None:
    server, token = secured
    path = "/cds-services/itb-patient-view"
    wrong = token("/cds-services/itb-order-sign")
    response = httpx.post(server.url + path, json=request_body(),
                          headers={"Authorization": "Bearer " + wrong})
    assert response.status_code == 401


def test_a_database_outage_degrades_the_replay_cache_instead_of_refusing_calls(
    tmp_path: Path, live_app_factory: Callable[..., LiveServer],
    signing_key: ec.EllipticCurvePrivateKey,
) -> None:
    """The replay cache lives in the audit database. With the database gone (its directory
    moved away: SQLite cannot open it) calls still answer, each worker refuses the replays it
    sees itself, and /ready says why it is degraded until the database is back."""
    jwk = {**ECAlgorithm.to_jwk(signing_key.public_key(), as_dict=True), "kid": "k1",
           "alg": "ES384"}
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": {ISSUER: {"jwks": {"keys": [jwk]}}}}))
    (tmp_path / "db").mkdir()
    server = live_app_factory(auth_mode="jwt", trust_file=trust,
                              database_url=f"sqlite:///{tmp_path / 'db' / 'audit.sqlite'}")
    path = "/cds-services/itb-patient-view"

    def bearer() -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": server.url + path, "iat": now, "exp": now + 300,
                  "jti": str(uuid.uuid4())}
        token = jwt.encode(claims, signing_key, algorithm="ES384",
                           headers={"kid": "k1", "typ": "JWT"})
        return {"Authorization": "Bearer " + token}

    assert httpx.post(server.url + path, json=request_body(), headers=bearer()).status_code == 200
    (tmp_path / "db").rename(tmp_path / "db-away")
    try:
        headers = bearer()
        first = httpx.post(server.url + path, json=request_body(), headers=headers)
        assert first.status_code == 200, first.text
        assert httpx.post(server.url + path, json=request_body(),
                          headers=headers).status_code == 401  # replayed to the same worker
        ready = httpx.get(server.url + "/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "degraded"
        assert any("replay" in reason for reason in ready.json()["degraded"])
    finally:
        (tmp_path / "db-away").rename(tmp_path / "db")
    # The first write after the outage replays the spool; the replay cache is shared again.
    assert httpx.post(server.url + path, json=request_body(), headers=bearer()).status_code == 200
    assert httpx.post(server.url + path, json=request_body(), headers=headers).status_code == 401
    assert httpx.get(server.url + "/ready").json()["status"] == "ready"
