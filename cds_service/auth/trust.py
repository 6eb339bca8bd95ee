"""Which CDS clients the service trusts, and with which public keys.

Trust is configured per issuer (``iss``): the ``jku`` URLs its key sets may be fetched from,
and/or key sets written inline, the signature algorithms it may use, and optionally the
tenants it may speak for. The CDS Hooks Sandbox is a built-in, opt-in entry whose key set
ships with the package, so a developer can point the Sandbox at the service without network
access to the Sandbox's ``jku``.

Everything here is loaded once at startup; a trust file that does not validate raises
``TrustConfigError`` so the service refuses to start rather than refusing every client later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from jwt import PyJWK
from jwt.exceptions import PyJWTError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cds_service.config import AuthMode, Settings
from cds_service.errors import ConfigurationError
from cds_service.fhir.allowlist import parse_bases

Algorithm = Literal["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
# Asymmetric only: a shared-secret (HS*) or unsigned (none) token could be minted by anyone
# holding the published key set, so those algorithms can never be configured.
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(get_args(Algorithm))

_EC_CURVE_BY_ALGORITHM = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_EC_ALGORITHM_BY_CURVE = {curve: alg for alg, curve in _EC_CURVE_BY_ALGORITHM.items()}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
MIN_RSA_BITS = 2048
# JWK members that only a private (or symmetric) key has; a trust entry must never hold one.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_ALGORITHMS: frozenset[str] = frozenset({"ES384"})
_SANDBOX_JWKS_RESOURCE = "sandbox-jwks.json"


class TrustConfigError(ConfigurationError, ValueError):
    """The trust configuration is unusable; the message says where and why."""


class InvalidJwks(ValueError):
    """A JSON Web Key Set (or one of its keys) cannot be used to verify client tokens."""


@dataclass(frozen=True)
class TrustedKey:
    """One public key, with a verifier per algorithm the key can honestly be used with.

    The algorithm is decided by the key (kty, crv, its own ``alg``), not by the token header:
    a header asking for an algorithm the key does not fit finds no verifier.
    """

    kid: str
    verifiers: Mapping[str, PyJWK]

    def verifier_for(self, algorithm: str) -> PyJWK | None:
        return self.verifiers.get(algorithm)


@dataclass(frozen=True)
class KeySet:
    keys: Mapping[str, TrustedKey] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, kid: str) -> TrustedKey | None:
        return self.keys.get(kid)

    def __len__(self) -> int:
        return len(self.keys)


EMPTY_KEY_SET = KeySet()


@dataclass(frozen=True)
class IssuerTrust:
    issuer: str
    algorithms: frozenset[str]
    jku: frozenset[str] = frozenset()
    keys: KeySet = EMPTY_KEY_SET
    # jku URLs answered from a key set held locally instead of fetching them.
    pinned: Mapping[str, KeySet] = field(default_factory=lambda: MappingProxyType({}))
    tenants: frozenset[str] | None = None
    # FHIR servers this issuer's calls may name as fhirServer (any tenant / one tenant).
    fhir_servers: tuple[str, ...] = ()
    tenant_fhir_servers: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TrustStore:
    issuers: Mapping[str, IssuerTrust] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, issuer: str) -> IssuerTrust | None:
        return self.issuers.get(issuer)


# --- key sets -------------------------------------------------------------------------------


def parse_key(jwk: object) -> TrustedKey:
    """One JWK as a verification key, or ``InvalidJwks`` saying why it cannot be one."""
    if not isinstance(jwk, Mapping):
        raise InvalidJwks("a key is not a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidJwks("a key has no kid")
    if _PRIVATE_MEMBERS & set(jwk):
        raise InvalidJwks(f"key {kid!r} holds private or symmetric key material")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise InvalidJwks(f"key {kid!r} is not a signature key (use={use!r})")
    kty = jwk.get("kty")
    declared = jwk.get("alg")
    if declared is not None and declared not in ASYMMETRIC_ALGORITHMS:
        raise InvalidJwks(f"key {kid!r} declares algorithm {declared!r}, which is not allowed")
    if kty == "EC":
        curve = jwk.get("crv")
        if not isinstance(curve, str) or curve not in _EC_ALGORITHM_BY_CURVE:
            raise InvalidJwks(f"key {kid!r} uses unsupported curve {curve!r}")
        algorithms = {_EC_ALGORITHM_BY_CURVE[curve]}
    elif kty == "RSA":
        algorithms = set(_RSA_ALGORITHMS)
    else:
        raise InvalidJwks(f"key {kid!r} has unsupported kty {kty!r} (EC or RSA only)")
    if declared is not None:
        if declared not in algorithms:
            raise InvalidJwks(f"key {kid!r} declares algorithm {declared!r} unfit for its type")
        algorithms = {declared}

    verifiers: dict[str, PyJWK] = {}
    for algorithm in sorted(algorithms):
        try:
            verifier = PyJWK(dict(jwk), algorithm=algorithm)
        except (PyJWTError, ValueError, TypeError) as exc:
            raise InvalidJwks(
                f"key {kid!r} is not a valid {kty} key: {type(exc).__name__}"
            ) from None
        key_size = getattr(verifier.key, "key_size", None)
        if kty == "RSA" and (not isinstance(key_size, int) or key_size < MIN_RSA_BITS):
            raise InvalidJwks(f"key {kid!r} is an RSA key shorter than {MIN_RSA_BITS} bits")
        verifiers[algorithm] = verifier
    return TrustedKey(kid=kid, verifiers=MappingProxyType(verifiers))


def parse_jwks(document: object, *, strict: bool) -> KeySet:
    """A JWKS document as a ``KeySet``.

    ``strict`` (configured key sets) refuses the whole set for one bad key, since that is an
    operator's mistake worth stopping for. Non-strict (fetched key sets) skips keys this
    service cannot use: a client's published set may also carry encryption or other keys.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise InvalidJwks('not a JWKS: expected an object with a "keys" array')
    keys: dict[str, TrustedKey] = {}
    for jwk in document["keys"]:
        try:
            key = parse_key(jwk)
        except InvalidJwks:
            if strict:
                raise
            continue
        if key.kid in keys:
            if strict:
                raise InvalidJwks(f"kid {key.kid!r} appears twice")
            # Two keys under one kid: neither can be chosen safely.
            keys.pop(key.kid)
            continue
        keys[key.kid] = key
    if strict and not keys:
        raise InvalidJwks("the key set is empty")
    return KeySet(MappingProxyType(keys))


