"""Refusals are logged with a reason and the claimed iss/kid, and never with the token.

Every test in this folder is also checked by the ``no_token_in_logs`` fixture (conftest).
"""

from __future__ import annotations

import logging

import pytest

from cds_service.auth.tokens import Unauthorized

pytestmark = pytest.mark.anyio


def test_the_log_scanner_recognises_a_jwt(mint, keys, kit):
    token = mint.token(keys.ec256)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", (token,), None)

    assert kit.find_jwts(kit.render_record(record)) == [token]
    assert kit.find_jwts(f"Bearer {kit.forge({'alg': 'none'}, {}, None)}")
    assert kit.find_jwts("refused (iss='https://sandbox.cds-hooks.org', kid='44823f3d')") == []


async def test_a_refusal_is_logged_at_info_with_reason_iss_and_kid(
    authenticator, mint, keys, kit, caplog
):
    token = mint.bearer(keys.impostor)

    with pytest.raises(Unauthorized):
        await authenticator.authenticate(token, kit.SERVICE_PATH)

    [record] = [r for r in caplog.records if r.name == "itb_cds.auth"]
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "bad signature" in message
    assert repr(kit.EHR_ISSUER) in message and repr(keys.impostor.kid) in message
    assert token.removeprefix("Bearer ") not in message


async def test_claims_are_not_logged(authenticator, mint, keys, kit, caplog):
    with pytest.raises(Unauthorized):
        await authenticator.authenticate(
            mint.bearer(keys.ec256, aud="https://elsewhere.example.org", sub="secret-sub"),
            kit.SERVICE_PATH,
        )

    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "secret-sub" not in logged and "elsewhere" not in logged


async def test_an_overlong_claimed_issuer_is_truncated_in_the_log(
    authenticator, mint, keys, kit, caplog
):
    with pytest.raises(Unauthorized):
        await authenticator.authenticate(
            mint.bearer(keys.ec256, iss="https://x.example.org/" + "a" * 500), kit.SERVICE_PATH
        )

    [record] = [r for r in caplog.records if r.name == "itb_cds.auth"]
    assert "a" * 100 not in record.getMessage()


async def test_an_accepted_token_logs_nothing_at_info(authenticator, mint, keys, kit, caplog):
    await authenticator.authenticate(mint.bearer(keys.ec256), kit.SERVICE_PATH)

    assert [r for r in caplog.records if r.name == "itb_cds.auth"] == []
