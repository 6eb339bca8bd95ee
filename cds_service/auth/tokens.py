"""CDS client authentication: the JWT a CDS client (EHR, Sandbox) sends as a Bearer token.

``Authenticator.authenticate`` is the one entry point. It returns ``None`` when auth is off,
the caller's ``ClientIdentity`` when the token passes every check, and otherwise raises
``Unauthorized`` whose ``reason`` is for the server log only (the HTTP answer says nothing
more than "unauthorized", so a caller cannot probe which check failed).

Neither the token nor its full claims set is ever logged or stored: a refusal is logged with
its reason and the ``iss``/``kid`` it claimed, nothing else.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from jwt import PyJWS
from jwt.exceptions import InvalidSignatureError, PyJWTError

from cds_service.auth.keys import JwksCache, JwksUnavailable
from cds_service.auth.replay import ReplayCache
from cds_service.auth.trust import (
    ASYMMETRIC_ALGORITHMS,
    IssuerTrust,
    TrustedKey,
    TrustStore,
    load_trust,
)
from cds_service.config import AuthMode, Settings

log = logging.getLogger("itb_cds.auth")

# A CDS client token is a few hundred bytes; anything far larger is not one.
MAX_TOKEN_CHARS = 8192
MAX_JTI_CHARS = 256
_LOGGED_VALUE_CHARS = 80
_MAX_TIMESTAMP = 2**53


class Unauthorized(Exception):
    """The request carries no acceptable client token. ``reason`` is for server logs only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClientIdentity:
    """Who called, as established by a verified token."""

    iss: str
    sub: str | None
    tenant: str | None
    kid: str
    jti: str
    expires_at: datetime


@dataclass
class _Attempt:
    """What a refusal may be logged with: the claimed issuer and key id, nothing more."""

    iss: str | None = None
    kid: str | None = None


_UNVERIFIED = PyJWS(options={"verify_signature": False})
_VERIFYING = PyJWS(options={"verify_signature": True, "enforce_minimum_key_length": True})


