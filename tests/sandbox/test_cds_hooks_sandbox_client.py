"""The public CDS Hooks Sandbox as a client, replayed against the real service over HTTP with
auth on: its CORS preflights, its JWT (ES384, its issuer and jku, aud = the exact endpoint
URL, 300-second lifetime, a jti), and its lenient draftOrders (Bundle without ``type``,
MedicationRequest without ``intent``, ``category`` as an object). It gets cards.

The Sandbox's private key is not ours, so the test signs with its own P-384 key registered
under the Sandbox's issuer in place of the shipped key set — the only difference from the
real Sandbox's calls.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.auth.replay import DatabaseReplayCache
from cds_service.auth.tokens import Authenticator
from cds_service.auth.trust import SANDBOX_ISSUER, SANDBOX_JKU, load_trust
from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import Scenario, load_scenarios, shifted_request
from tests.conftest import FIXED_NOW, LiveServer
from tests.sandbox.conftest import runtime_of

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SCENARIOS = {s.id: s for s in load_scenarios(PROJECT_ROOT / "fixtures")}


@dataclass
class SandboxClient:
    """Sends what the CDS Hooks Sandbox sends."""

    server: LiveServer
    key: ec.EllipticCurvePrivateKey

    def token(self, path: str) -> str:
        iat = int(time.time())
        claims = {
            "iss": SANDBOX_ISSUER,
            "aud": self.server.url + path,
            "exp": iat + 300,
            "iat": iat,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": SANDBOX_KID, "typ": "JWT", "jku": SANDBOX_JKU}
        return jwt.encode(claims, self.key, algorithm="ES384", headers=headers)

    def preflight(self, path: str) -> httpx.Response:
        return httpx.options(self.server.url + path, headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "POST" if path != "/cds-services" else "GET",
            "Access-Control-Request-Headers": "authorization,content-type",
        })

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        assert self.preflight(path).status_code in (200, 204)
        headers = {"Origin": SANDBOX_ORIGIN, "Authorization": f"Bearer {self.token(path)}"}
        return httpx.request(method, self.server.url + path, json=body, headers=headers,
                             timeout=30)


@pytest.fixture
def sandbox_client(web_server: Callable[..., LiveServer]) -> Iterator[SandboxClient]:
    key = ec.generate_private_key(ec.SECP384R1())
    jwks = {"keys": [{**ECAlgorithm.to_jwk(key.public_key(), as_dict=True),
                      "kid": SANDBOX_KID, "use": "sig", "alg": "ES384"}]}
    server = web_server(auth_mode="jwt", trust_sandbox=True)
    runtime = runtime_of(server)
    # The shipped Sandbox key set, replaced by the test's: the one way to sign as the Sandbox.
    runtime.auth = Authenticator(
        runtime.settings, runtime.jwks_http, DatabaseReplayCache(runtime.store.database),
        trust=load_trust(runtime.settings, sandbox_jwks=jwks),
    )
    yield SandboxClient(server, key)


def sandbox_draft_orders(scenario: Scenario) -> dict[str, Any]:
    """The scenario's order-sign request, with draftOrders bent the way the Sandbox bends them."""
    request = shifted_request(scenario, FIXED_NOW)
    request["hookInstance"] = str(uuid.uuid4())
    drafts = copy.deepcopy(request["context"]["draftOrders"])
    drafts.pop("type", None)
    for entry in drafts["entry"]:
        resource = entry["resource"]
        resource.pop("intent", None)
        category = resource.get("category")
        if isinstance(category, list):
            resource["category"] = category[0]
        resource.setdefault("category", {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "outpatient"}]})
    request["context"]["draftOrders"] = drafts
    return request


def finding_keys(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted(
        (c["extension"]["itb-cds.finding"]["rule"], c["extension"]["itb-cds.finding"]["outcome"],
         c["indicator"])
        for c in body["cards"]
    )


def test_preflights_from_the_sandbox_origin_pass_without_a_token(
    sandbox_client: SandboxClient,
) -> None:
    for path in ("/cds-services", "/cds-services/itb-order-sign",
                 "/cds-services/itb-order-sign/feedback"):
        response = sandbox_client.preflight(path)
        assert response.status_code in (200, 204)
        assert response.headers["access-control-allow-origin"] in ("*", SANDBOX_ORIGIN)
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed


def test_the_sandbox_discovers_the_services_with_its_jwt(sandbox_client: SandboxClient) -> None:
    response = sandbox_client.call("GET", "/cds-services")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", SANDBOX_ORIGIN)
    ids = {s["id"]: s["hook"] for s in response.json()["services"]}
    assert ids["itb-order-sign"] == "order-sign"


def test_a_token_for_another_endpoint_is_refused(sandbox_client: SandboxClient) -> None:
    token = sandbox_client.token("/cds-services")  # aud is discovery, not the service
    response = httpx.post(
        sandbox_client.server.url + "/cds-services/itb-order-sign",
        json={}, headers={"Authorization": f"Bearer {token}", "Origin": SANDBOX_ORIGIN},
    )
    assert response.status_code == 401


def test_the_sandbox_lenient_draft_orders_get_cards_and_feedback_is_stored(
    sandbox_client: SandboxClient,
) -> None:
    scenario = SCENARIOS["candidacy-order-sign-above-max-sandbox"]
    request = sandbox_draft_orders(scenario)
    draft = request["context"]["draftOrders"]
    assert "type" not in draft
    assert all("intent" not in e["resource"] for e in draft["entry"])
    assert all(isinstance(e["resource"]["category"], dict) for e in draft["entry"])

    response = sandbox_client.call("POST", f"/cds-services/{scenario.service}", request)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] in ("*", SANDBOX_ORIGIN)
    body = response.json()
    assert finding_keys(body) == sorted(
        (e.rule, e.outcome, e.indicator) for e in scenario.expected)

    card = body["cards"][0]
    feedback = {"feedback": [{
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-06-15T09:01:00Z",
    }]}
    stored = sandbox_client.call("POST", f"/cds-services/{scenario.service}/feedback", feedback)
    assert stored.status_code == 200, stored.text
    store = runtime_of(sandbox_client.server).store
    (row,) = store.feedback_for(request["hookInstance"])
    assert row.outcome == "accepted"


def test_the_sandbox_pointed_at_our_fhir_endpoint_gets_the_same_cards(
    sandbox_client: SandboxClient,
) -> None:
    scenario = SCENARIOS["refill-overdue"]
    request = shifted_request(scenario, FIXED_NOW)
    request["hookInstance"] = str(uuid.uuid4())
    del request["prefetch"]
    request["fhirServer"] = sandbox_client.server.url + "/fhir"
    response = sandbox_client.call("POST", f"/cds-services/{scenario.service}", request)
    assert response.status_code == 200, response.text
    assert finding_keys(response.json()) == sorted(
        (e.rule, e.outcome, e.indicator) for e in scenario.expected)
