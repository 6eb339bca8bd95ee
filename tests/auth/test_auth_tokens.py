"""CDS client tokens: what is accepted, and each way a token is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_service.auth.tokens import Unauthorized

pytestmark = pytest.mark.anyio


async def refused(authenticator, header: str | None, path: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await authenticator.authenticate(header, path)
    return caught.value.reason


async def test_a_valid_token_yields_the_client_identity(authenticator, mint, keys, kit, clock):
    token = mint.bearer(keys.ec256, sub="ehr-client-7", jti="jti-1")

    identity = await authenticator.authenticate(token, kit.SERVICE_PATH)

    assert identity is not None
    assert identity.iss == kit.EHR_ISSUER
    assert identity.sub == "ehr-client-7"
    assert identity.tenant is None
    assert identity.kid == keys.ec256.kid
    assert identity.jti == "jti-1"
    assert identity.expires_at == datetime.fromtimestamp(int(clock.now) + 300, UTC)


@pytest.mark.parametrize("key_name", ["ec256", "ec384", "rsa"])
async def test_each_key_type_of_the_fetched_set_verifies(authenticator, mint, keys, kit, key_name):
    key = getattr(keys, key_name)

    identity = await authenticator.authenticate(mint.bearer(key), kit.SERVICE_PATH)

    assert identity is not None and identity.kid == key.kid


async def test_an_inline_rsa_key_verifies_rs256_and_ps256(authenticator, mint, keys, kit):
    for alg in ("RS256", "PS256"):
        token = mint.bearer(keys.rsa, header={"alg": alg, "jku": kit.DROP}, iss=kit.STATIC_ISSUER)
        identity = await authenticator.authenticate(token, kit.SERVICE_PATH)
        assert identity is not None and identity.iss == kit.STATIC_ISSUER


async def test_auth_off_accepts_anything_and_identifies_no_one(make_authenticator, kit):
    authenticator = make_authenticator(kit.jwt_settings(auth_mode="off"))

    assert await authenticator.authenticate(None, kit.SERVICE_PATH) is None
    assert await authenticator.authenticate("Bearer rubbish", kit.SERVICE_PATH) is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer a.b",
        "Bearer a b.c.d",
        "Bearer not.a.jwt",
    ],
)
async def test_a_missing_or_malformed_authorization_header_is_refused(authenticator, kit, header):
    await refused(authenticator, header, kit.SERVICE_PATH)


async def test_a_signature_by_another_key_under_the_same_kid_is_refused(
    authenticator, mint, keys, kit
):
    reason = await refused(authenticator, mint.bearer(keys.impostor), kit.SERVICE_PATH)
    assert reason == "bad signature"


async def test_a_tampered_payload_is_refused(authenticator, mint, keys, kit):
    header, _, signature = mint.token(keys.ec256).split(".")
    forged_claims = kit.b64url(
        b'{"iss":"%s","aud":"%s","iat":1,"exp":2,"jti":"x"}'
        % (kit.EHR_ISSUER.encode(), kit.SERVICE_URL.encode())
    )

    reason = await refused(
        authenticator, f"Bearer {header}.{forged_claims}.{signature}", kit.SERVICE_PATH
    )

    assert reason == "bad signature"


async def test_an_unknown_kid_is_refused(authenticator, mint, keys, kit):
    token = mint.bearer(keys.ec256, header={"kid": "no-such-kid"})
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "unknown kid"


async def test_alg_none_is_refused(authenticator, mint, keys, kit):
    token = kit.forge(mint.header(keys.ec256, alg="none"), mint.claims(), secret=None)
    reason = await refused(authenticator, f"Bearer {token}", kit.SERVICE_PATH)
    assert reason.startswith("algorithm 'none'")


@pytest.mark.parametrize("key_name", ["ec256", "rsa"])
async def test_hs256_signed_with_the_public_key_pem_is_refused(
    authenticator, mint, keys, kit, key_name
):
    key = getattr(keys, key_name)
    token = kit.forge(mint.header(key, alg="HS256"), mint.claims(), secret=key.public_pem)
    reason = await refused(authenticator, f"Bearer {token}", kit.SERVICE_PATH)
    assert reason.startswith("algorithm 'HS256'")


async def test_an_algorithm_the_key_does_not_fit_is_refused(authenticator, mint, keys, kit):
    # The issuer allows ES384, but the key named by kid is a P-256 key: the key decides.
    token = kit.forge(mint.header(keys.ec256, alg="ES384"), mint.claims(), secret=b"x")
    reason = await refused(authenticator, f"Bearer {token}", kit.SERVICE_PATH)
    assert reason == "algorithm ES384 does not fit the key"


async def test_an_rsa_key_cannot_be_used_with_an_ec_algorithm(authenticator, mint, keys, kit):
    token = kit.forge(mint.header(keys.rsa, alg="ES256"), mint.claims(), secret=b"x")
    reason = await refused(authenticator, f"Bearer {token}", kit.SERVICE_PATH)
    assert reason == "algorithm ES256 does not fit the key"


async def test_an_algorithm_outside_the_issuers_allowlist_is_refused(
    authenticator, mint, keys, kit
):
    token = mint.bearer(keys.rsa, header={"alg": "RS512"})
    reason = await refused(authenticator, token, kit.SERVICE_PATH)
    assert reason == "algorithm RS512 is not allowed for this issuer"


@pytest.mark.parametrize("typ", ["at+jwt", "JOSE", None])
async def test_a_typ_other_than_jwt_is_refused(authenticator, mint, keys, kit, typ):
    header = {"typ": typ} if typ is not None else {"typ": kit.DROP}
    reason = await refused(authenticator, mint.bearer(keys.ec256, header=header), kit.SERVICE_PATH)
    assert reason.startswith("typ ")


async def test_an_unknown_issuer_is_refused(authenticator, mint, keys, kit):
    token = mint.bearer(keys.ec256, iss="https://stranger.example.org")
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "issuer is not trusted"


async def test_a_jku_off_the_allowlist_is_refused_and_never_fetched(
    authenticator, mint, keys, kit, jwks_server
):
    elsewhere = "/attacker-jwks.json"
    jwks_server.publish(kit.jwks(keys.ec256), path=elsewhere)
    token = mint.bearer(keys.ec256, header={"jku": jwks_server.url(elsewhere)})

    reason = await refused(authenticator, token, kit.SERVICE_PATH)

    assert reason == "jku is not on the issuer's allowlist"
    assert jwks_server.hits(elsewhere) == 0


async def test_a_token_without_jku_uses_the_issuers_allowlisted_key_sets(
    authenticator, mint, keys, kit
):
    token = mint.bearer(keys.ec256, header={"jku": kit.DROP})
    assert await authenticator.authenticate(token, kit.SERVICE_PATH) is not None


@pytest.mark.parametrize(
    "aud",
    [
        "http://testserver/cds-services/itb-patient-view",  # built from a Host header
        "https://cds.example.org/cds-services/itb-order-sign",  # another endpoint
        "https://cds.example.org/cds-services/itb-patient-view/",  # not exact
        "https://cds.example.org",
        ["https://cds.example.org/cds-services"],
        42,
    ],
)
async def test_an_audience_other_than_this_endpoint_is_refused(authenticator, mint, keys, kit, aud):
    token = mint.bearer(keys.ec256, aud=aud)
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "aud is not this endpoint"


async def test_a_missing_audience_is_refused(authenticator, mint, keys, kit):
    token = mint.bearer(keys.ec256, aud=kit.DROP)
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "aud is not this endpoint"


async def test_an_audience_array_containing_this_endpoint_is_accepted(
    authenticator, mint, keys, kit
):
    token = mint.bearer(keys.ec256, aud=["https://other.example.org", kit.SERVICE_URL])
    assert await authenticator.authenticate(token, kit.SERVICE_PATH) is not None


async def test_the_audience_is_the_endpoint_of_the_request_path(authenticator, mint, keys, kit):
    discovery = mint.bearer(keys.ec256, aud=kit.PUBLIC_BASE_URL + "/cds-services")

    assert await authenticator.authenticate(discovery, "/cds-services") is not None


async def test_an_expired_token_is_refused(authenticator, mint, keys, kit, clock):
    token = mint.bearer(keys.ec256, iat=int(clock.now) - 400, exp=int(clock.now) - 61)
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "token expired"


async def test_expiry_is_forgiven_within_the_leeway(authenticator, mint, keys, kit, clock):
    token = mint.bearer(keys.ec256, iat=int(clock.now) - 330, exp=int(clock.now) - 30)
    assert await authenticator.authenticate(token, kit.SERVICE_PATH) is not None


async def test_an_iat_in_the_future_beyond_the_leeway_is_refused(
    authenticator, mint, keys, kit, clock
):
    token = mint.bearer(keys.ec256, iat=int(clock.now) + 120, exp=int(clock.now) + 300)
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "iat is in the future"


async def test_a_lifetime_longer_than_the_maximum_is_refused(authenticator, mint, keys, kit, clock):
    token = mint.bearer(keys.ec256, exp=int(clock.now) + 3601)
    reason = await refused(authenticator, token, kit.SERVICE_PATH)
    assert reason == "token lifetime exceeds the maximum"


async def test_a_not_before_in_the_future_is_refused(authenticator, mint, keys, kit, clock):
    token = mint.bearer(keys.ec256, nbf=int(clock.now) + 120)
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "token not yet valid (nbf)"


@pytest.mark.parametrize("claim", ["exp", "iat"])
@pytest.mark.parametrize("value", ["DROP", "soon", True, 10**400])
async def test_time_claims_must_be_present_plain_numbers(
    authenticator, mint, keys, kit, claim, value
):
    token = mint.bearer(keys.ec256, **{claim: kit.DROP if value == "DROP" else value})
    reason = await refused(authenticator, token, kit.SERVICE_PATH)
    assert reason.startswith(claim)


async def test_a_nan_expiry_is_refused(authenticator, mint, keys, kit):
    header = mint.header(keys.ec256)
    forged = kit.forge(header, mint.claims(), secret=None).split(".")
    claims = f'{{"iss":"{kit.EHR_ISSUER}","aud":"{kit.SERVICE_URL}","iat":1,"exp":NaN,"jti":"j"}}'
    payload = kit.b64url(claims.encode())
    reason = await refused(authenticator, f"Bearer {forged[0]}.{payload}.AAAA", kit.SERVICE_PATH)
    assert reason == "claims are not JSON"


@pytest.mark.parametrize("jti", ["DROP", "", 17, "x" * 257])
async def test_a_missing_or_unusable_jti_is_refused(authenticator, mint, keys, kit, jti):
    token = mint.bearer(keys.ec256, jti=kit.DROP if jti == "DROP" else jti)
    assert await refused(authenticator, token, kit.SERVICE_PATH) == "no usable jti"


async def test_a_replayed_token_is_refused(authenticator, mint, keys, kit):
    token = mint.bearer(keys.ec256)
    assert await authenticator.authenticate(token, kit.SERVICE_PATH) is not None

    assert await refused(authenticator, token, kit.SERVICE_PATH) == "jti replayed"


async def test_a_replayed_jti_in_a_new_token_is_refused(authenticator, mint, keys, kit):
    await authenticator.authenticate(mint.bearer(keys.ec256, jti="same"), kit.SERVICE_PATH)

    reason = await refused(authenticator, mint.bearer(keys.ec384, jti="same"), kit.SERVICE_PATH)
    assert reason == "jti replayed"


async def test_a_refused_token_does_not_burn_its_jti(authenticator, mint, keys, kit):
    await refused(authenticator, mint.bearer(keys.ec256, jti="j1", aud="x"), kit.SERVICE_PATH)

    assert (
        await authenticator.authenticate(mint.bearer(keys.ec256, jti="j1"), kit.SERVICE_PATH)
        is not None
    )


async def test_a_tenant_on_the_allowlist_is_accepted(authenticator, mint, keys, kit):
    token = mint.bearer(
        keys.ec256, header={"jku": kit.DROP}, iss=kit.TENANT_ISSUER, tenant="clinic-a"
    )
    identity = await authenticator.authenticate(token, kit.SERVICE_PATH)
    assert identity is not None and identity.tenant == "clinic-a"


@pytest.mark.parametrize("tenant", ["clinic-b", "DROP", ["clinic-a"]])
async def test_a_tenant_off_the_allowlist_is_refused(authenticator, mint, keys, kit, tenant):
    token = mint.bearer(
        keys.ec256,
        header={"jku": kit.DROP},
        iss=kit.TENANT_ISSUER,
        tenant=kit.DROP if tenant == "DROP" else tenant,
    )
    reason = await refused(authenticator, token, kit.SERVICE_PATH)
    assert reason.startswith("tenant ")


async def test_a_tenant_is_passed_through_when_the_issuer_has_no_allowlist(
    authenticator, mint, keys, kit
):
    identity = await authenticator.authenticate(
        mint.bearer(keys.ec256, tenant="any-clinic"), kit.SERVICE_PATH
    )
    assert identity is not None and identity.tenant == "any-clinic"
