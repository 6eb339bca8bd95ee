"""Key sets fetched from an allowlisted jku: caching, refetch on rotation, failures."""

from __future__ import annotations

import pytest

from cds_service.auth.keys import (
    MAX_JWKS_BYTES,
    UNKNOWN_KID_REFETCH_COOLDOWN_SECONDS,
    JwksCache,
    JwksUnavailable,
)
from cds_service.auth.tokens import Unauthorized

pytestmark = pytest.mark.anyio


async def test_the_key_set_is_fetched_once_and_then_served_from_cache(
    authenticator, mint, keys, kit, jwks_server
):
    for _ in range(3):
        assert await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)

    assert jwks_server.hits() == 1


async def test_the_cache_expires_after_its_ttl(authenticator, mint, keys, kit, jwks_server, clock):
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)
    clock.advance(599)
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)
    assert jwks_server.hits() == 1

    clock.advance(1)
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)

    assert jwks_server.hits() == 2


async def test_an_unknown_kid_triggers_exactly_one_refetch(
    authenticator, mint, keys, kit, jwks_server
):
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)
    assert jwks_server.hits() == 1

    with pytest.raises(Unauthorized, match="unknown kid"):
        await authenticator.authenticate(mint.bearer(keys.rotated), kit.SERVICE_PATH)

    assert jwks_server.hits() == 2


async def test_a_rotated_key_is_picked_up_by_the_refetch(
    authenticator, mint, keys, kit, jwks_server
):
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)
    jwks_server.publish(kit.jwks(keys.ec256, keys.rotated))

    identity = await authenticator.authenticate(mint.bearer(keys.rotated), kit.SERVICE_PATH)

    assert identity is not None and identity.kid == keys.rotated.kid
    assert jwks_server.hits() == 2


async def test_unknown_kids_do_not_refetch_again_until_the_cooldown_has_passed(
    authenticator, mint, keys, kit, jwks_server, clock
):
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        with pytest.raises(Unauthorized):
            await authenticator.authenticate(
                mint.bearer(keys.ec256, header={"kid": kid}), kit.SERVICE_PATH
            )
    assert jwks_server.hits() == 2

    clock.advance(UNKNOWN_KID_REFETCH_COOLDOWN_SECONDS)
    jwks_server.publish(kit.jwks(keys.ec256, keys.rotated))

    assert await authenticator.authenticate(mint.bearer(keys.rotated), kit.SERVICE_PATH)
    assert jwks_server.hits() == 3


async def test_an_unreachable_key_set_refuses_that_call_only(
    authenticator, mint, keys, kit, dead_url
):
    with pytest.raises(Unauthorized, match="key set unavailable"):
        await authenticator.authenticate(
            mint.bearer(keys.ec256, header={"jku": dead_url}), kit.SERVICE_PATH
        )

    assert await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)


async def test_a_failing_key_set_server_refuses_until_it_recovers(
    authenticator, mint, keys, kit, jwks_server
):
    jwks_server.fail(status=503)
    with pytest.raises(Unauthorized, match="HTTP 503"):
        await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)

    jwks_server.publish(kit.jwks(keys.ec256))

    assert await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)
    assert jwks_server.hits() == 2


async def test_a_failed_refetch_keeps_the_cached_keys(authenticator, mint, keys, kit, jwks_server):
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)
    jwks_server.fail()

    with pytest.raises(Unauthorized, match="key set unavailable"):
        await authenticator.authenticate(mint.bearer(keys.rotated), kit.SERVICE_PATH)

    assert await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"<html>not json</html>", "not JSON"),
        (b'{"keys": "none"}', "not a JWKS"),
        (b"[1, 2]", "not a JWKS"),
        (b" " * (MAX_JWKS_BYTES + 1), "too large"),
    ],
)
async def test_an_unusable_key_set_is_unavailable(http, clock, jwks_server, document, reason):
    jwks_server.serve_raw(document, "/bad")
    cache = JwksCache(http, ttl_seconds=60, allow_http=True, clock=clock)

    with pytest.raises(JwksUnavailable, match=reason):
        await cache.key(jwks_server.url("/bad"), "kid")


async def test_keys_this_service_cannot_use_are_skipped_in_a_fetched_set(
    http, clock, jwks_server, keys
):
    jwks_server.publish(
        {
            "keys": [
                {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
                {**keys.ec384.public_jwk, "use": "enc"},
                {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "AAAA"},
                keys.ec256.public_jwk,
            ]
        }
    )
    cache = JwksCache(http, ttl_seconds=60, allow_http=True, clock=clock)

    assert await cache.key(jwks_server.url(), keys.ec256.kid) is not None
    assert await cache.key(jwks_server.url(), "secret") is None
    assert await cache.key(jwks_server.url(), keys.ec384.kid) is None


async def test_plain_http_is_never_fetched_unless_allowed(http, clock, jwks_server):
    cache = JwksCache(http, ttl_seconds=60, allow_http=False, clock=clock)

    with pytest.raises(JwksUnavailable, match="scheme 'http'"):
        await cache.key(jwks_server.url(), "kid")

    assert jwks_server.hits() == 0


async def test_redirects_are_not_followed(http, clock, jwks_server, keys):
    jwks_server.serve_raw(b"", "/moved", status=302)
    cache = JwksCache(http, ttl_seconds=60, allow_http=True, clock=clock)

    with pytest.raises(JwksUnavailable, match="HTTP 302"):
        await cache.key(jwks_server.url("/moved"), keys.ec256.kid)

    assert jwks_server.hits() == 0


async def test_without_jku_a_down_key_set_does_not_hide_a_key_in_another(
    authenticator, mint, keys, kit, jwks_server
):
    # The issuer's allowlist holds the live server and a dead URL; order must not matter.
    token = mint.bearer(keys.ec256, header={"jku": kit.DROP})

    assert await authenticator.authenticate(token, kit.SERVICE_PATH)
    assert jwks_server.hits() == 1


async def test_without_jku_an_unknown_kid_with_a_down_key_set_is_refused(
    authenticator, mint, keys, kit
):
    token = mint.bearer(keys.ec256, header={"jku": kit.DROP, "kid": "nowhere"})

    with pytest.raises(Unauthorized, match="unknown kid; a key set was unavailable"):
        await authenticator.authenticate(token, kit.SERVICE_PATH)
