"""The trust configuration: the trust file, and what stops the service from starting."""

from __future__ import annotations

import pytest

from cds_service.auth.replay import InMemoryReplayCache
from cds_service.auth.tokens import Authenticator
from cds_service.auth.trust import (
    SANDBOX_ISSUER,
    InvalidJwks,
    TrustConfigError,
    load_trust,
    load_trust_file,
    parse_jwks,
)

GOOD_JKU = "https://ehr.example.org/.well-known/jwks.json"


@pytest.mark.parametrize("name", ["trust.yaml", "trust.yml", "trust.json"])
def test_a_trust_file_is_read_as_json_or_yaml(tmp_path, kit, keys, name):
    path = kit.write_trust_file(
        tmp_path / name,
        {
            "issuers": {
                "https://ehr.example.org": {"jku": [GOOD_JKU], "algorithms": ["ES384"]},
                "https://other.example.org": {
                    "jwks": kit.jwks(keys.ec256, keys.rsa),
                    "tenants": ["t1", "t2"],
                },
            }
        },
    )

    issuers = load_trust_file(path, allow_http=False)

    ehr = issuers["https://ehr.example.org"]
    assert ehr.jku == {GOOD_JKU}
    assert ehr.algorithms == {"ES384"}
    assert ehr.tenants is None
    other = issuers["https://other.example.org"]
    assert set(other.keys.keys) == {keys.ec256.kid, keys.rsa.kid}
    assert other.tenants == {"t1", "t2"}
    assert "RS256" in other.algorithms and "HS256" not in other.algorithms


def entry(**values):
    return {"issuers": {"https://ehr.example.org": values}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (entry(), "jku allowlist and/or an inline jwks"),
        (entry(jku=[GOOD_JKU], algorithms=["HS256"]), "algorithms"),
        (entry(jku=[GOOD_JKU], algorithms=["none"]), "algorithms"),
        (entry(jku=[GOOD_JKU], algorithms=[]), "at least one algorithm"),
        (entry(jku=["ftp://ehr.example.org/jwks"]), "not an absolute http(s) URL"),
        (entry(jku=["/relative/jwks.json"]), "not an absolute http(s) URL"),
        (entry(jku=["http://ehr.example.org/jwks.json"]), "is not https"),
        (entry(jku=[GOOD_JKU], tenants=[]), "empty tenant list"),
        (entry(jku=[GOOD_JKU], audience="x"), "Extra inputs are not permitted"),
        (entry(jwks={"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}), "symmetric"),
        (entry(jwks={"keys": []}), "empty"),
        (entry(jwks={"no": "keys"}), "not a JWKS"),
        ({"https://ehr.example.org": {"jku": [GOOD_JKU]}}, "issuers"),
        ([], "issuers"),
    ],
)
def test_a_bad_trust_file_stops_startup_with_a_clear_message(tmp_path, kit, document, message):
    path = tmp_path / "trust.json"
    kit.write_trust_file(path, document)
    settings = kit.jwt_settings(trust_file=path, jwks_allow_http=False)

    with pytest.raises(TrustConfigError) as caught:
        load_trust(settings)

    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_private_key_material_in_the_trust_file_is_refused(tmp_path, kit, keys):
    from jwt.algorithms import ECAlgorithm

    private_jwk = {**ECAlgorithm.to_jwk(keys.ec256.private, as_dict=True), "kid": "k"}
    path = kit.write_trust_file(tmp_path / "t.json", entry(jwks={"keys": [private_jwk]}))

    with pytest.raises(TrustConfigError, match="private or symmetric key material"):
        load_trust_file(path, allow_http=False)


def test_an_unreadable_or_unparsable_trust_file_stops_startup(tmp_path, kit):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(TrustConfigError, match="cannot be read"):
        load_trust(kit.jwt_settings(trust_file=missing))

    broken = tmp_path / "broken.yaml"
    broken.write_text("issuers: [unclosed")
    with pytest.raises(TrustConfigError, match="not valid JSON/YAML"):
        load_trust(kit.jwt_settings(trust_file=broken))


def test_http_jku_is_accepted_only_when_allowed(tmp_path, kit):
    path = kit.write_trust_file(tmp_path / "t.yaml", entry(jku=["http://127.0.0.1:9/jwks"]))

    assert load_trust_file(path, allow_http=True)
    with pytest.raises(TrustConfigError, match="ITB_CDS_JWKS_ALLOW_HTTP"):
        load_trust_file(path, allow_http=False)


@pytest.mark.anyio
async def test_jwt_mode_without_any_trusted_issuer_stops_startup(kit, http):
    settings = kit.jwt_settings()

    with pytest.raises(TrustConfigError, match="no issuer is trusted"):
        Authenticator(settings, http, InMemoryReplayCache())


@pytest.mark.anyio
async def test_auth_off_needs_no_trust(kit, http):
    authenticator = Authenticator(kit.jwt_settings(auth_mode="off"), http, InMemoryReplayCache())
    assert authenticator.trusted_issuers == ()


def test_the_sandbox_issuer_cannot_also_be_in_the_trust_file(tmp_path, kit):
    path = kit.write_trust_file(
        tmp_path / "t.yaml", {"issuers": {SANDBOX_ISSUER: {"jku": [GOOD_JKU]}}}
    )

    with pytest.raises(TrustConfigError, match="trusted twice"):
        load_trust(kit.jwt_settings(trust_file=path, trust_sandbox=True))


def test_a_short_rsa_key_is_refused(kit):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = {**RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True), "kid": "weak"}

    with pytest.raises(InvalidJwks, match="shorter than 2048"):
        parse_jwks({"keys": [jwk]}, strict=True)


def test_a_key_declaring_an_algorithm_unfit_for_its_type_is_refused(keys):
    with pytest.raises(InvalidJwks, match="unfit"):
        parse_jwks({"keys": [{**keys.ec256.public_jwk, "alg": "ES384"}]}, strict=True)


def test_a_key_declaring_its_algorithm_is_bound_to_it(keys):
    key_set = parse_jwks({"keys": [{**keys.rsa.public_jwk, "alg": "PS256"}]}, strict=True)

    key = key_set.get(keys.rsa.kid)
    assert key is not None
    assert set(key.verifiers) == {"PS256"}


def test_duplicate_kids_are_refused_when_configured_and_dropped_when_fetched(keys):
    document = {"keys": [keys.ec256.public_jwk, keys.impostor.public_jwk, keys.rsa.public_jwk]}

    with pytest.raises(InvalidJwks, match="appears twice"):
        parse_jwks(document, strict=True)
    fetched = parse_jwks(document, strict=False)
    assert fetched.get(keys.ec256.kid) is None
    assert fetched.get(keys.rsa.kid) is not None
