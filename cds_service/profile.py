"""Deployment profiles: what the service refuses to start with.

``ITB_CDS_PROFILE=development`` (the default) runs open for a developer (auth may be off, the
sandbox is on, CORS allows any origin) and so must not be reachable from the network: it
refuses to bind anything but a loopback address. ``production`` refuses to start until every
setting that would leave it open is set: a deployment that forgets one is closed, not open.

Each refusal is one line naming the ``ITB_CDS_*`` setting; the commands print them and exit
with status 2, no traceback. ``create_app`` checks the same (without the bind address), so an
app embedded in another ASGI server cannot skip the check.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass
from typing import NoReturn

from pydantic import ValidationError

from cds_service.config import AuthMode, Profile, Settings
from cds_service.errors import ConfigurationError

MIN_ADMIN_TOKEN_CHARS = 32
EXIT_REFUSED = 2


@dataclass(frozen=True)
class Refusal:
    setting: str  # the environment variable, ITB_CDS_...
    reason: str

    def line(self) -> str:
        return f"{self.setting}: {self.reason}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusals(settings: Settings, host: str | None = None) -> list[Refusal]:
    """Every reason ``settings`` (bound to ``host``, when known) must not start."""
    found = _common(settings)
    if settings.profile is Profile.DEVELOPMENT:
        if host is not None and not is_loopback(host):
            found.append(Refusal("ITB_CDS_HOST", (
                f"the development profile binds loopback only, not {host!r} (it may run "
                "without auth); set ITB_CDS_PROFILE=production to serve a network")))
        return found
    return found + _production(settings)


def _common(settings: Settings) -> list[Refusal]:
    found = []
    token = settings.admin_token
    if token is not None and len(token) < MIN_ADMIN_TOKEN_CHARS:
        found.append(Refusal("ITB_CDS_ADMIN_TOKEN", (
            f"shorter than {MIN_ADMIN_TOKEN_CHARS} characters; use a random token "
            "(e.g. `openssl rand -hex 32`) or unset it to turn the admin endpoints off")))
    if (settings.tls_certfile is None) != (settings.tls_keyfile is None):
        found.append(Refusal("ITB_CDS_TLS_KEYFILE", "TLS needs both ITB_CDS_TLS_CERTFILE and "
                             "ITB_CDS_TLS_KEYFILE"))
    if settings.max_body_bytes_in_flight < settings.max_body_bytes:
        found.append(Refusal("ITB_CDS_MAX_BODY_BYTES_IN_FLIGHT", (
            "smaller than ITB_CDS_MAX_BODY_BYTES: no request of the largest allowed size "
            "could ever be read")))
    from cds_service.audit.keyring import AuditKeyError, AuditKeyring

    try:
        AuditKeyring.from_settings(settings)
    except AuditKeyError as exc:
        found.append(Refusal(exc.setting, str(exc)))
    return found


def _production(settings: Settings) -> list[Refusal]:
    found = []

    def refuse(setting: str, reason: str) -> None:
        found.append(Refusal(setting, f"{reason} (production profile)"))

    if settings.auth_mode is not AuthMode.JWT:
        refuse("ITB_CDS_AUTH_MODE", f"must be jwt, is {settings.auth_mode.value}")
    if any(origin.strip() in ("*", "null") for origin in settings.cors_origins):
        # An empty list is explicit too: no browser client at all.
        refuse("ITB_CDS_CORS_ORIGINS", "must list the allowed browser origins explicitly, not *")
    if settings.sandbox_enabled:
        refuse("ITB_CDS_SANDBOX_ENABLED", "must be false: /sandbox and the synthetic /fhir "
               "serve test data and show audit records")
    if settings.trust_sandbox:
        refuse("ITB_CDS_TRUST_SANDBOX", "must be false: the CDS Hooks Sandbox's private key is "
               "public, anyone can sign tokens it accepts")
    if settings.jwks_allow_http:
        refuse("ITB_CDS_JWKS_ALLOW_HTTP", "must be false: a key set fetched over http can be "
               "replaced on the way")
    if not settings.public_base_url.startswith("https://"):
        refuse("ITB_CDS_PUBLIC_BASE_URL", "must be the https URL clients use (terminate TLS "
               "in front of the service)")
    if not _fhir_servers_configured(settings):
        refuse("ITB_CDS_FHIR_SERVER_ALLOWLIST", "must name the FHIR servers the service may "
               "query (or give fhir_servers per issuer in ITB_CDS_TRUST_FILE)")
    if settings.audit_hmac_key is None and settings.audit_hmac_key_file is None:
        refuse("ITB_CDS_AUDIT_HMAC_KEY_FILE", "must name the audit chain's key file (or set "
               "ITB_CDS_AUDIT_HMAC_KEY): without a key a rewritten audit log re-hashes cleanly")
    return found


def _fhir_servers_configured(settings: Settings) -> bool:
    if settings.fhir_server_allowlist:
        return True
    if settings.trust_file is None:
        return False
    from cds_service.auth.trust import TrustConfigError, load_trust_file

    try:
        issuers = load_trust_file(settings.trust_file, allow_http=settings.jwks_allow_http)
    except TrustConfigError:
        return False  # the service's own start names the trust file's fault
    return any(i.fhir_servers or i.tenant_fhir_servers for i in issuers.values())


def startup_warnings(settings: Settings) -> list[str]:
    """What a development deployment runs with that must never reach production: logged at
    start and shown by /ready."""
    warnings = []
    if settings.trust_sandbox:
        warnings.append(
            "ITB_CDS_TRUST_SANDBOX is on: tokens signed with the CDS Hooks Sandbox's key are "
            "accepted, and that private key is public (anyone can sign them). Development only."
        )
    return warnings


def enforce(settings: Settings) -> None:
    """For ``create_app``: raise ``ConfigurationError`` listing every refusal."""
    found = refusals(settings)
    if found:
        raise ConfigurationError("refusing to start: " + "; ".join(r.line() for r in found))


def settings_or_exit(prog: str, host: str | None = None) -> Settings:
    """The environment's settings for a command that is about to bind ``host``; on any
    refusal, print one line per refusal to stderr and exit with status 2."""
    try:
        settings = Settings()
    except ValidationError as exc:
        lines = [f"ITB_CDS_{'__'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                 for e in exc.errors(include_url=False)]
        _exit(prog, lines)
    refuse_or_exit(prog, settings, host if host is not None else settings.host)
    return settings


def refuse_or_exit(prog: str, settings: Settings, host: str) -> None:
    """Print one line per refusal of ``settings`` bound to ``host`` and exit with status 2."""
    found = refusals(settings, host)
    if found:
        _exit(prog, [r.line() for r in found])


def _exit(prog: str, lines: list[str]) -> NoReturn:
    for line in lines:
        print(f"{prog}: refusing to start: {line}", file=sys.stderr)
    raise SystemExit(EXIT_REFUSED)