def load_sandbox_jwks() -> dict[str, Any]:
    """The CDS Hooks Sandbox's published key set, as shipped with the package."""
    text = resources.files("cds_service.auth").joinpath(_SANDBOX_JWKS_RESOURCE).read_text("utf-8")
    document = json.loads(text)
    if not isinstance(document, dict):
        raise TrustConfigError(f"{_SANDBOX_JWKS_RESOURCE} is not a JSON object")
    return document


def sandbox_trust(jwks: Mapping[str, object] | None = None) -> IssuerTrust:
    """The dev trust entry for the Sandbox. ``jwks`` replaces the shipped key set (tests sign
    with their own key in the Sandbox's format)."""
    try:
        keys = parse_jwks(jwks if jwks is not None else load_sandbox_jwks(), strict=True)
    except InvalidJwks as exc:
        raise TrustConfigError(f"sandbox key set: {exc}") from None
    return IssuerTrust(
        issuer=SANDBOX_ISSUER,
        algorithms=SANDBOX_ALGORITHMS,
        jku=frozenset({SANDBOX_JKU}),
        keys=keys,
        pinned=MappingProxyType({SANDBOX_JKU: keys}),
    )


# --- trust file -----------------------------------------------------------------------------


class IssuerEntry(BaseModel):
    """One issuer in the trust file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jku: list[str] = Field(default_factory=list)
    jwks: dict[str, Any] | None = None
    algorithms: list[Algorithm] = Field(default_factory=lambda: list(get_args(Algorithm)))
    tenants: list[str] | None = None
    fhir_servers: list[str] = Field(default_factory=list)
    tenant_fhir_servers: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("fhir_servers")
    @classmethod
    def _fhir_bases(cls, urls: list[str]) -> list[str]:
        parse_bases(urls)  # ValueError names the bad one
        return urls

    @field_validator("tenant_fhir_servers")
    @classmethod
    def _tenant_fhir_bases(cls, per_tenant: dict[str, list[str]]) -> dict[str, list[str]]:
        for urls in per_tenant.values():
            parse_bases(urls)
        return per_tenant

    @field_validator("jku")
    @classmethod
    def _absolute_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in {"https", "http"} or not parts.hostname:
                raise ValueError(f"jku {url!r} is not an absolute http(s) URL")
            if parts.fragment or parts.username or parts.password:
                raise ValueError(f"jku {url!r} must not carry a fragment or credentials")
        return urls

    @field_validator("algorithms")
    @classmethod
    def _some_algorithm(cls, algorithms: list[str]) -> list[str]:
        if not algorithms:
            raise ValueError("at least one algorithm is required")
        return algorithms

    @field_validator("tenants")
    @classmethod
    def _some_tenant(cls, tenants: list[str] | None) -> list[str] | None:
        if tenants is not None and not tenants:
            raise ValueError("an empty tenant list would refuse every token; omit it instead")
        return tenants

    @model_validator(mode="after")
    def _has_keys(self) -> IssuerEntry:
        if not self.jku and self.jwks is None:
            raise ValueError("an issuer needs a jku allowlist and/or an inline jwks")
        return self


class TrustFile(BaseModel):
    """The trust file: ``issuers`` maps each trusted ``iss`` value to its entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuers: dict[str, IssuerEntry]

    @field_validator("issuers")
    @classmethod
    def _named_issuers(cls, issuers: dict[str, IssuerEntry]) -> dict[str, IssuerEntry]:
        for issuer in issuers:
            if not issuer.strip():
                raise ValueError("an issuer name is empty")
        return issuers


