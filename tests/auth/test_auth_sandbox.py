"""The CDS Hooks Sandbox as a dev trust entry (ITB_CDS_TRUST_SANDBOX=true)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service.auth.replay import InMemoryReplayCache
from cds_service.auth.tokens import Authenticator, Unauthorized
from cds_service.auth.trust import (
    SANDBOX_ISSUER,
    SANDBOX_JKU,
    load_sandbox_jwks,
    load_trust,
    parse_jwks,
    sandbox_trust,
)

SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"


def test_the_shipped_sandbox_key_set_loads():
    document = load_sandbox_jwks()

    key_set = parse_jwks(document, strict=True)

    assert list(key_set.keys) == [SANDBOX_KID]
    key = key_set.get(SANDBOX_KID)
    assert key is not None and set(key.verifiers) == {"ES384"}


def test_the_sandbox_entry_answers_for_its_jku_from_the_shipped_keys():
    trust = sandbox_trust()

    assert trust.issuer == SANDBOX_ISSUER
    assert trust.jku == {SANDBOX_JKU}
    assert trust.pinned[SANDBOX_JKU].get(SANDBOX_KID) is not None
    assert trust.algorithms == {"ES384"}


@pytest.fixture(scope="module")
def sandbox_format_key():
    """A P-384 key of our own, registered under the Sandbox's kid."""
    private = ec.generate_private_key(ec.SECP384R1())
    jwk = {
        **ECAlgorithm.to_jwk(private.public_key(), as_dict=True),
        "kid": SANDBOX_KID,
        "use": "sig",
        "alg": "ES384",
    }
    return private, {"keys": [jwk]}


def sandbox_token(private_key, aud: str) -> str:
    """A token exactly in the Sandbox's format."""
    iat = int(time.time())
    return jwt.encode(
        {"iss": SANDBOX_ISSUER, "aud": aud, "exp": iat + 300, "iat": iat, "jti": str(uuid.uuid4())},
        private_key,
        algorithm="ES384",
        headers={"typ": "JWT", "kid": SANDBOX_KID, "jku": SANDBOX_JKU},
    )


@pytest.fixture
async def offline_http() -> AsyncIterator[tuple[httpx.AsyncClient, list[httpx.Request]]]:
    """An HTTP client that records any request instead of sending it: none is expected."""
    attempted: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempted.append(request)
        return httpx.Response(599)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        yield client, attempted


@pytest.mark.anyio
async def test_a_sandbox_token_is_accepted_when_the_dev_entry_is_on_without_any_fetch(
    kit, sandbox_format_key, offline_http
):
    private, test_jwks = sandbox_format_key
    http, attempted = offline_http
    settings = kit.jwt_settings(trust_sandbox=True, jwks_allow_http=False)
    authenticator = Authenticator(
        settings,
        http,
        InMemoryReplayCache(),
        trust=load_trust(settings, sandbox_jwks=test_jwks),
    )

    identity = await authenticator.authenticate(
        "Bearer " + sandbox_token(private, kit.SERVICE_URL), kit.SERVICE_PATH
    )

    assert identity is not None
    assert identity.iss == SANDBOX_ISSUER and identity.kid == SANDBOX_KID
    assert attempted == []


@pytest.mark.anyio
async def test_a_sandbox_token_is_refused_when_the_dev_entry_is_off(
    kit, sandbox_format_key, offline_http, trust_file
):
    private, test_jwks = sandbox_format_key
    http, attempted = offline_http
    settings = kit.jwt_settings(trust_sandbox=False, trust_file=trust_file)
    authenticator = Authenticator(
        settings, http, InMemoryReplayCache(), trust=load_trust(settings, sandbox_jwks=test_jwks)
    )

    with pytest.raises(Unauthorized, match="issuer is not trusted"):
        await authenticator.authenticate(
            "Bearer " + sandbox_token(private, kit.SERVICE_URL), kit.SERVICE_PATH
        )
    assert attempted == []


@pytest.mark.anyio
async def test_the_shipped_key_is_what_verifies_sandbox_tokens_by_default(
    kit, sandbox_format_key, offline_http
):
    # Our key is not the Sandbox's private key, so the shipped public key must refuse it.
    private, _ = sandbox_format_key
    http, _ = offline_http
    authenticator = Authenticator(kit.jwt_settings(trust_sandbox=True), http, InMemoryReplayCache())

    with pytest.raises(Unauthorized, match="bad signature"):
        await authenticator.authenticate(
            "Bearer " + sandbox_token(private, kit.SERVICE_URL), kit.SERVICE_PATH
        )