class Authenticator:
    """Checks the Bearer JWT of every CDS client call (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        replay: ReplayCache,
        *,
        trust: TrustStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Loads the trust configuration unless ``trust`` is given; a bad trust file raises
        ``TrustConfigError`` here, at startup."""
        self._settings = settings
        self._replay = replay
        self._clock = clock
        self._trust = trust if trust is not None else load_trust(settings)
        self._jwks = JwksCache(
            http,
            ttl_seconds=settings.jwks_cache_seconds,
            allow_http=settings.jwks_allow_http,
            clock=clock,
        )

    @property
    def mode(self) -> AuthMode:
        return self._settings.auth_mode

    @property
    def trust(self) -> TrustStore:
        return self._trust

    @property
    def trusted_issuers(self) -> tuple[str, ...]:
        return tuple(sorted(self._trust.issuers))

    async def authenticate(
        self, authorization_header: str | None, path: str
    ) -> ClientIdentity | None:
        """The verified caller of ``path`` (the request path, e.g. ``/cds-services``), None
        when auth is off; raises ``Unauthorized`` otherwise."""
        if self._settings.auth_mode is AuthMode.OFF:
            return None
        attempt = _Attempt()
        try:
            return await self._verify(authorization_header, path, attempt)
        except Unauthorized as exc:
            log.info(
                "refused CDS client token: %s (iss=%s, kid=%s)",
                exc.reason,
                _loggable(attempt.iss),
                _loggable(attempt.kid),
            )
            raise

    async def _verify(
        self, authorization_header: str | None, path: str, attempt: _Attempt
    ) -> ClientIdentity:
        token = _bearer_token(authorization_header)
        try:
            unverified = _UNVERIFIED.decode_complete(token)
        except PyJWTError:
            raise Unauthorized("malformed token") from None
        header: Mapping[str, Any] = unverified["header"]

        kid = header.get("kid")
        attempt.kid = kid if isinstance(kid, str) else None
        claims = _claims(unverified["payload"])
        iss = claims.get("iss")
        attempt.iss = iss if isinstance(iss, str) else None

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
            raise Unauthorized(f"algorithm {_loggable(alg)} is not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise Unauthorized(f"typ {_loggable(typ)} is not JWT")
        if "crit" in header:
            raise Unauthorized("critical header extensions are not supported")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("no kid")
        if not isinstance(iss, str):
            raise Unauthorized("no iss")
        trust = self._trust.get(iss)
        if trust is None:
            raise Unauthorized("issuer is not trusted")
        if alg not in trust.algorithms:
            raise Unauthorized(f"algorithm {alg} is not allowed for this issuer")

        key = await self._key(trust, header.get("jku"), kid)
        verifier = key.verifier_for(alg)
        if verifier is None:
            raise Unauthorized(f"algorithm {alg} does not fit the key")
        try:
            verified = _VERIFYING.decode_complete(token, key=verifier, algorithms=[alg])
        except InvalidSignatureError:
            raise Unauthorized("bad signature") from None
        except PyJWTError as exc:
            raise Unauthorized(f"signature not verifiable ({type(exc).__name__})") from None

        return self._identity(trust, kid, _claims(verified["payload"]), path)

    async def _key(self, trust: IssuerTrust, jku: object, kid: str) -> TrustedKey:
        if jku is not None:
            if not isinstance(jku, str) or jku not in trust.jku:
                # Never fetched: fetching a URL named by an unverified token is the attack.
                raise Unauthorized("jku is not on the issuer's allowlist")
            try:
                key = await self._key_at(trust, jku, kid)
            except JwksUnavailable as exc:
                raise Unauthorized(f"key set unavailable: {exc.reason}") from None
            if key is None:
                raise Unauthorized("unknown kid")
            return key

        # No jku: the issuer's inline keys, then each of its allowlisted key sets; one set
        # being down must not hide a key another set has.
        key = trust.keys.get(kid)
        unavailable: JwksUnavailable | None = None
        for allowed in sorted(trust.jku):
            if key is not None:
                break
            try:
                key = await self._key_at(trust, allowed, kid)
            except JwksUnavailable as exc:
                unavailable = exc
        if key is not None:
            return key
        if unavailable is not None:
            raise Unauthorized(f"unknown kid; a key set was unavailable: {unavailable.reason}")
        raise Unauthorized("unknown kid")

    async def _key_at(self, trust: IssuerTrust, jku: str, kid: str) -> TrustedKey | None:
        pinned = trust.pinned.get(jku)
        if pinned is not None:
            return pinned.get(kid)
        return await self._jwks.key(jku, kid)

    def _identity(
        self, trust: IssuerTrust, kid: str, claims: Mapping[str, Any], path: str
    ) -> ClientIdentity:
        settings = self._settings
        leeway = settings.jwt_leeway_seconds
        now = self._clock()

        expected_aud = settings.public_base_url + path
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or expected_aud not in audiences:
            raise Unauthorized("aud is not this endpoint")

        exp = _timestamp(claims, "exp")
        iat = _timestamp(claims, "iat")
        if now > exp + leeway:
            raise Unauthorized("token expired")
        if iat > now + leeway:
            raise Unauthorized("iat is in the future")
        if exp <= iat:
            raise Unauthorized("exp is not after iat")
        if exp - iat > settings.jwt_max_lifetime_seconds:
            raise Unauthorized("token lifetime exceeds the maximum")
        if "nbf" in claims and _timestamp(claims, "nbf") > now + leeway:
            raise Unauthorized("token not yet valid (nbf)")

        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise Unauthorized("no usable jti")
        sub = claims.get("sub")
        if sub is not None and not isinstance(sub, str):
            raise Unauthorized("sub is not a string")
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise Unauthorized("tenant is not a string")
        if trust.tenants is not None and tenant not in trust.tenants:
            raise Unauthorized("tenant is not allowed for this issuer")

        # Remembered until the last instant the token could still pass the exp check.
        if not self._replay.remember(trust.issuer, jti, _utc(exp + leeway)):
            raise Unauthorized("jti replayed")
        return ClientIdentity(
            iss=trust.issuer, sub=sub, tenant=tenant, kid=kid, jti=jti, expires_at=_utc(exp)
        )


def _bearer_token(authorization_header: str | None) -> str:
    if authorization_header is None:
        raise Unauthorized("no Authorization header")
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("Authorization scheme is not Bearer")
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS or any(c.isspace() for c in token):
        raise Unauthorized("malformed Bearer token")
    if token.count(".") != 2:
        raise Unauthorized("not a compact JWS")
    return token


def _claims(payload: bytes) -> Mapping[str, Any]:
    try:
        claims = json.loads(payload, parse_constant=_refuse_constant)
    except ValueError:
        raise Unauthorized("claims are not JSON") from None
    if not isinstance(claims, dict):
        raise Unauthorized("claims are not a JSON object")
    return claims


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _timestamp(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    # bool is an int subclass; huge ints would overflow float; NaN/inf defeat comparisons.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"{name} missing or not a number")
    if isinstance(value, int) and abs(value) > _MAX_TIMESTAMP:
        raise Unauthorized(f"{name} out of range")
    if not math.isfinite(value) or abs(value) > _MAX_TIMESTAMP:
        raise Unauthorized(f"{name} out of range")
    return float(value)


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _loggable(value: object) -> str:
    """A claimed header/claim value made safe to log: quoted, short, never a whole token."""
    if value is None:
        return "-"
    text = repr(value) if isinstance(value, str) else f"<{type(value).__name__}>"
    if len(text) > _LOGGED_VALUE_CHARS:
        return text[: _LOGGED_VALUE_CHARS - 3] + "..."
    return text