def _read_document(path: Path) -> object:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise TrustConfigError(f"trust file {path}: cannot be read ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        # YAML is a superset of JSON, so any other suffix is read as YAML.
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise TrustConfigError(f"trust file {path}: not valid JSON/YAML: {exc}") from None


def _describe(error: ValidationError) -> str:
    problems = [
        f"{' > '.join(str(part) for part in problem['loc']) or 'file'}: {problem['msg']}"
        for problem in error.errors(include_url=False)
    ]
    return "; ".join(problems)


def load_trust_file(path: Path, *, allow_http: bool) -> dict[str, IssuerTrust]:
    """The issuers of a trust file, or ``TrustConfigError`` naming the file and the fault."""
    document = _read_document(path)
    if not isinstance(document, dict):
        raise TrustConfigError(f'trust file {path}: expected an object with an "issuers" key')
    try:
        parsed = TrustFile.model_validate(document)
    except ValidationError as exc:
        raise TrustConfigError(f"trust file {path}: {_describe(exc)}") from None
    trusted: dict[str, IssuerTrust] = {}
    for issuer, entry in parsed.issuers.items():
        where = f"trust file {path}: issuer {issuer!r}"
        if not allow_http:
            insecure = [url for url in entry.jku if urlsplit(url).scheme != "https"]
            if insecure:
                raise TrustConfigError(
                    f"{where}: jku {insecure[0]!r} is not https "
                    "(plain http needs ITB_CDS_JWKS_ALLOW_HTTP=true)"
                )
        keys = EMPTY_KEY_SET
        if entry.jwks is not None:
            try:
                keys = parse_jwks(entry.jwks, strict=True)
            except InvalidJwks as exc:
                raise TrustConfigError(f"{where}: jwks: {exc}") from None
        trusted[issuer] = IssuerTrust(
            issuer=issuer,
            algorithms=frozenset(entry.algorithms),
            jku=frozenset(entry.jku),
            keys=keys,
            tenants=frozenset(entry.tenants) if entry.tenants is not None else None,
            fhir_servers=tuple(entry.fhir_servers),
            tenant_fhir_servers=MappingProxyType(
                {tenant: tuple(urls) for tenant, urls in entry.tenant_fhir_servers.items()}),
        )
    return trusted


def load_trust(
    settings: Settings, *, sandbox_jwks: Mapping[str, object] | None = None
) -> TrustStore:
    """The trust in force for ``settings``: the Sandbox entry when ``trust_sandbox`` is on,
    plus the issuers of ``trust_file``. ``sandbox_jwks`` replaces the shipped Sandbox key set."""
    issuers: dict[str, IssuerTrust] = {}
    if settings.trust_sandbox:
        issuers[SANDBOX_ISSUER] = sandbox_trust(sandbox_jwks)
    if settings.trust_file is not None:
        from_file = load_trust_file(settings.trust_file, allow_http=settings.jwks_allow_http)
        _refuse_duplicates(issuers, from_file)
        issuers.update(from_file)
    if settings.auth_mode is AuthMode.JWT and not issuers:
        raise TrustConfigError(
            "auth mode is jwt but no issuer is trusted: set ITB_CDS_TRUST_FILE "
            "and/or ITB_CDS_TRUST_SANDBOX=true"
        )
    return TrustStore(MappingProxyType(issuers))


def _refuse_duplicates(existing: Mapping[str, IssuerTrust], added: Iterable[str]) -> None:
    for issuer in added:
        if issuer in existing:
            raise TrustConfigError(
                f"issuer {issuer!r} is trusted twice (trust file and ITB_CDS_TRUST_SANDBOX); "
                "keep one"
            )
