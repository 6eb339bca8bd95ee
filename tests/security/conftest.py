"""The service as deployed: ``python -m cds_service.serve`` in a real subprocess on loopback,
with a production profile (JWT, trust file, audit key, FHIR allowlist) unless a test says
otherwise, and CDS client tokens signed by a key made here."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.config import PROJECT_ROOT
from tests.conftest import free_port

ISSUER = "https://ehr.example.org"
PUBLIC_BASE_URL = "https://cds.example.org"  # what clients use; TLS ends in front of us
START_DEADLINE_S = 60.0


@pytest.fixture(scope="session")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def sign(key: ec.EllipticCurvePrivateKey, path: str, **claims: Any) -> dict[str, str]:
    """Authorization header of a fresh CDS client token for ``path``."""
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "ehr-client", "aud": PUBLIC_BASE_URL + path, "iat": now,
            "exp": now + 300, "jti": str(uuid.uuid4()), **claims}
    token = jwt.encode(body, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})
    return {"Authorization": f"Bearer {token}"}


def production_env(tmp_path: Path, key: ec.EllipticCurvePrivateKey,
                   **overrides: str | None) -> dict[str, str]:
    """Every setting the production profile needs; ``None`` in ``overrides`` unsets one."""
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES384"}
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": {ISSUER: {"jwks": {"keys": [jwk]}}}}))
    key_file = tmp_path / "audit.key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32) + "\n")
        key_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITB_CDS_")}
    env.update({
        "ITB_CDS_PROFILE": "production",
        "ITB_CDS_AUTH_MODE": "jwt",
        "ITB_CDS_TRUST_FILE": str(trust),
        "ITB_CDS_CORS_ORIGINS": "https://ehr.example.org",
        "ITB_CDS_SANDBOX_ENABLED": "false",
        "ITB_CDS_TRUST_SANDBOX": "false",
        "ITB_CDS_FHIR_SERVER_ALLOWLIST": "https://fhir.example.org/r4",
        "ITB_CDS_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "ITB_CDS_AUDIT_HMAC_KEY_FILE": str(key_file),
        "ITB_CDS_ADMIN_TOKEN": "a" * 40,
        "ITB_CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.sqlite'}",
        "ITB_CDS_SPOOL_PATH": str(tmp_path / "audit.spool"),
    })
    for name, value in overrides.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


def serve_command(port: int, host: str = "127.0.0.1", workers: int = 1) -> list[str]:
    return [sys.executable, "-m", "cds_service.serve", "--host", host, "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning"]


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    tls: Path | None = None  # the certificate to verify, when the service speaks TLS

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.tls)) if self.tls else True

    def rss_peak_mb(self) -> float:
        """The worker's peak resident memory (one worker: the process itself)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")


def _up(service: Service) -> bool:
    try:
        return httpx.get(service.url + "/health", timeout=2,
                         verify=service.verify).status_code == 200
    except httpx.TransportError:
        return False


class Runner:
    """Starts the production command; ``stop_all`` stops (SIGINT, then SIGKILL) what it
    started."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[Service] = []

    def start(self, env: dict[str, str], workers: int = 1, tls: Path | None = None) -> Service:
        port = free_port()
        log = self.logs / f"service-{port}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(serve_command(port, workers=workers), cwd=PROJECT_ROOT,
                                       env=env, stdout=out, stderr=subprocess.STDOUT)
        service = Service(process, port, log, tls)
        self.started.append(service)
        deadline = time.monotonic() + START_DEADLINE_S
        while not _up(service):  # an outside process: nothing to block on but polling
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"service did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        return service

    def stop_all(self) -> None:
        for service in self.started:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGINT)
                try:
                    service.process.wait(30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        service.process.kill()
                    service.process.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start the production command with ``env``; stopped at the end of the test."""
    runner = Runner(tmp_path)
    yield runner.start
    runner.stop_all()
