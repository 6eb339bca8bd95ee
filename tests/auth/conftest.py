"""Shared machinery for the CDS client authentication tests.

Keys are generated here (never checked in), key sets are served by a real HTTP server on
127.0.0.1, and every test's captured logs are scanned for anything shaped like a JWT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.auth.replay import InMemoryReplayCache
from cds_service.auth.tokens import Authenticator
from cds_service.auth.trust import TrustStore
from cds_service.config import AuthMode, Settings

PUBLIC_BASE_URL = "https://cds.example.org"
SERVICE_PATH = "/cds-services/itb-patient-view"
SERVICE_URL = PUBLIC_BASE_URL + SERVICE_PATH
EHR_ISSUER = "https://ehr.example.org"
STATIC_ISSUER = "https://static.example.org"
TENANT_ISSUER = "https://tenanted.example.org"
JWKS_PATH = "/jwks.json"

# Any compact JWS: a JSON header always base64url-encodes to "eyJ"; the second pattern catches
# other long three-segment base64url strings.
JWT_PATTERN = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
    r"|[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]*"
)


def find_jwts(text: str) -> list[str]:
    return JWT_PATTERN.findall(text)


def render_record(record: logging.LogRecord) -> str:
    return logging.Formatter("%(message)s").format(record)


@pytest.fixture(autouse=True)
def no_token_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test in this folder fails if anything logged during it contains a JWT."""
    caplog.set_level(logging.DEBUG)
    yield
    leaks = [
        f"{record.name}: {record.levelname}"
        for phase in ("setup", "call")
        for record in caplog.get_records(phase)
        if find_jwts(render_record(record))
    ]
    if leaks:
        pytest.fail(f"a JWT was logged by: {leaks}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- keys ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Any
    public_jwk: dict[str, Any]
    public_pem: bytes


def _ec_key(curve: ec.EllipticCurve, alg: str, kid: str) -> SigningKey:
    private = ec.generate_private_key(curve)
    return _signing_key(private, alg, kid, ECAlgorithm.to_jwk(private.public_key(), as_dict=True))


def _rsa_key(alg: str, kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _signing_key(private, alg, kid, RSAAlgorithm.to_jwk(private.public_key(), as_dict=True))


def _signing_key(private: Any, alg: str, kid: str, jwk: dict[str, Any]) -> SigningKey:
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(
        kid=kid, alg=alg, private=private, public_jwk={**jwk, "kid": kid}, public_pem=pem
    )


@dataclass(frozen=True)
class Keys:
    ec256: SigningKey
    ec384: SigningKey
    rsa: SigningKey
    rotated: SigningKey
    impostor: SigningKey  # same kid as ec256, different key pair


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        ec256=_ec_key(ec.SECP256R1(), "ES256", "ec256-1"),
        ec384=_ec_key(ec.SECP384R1(), "ES384", "ec384-1"),
        rsa=_rsa_key("RS256", "rsa-1"),
        rotated=_ec_key(ec.SECP256R1(), "ES256", "ec256-2"),
        impostor=_ec_key(ec.SECP256R1(), "ES256", "ec256-1"),
    )


def jwks(*signing_keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk for key in signing_keys]}


# --- a JWKS server on loopback ------------------------------------------------------------


class JwksServer:
    """A real HTTP server in a thread that serves key sets and counts requests per path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, tuple[int, bytes]] = {}
        self._hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    server._hits[self.path] += 1
                    status, body = server._documents.get(self.path, (404, b"{}"))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", JWKS_PATH)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), daemon=True
        )
        self._thread.start()

    def url(self, path: str = JWKS_PATH) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def publish(self, document: dict[str, Any], path: str = JWKS_PATH, status: int = 200) -> None:
        with self._lock:
            self._documents[path] = (status, json.dumps(document).encode())

    def fail(self, path: str = JWKS_PATH, status: int = 500) -> None:
        self.serve_raw(b"oops", path, status)

    def serve_raw(self, body: bytes, path: str = JWKS_PATH, status: int = 200) -> None:
        """Serves ``body`` as is; a 3xx status redirects to the good key set."""
        with self._lock:
            self._documents[path] = (status, body)

    def hits(self, path: str = JWKS_PATH) -> int:
        with self._lock:
            return self._hits[path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(jwks(keys.ec256, keys.ec384, keys.rsa))
    yield server
    server.close()


@pytest.fixture
def dead_url() -> str:
    """A loopback URL on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{JWKS_PATH}"


