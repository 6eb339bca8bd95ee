"""Acceptance 2: a fhirServer outside the allowlist gets a 4xx that says nothing of what is
there, and the service opens no connection to it (a loopback listener counts accepts). The
same listener under an allowed base is queried: the control that the counting works."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.fhir.allowlist import FhirServerPolicy, ServerBase
from tests.security.conftest import Service, production_env, sign

PATH = "/cds-services/itb-patient-view"


class CountingListener:
    """A TCP listener on loopback that counts connections and answers each with a 404."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n"
                             b"connection: close\r\n\r\n")


@pytest.fixture
def listener() -> Iterator[CountingListener]:
    counting = CountingListener()
    counting.thread.start()
    yield counting
    counting.sock.close()


def request(fhir_server: str) -> dict[str, Any]:
    """No prefetch at all: every key must be fetched from fhirServer."""
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "fhirServer": fhir_server,
            "fhirAuthorization": {"access_token": "secret-token-value", "token_type": "Bearer",
                                  "scope": "patient/*.read", "subject": "cds"},
            "context": {"userId": "Practitioner/1", "patientId": "p1"}}


def test_a_fhir_server_outside_the_allowlist_is_never_contacted(
        tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey,
        serve: Callable[..., Service], listener: CountingListener) -> None:
    allowed = f"http://127.0.0.1:{listener.port}/allowed/fhir"
    service = serve(production_env(tmp_path, signing_key, ITB_CDS_FHIR_SERVER_ALLOWLIST=allowed,
                                   ITB_CDS_FHIR_BUDGET_SECONDS="1"))

    refused = []
    for outside in (f"http://127.0.0.1:{listener.port}/other/fhir",  # same port, other base
                    f"http://127.0.0.1:{listener.port}/allowed/fhirx",  # a prefix, not a base
                    f"http://localhost:{listener.port}/allowed/fhir",  # another host name
                    f"http://127.0.0.1:{listener.port}/allowed/fhir/%2e%2e/%2e%2e/admin"):
        response = httpx.post(service.url + PATH, json=request(outside),
                              headers=sign(signing_key, PATH))
        refused.append(response.status_code)
        assert response.json()["resourceType"] == "OperationOutcome"
        assert str(listener.port) not in response.text and "secret" not in response.text
    assert refused == [403, 403, 403, 403]
    assert listener.accepted == 0

    # The control: the allowed base is queried (and answers 404, so the call gets 412).
    control = httpx.post(service.url + PATH, json=request(allowed),
                         headers=sign(signing_key, PATH))
    assert control.status_code == 412, control.text
    assert listener.accepted >= 1
    print(f"outside the allowlist: {refused}, 0 connections; allowed base: "
          f"{listener.accepted} connection(s)")


def test_per_issuer_and_tenant_bases_and_loopback_in_development_only() -> None:
    class Issuer:
        issuer = "https://ehr.example.org"
        fhir_servers = ("https://fhir.example.org/r4",)
        tenant_fhir_servers: ClassVar = {"ward-7": ("https://ward7.example.org/fhir",)}

    from cds_service.config import Settings

    production = FhirServerPolicy.for_settings(
        Settings(profile="production", fhir_server_allowlist=["https://shared.example.org/"]),
        [Issuer()])
    assert production.allows("https://shared.example.org/fhir/r4")
    assert production.allows("https://fhir.example.org/r4/", "https://ehr.example.org")
    assert not production.allows("https://fhir.example.org/r4", "https://other.example.org")
    assert production.allows("https://ward7.example.org/fhir", "https://ehr.example.org",
                             "ward-7")
    assert not production.allows("https://ward7.example.org/fhir", "https://ehr.example.org",
                                 "ward-8")
    assert not production.allows("http://127.0.0.1:8080/fhir")
    assert not production.allows("https://user:pw@shared.example.org/fhir")
    development = FhirServerPolicy.for_settings(Settings())
    assert development.allows("http://127.0.0.1:8080/fhir")
    assert development.allows("http://[::1]:8080/fhir")
    assert not development.allows("http://10.0.0.5:5432/")
    assert ServerBase.parse("HTTPS://Fhir.Example.org:443/r4/") == ServerBase(
        "https", "fhir.example.org", 443, "/r4")