# --- configuration ------------------------------------------------------------------------


@dataclass
class FakeClock:
    now: float = field(default_factory=lambda: float(int(time.time())))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def write_trust_file(path: Path, document: dict[str, Any]) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps(document))
    else:
        path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def trust_file(tmp_path: Path, keys: Keys, jwks_server: JwksServer, dead_url: str) -> Path:
    return write_trust_file(
        tmp_path / "trust.yaml",
        {
            "issuers": {
                EHR_ISSUER: {
                    "jku": [jwks_server.url(), dead_url],
                    "algorithms": ["ES256", "ES384", "RS256", "PS256"],
                },
                STATIC_ISSUER: {
                    "jwks": jwks(keys.rsa),
                    "algorithms": ["RS256", "PS256"],
                },
                TENANT_ISSUER: {"jwks": jwks(keys.ec256), "tenants": ["clinic-a"]},
            }
        },
    )


def jwt_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "auth_mode": AuthMode.JWT,
        "public_base_url": PUBLIC_BASE_URL,
        "jwks_allow_http": True,
        "trust_sandbox": False,
        "trust_file": None,
        "jwt_max_lifetime_seconds": 3600,
        "jwt_leeway_seconds": 60,
        "jwks_cache_seconds": 600,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    return jwt_settings


@pytest.fixture
def settings(trust_file: Path) -> Settings:
    return jwt_settings(trust_file=trust_file)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def make_authenticator(http: httpx.AsyncClient, clock: FakeClock) -> Callable[..., Authenticator]:
    def make(settings: Settings, trust: TrustStore | None = None) -> Authenticator:
        return Authenticator(
            settings, http, InMemoryReplayCache(clock=clock), trust=trust, clock=clock
        )

    return make


@pytest.fixture
def authenticator(
    make_authenticator: Callable[..., Authenticator], settings: Settings
) -> Authenticator:
    return make_authenticator(settings)


# --- tokens -------------------------------------------------------------------------------

DROP = object()


@dataclass
class Minter:
    """Signs tokens in the CDS Hooks client format; keyword overrides change or DROP parts."""

    clock: FakeClock
    jku: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock.now)
        claims: dict[str, Any] = {
            "iss": EHR_ISSUER,
            "aud": SERVICE_URL,
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        return _apply(claims, overrides)

    def header(self, key: SigningKey, **overrides: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": key.alg, "typ": "JWT", "kid": key.kid, "jku": self.jku}
        return _apply(header, overrides)

    def token(self, key: SigningKey, header: dict[str, Any] | None = None, **claims: Any) -> str:
        head = self.header(key, **(header or {}))
        alg = head.pop("alg")
        if "typ" not in head:
            head["typ"] = None  # PyJWT adds typ JWT unless told to leave it out
        return jwt.encode(self.claims(**claims), key.private, algorithm=alg, headers=head)

    def bearer(self, key: SigningKey, header: dict[str, Any] | None = None, **claims: Any) -> str:
        return "Bearer " + self.token(key, header, **claims)


def _apply(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    result = dict(values)
    for name, value in overrides.items():
        if value is DROP:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT refuses to produce: unsigned, or HMAC-signed with ``secret``."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(digest)}"


@pytest.fixture
def mint(clock: FakeClock, jwks_server: JwksServer) -> Minter:
    return Minter(clock=clock, jku=jwks_server.url())


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (a conftest is not importable by name)."""
    return SimpleNamespace(
        DROP=DROP,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        SERVICE_PATH=SERVICE_PATH,
        SERVICE_URL=SERVICE_URL,
        EHR_ISSUER=EHR_ISSUER,
        STATIC_ISSUER=STATIC_ISSUER,
        TENANT_ISSUER=TENANT_ISSUER,
        JWKS_PATH=JWKS_PATH,
        forge=forge,
        jwks=jwks,
        b64url=b64url,
        find_jwts=find_jwts,
        render_record=render_record,
        write_trust_file=write_trust_file,
        jwt_settings=jwt_settings,
        JwksServer=JwksServer,
    )
