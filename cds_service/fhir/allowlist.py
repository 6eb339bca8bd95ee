"""Which FHIR servers the service may query for a caller.

A request's ``fhirServer`` is a URL chosen by whoever sends the request; fetching whatever it
names (with the caller's token) turns the service into a port scanner of its own network. So a
server is queried only when it lies at or below an allowed base: the global allowlist
(``ITB_CDS_FHIR_SERVER_ALLOWLIST``), the bases the trust file gives the caller's issuer (or
its tenant), and, in the development profile, any loopback address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from cds_service.config import Profile, Settings


class FhirServerRefused(Exception):
    """The call would have to query a FHIR server that is not allowed; nothing was sent."""


@dataclass(frozen=True, slots=True)
class ServerBase:
    """A FHIR base URL reduced to what decides where a request goes."""

    scheme: str
    host: str
    port: int
    path: str  # no trailing slash; "" for the root

    @classmethod
    def parse(cls, url: str) -> ServerBase:
        """Raises ValueError for anything that is not a plain absolute http(s) base URL."""
        try:
            parsed = httpx.URL(url)
        except Exception:
            raise ValueError("not a URL") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("not an absolute http(s) URL")
        if parsed.userinfo or parsed.query or parsed.fragment:
            raise ValueError("a FHIR base carries no credentials, query or fragment")
        # Encoded slashes and dots could mean another path to the server than to us.
        if any(part in parsed.raw_path.lower() for part in (b"%2f", b"%2e", b"%5c")):
            raise ValueError("encoded path separators")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return cls(parsed.scheme, parsed.host.lower(), port, parsed.path.rstrip("/"))

    def covers(self, other: ServerBase) -> bool:
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        return other.path == self.path or other.path.startswith(self.path + "/")

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False


def parse_bases(urls: Iterable[str]) -> tuple[ServerBase, ...]:
    """Configured bases; raises ValueError naming the first bad one."""
    bases = []
    for url in urls:
        try:
            bases.append(ServerBase.parse(url))
        except ValueError as exc:
            raise ValueError(f"{url!r}: {exc}") from None
    return tuple(bases)


class IssuerServers(Protocol):
    """What the trust file says about one issuer's FHIR servers (auth.trust.IssuerTrust)."""

    @property
    def issuer(self) -> str: ...
    @property
    def fhir_servers(self) -> tuple[str, ...]: ...
    @property
    def tenant_fhir_servers(self) -> Mapping[str, tuple[str, ...]]: ...


@dataclass(frozen=True)
class FhirServerPolicy:
    """The allowed bases: for everyone, per issuer, per (issuer, tenant)."""

    bases: tuple[ServerBase, ...] = ()
    per_issuer: Mapping[str, tuple[ServerBase, ...]] = field(default_factory=dict)
    per_tenant: Mapping[tuple[str, str], tuple[ServerBase, ...]] = field(default_factory=dict)
    allow_loopback: bool = False

    def allows(self, fhir_server: str, issuer: str | None = None,
               tenant: str | None = None) -> bool:
        try:
            wanted = ServerBase.parse(fhir_server)
        except ValueError:
            return False
        if self.allow_loopback and wanted.is_loopback:
            return True
        candidates = list(self.bases)
        if issuer is not None:
            candidates += self.per_issuer.get(issuer, ())
            if tenant is not None:
                candidates += self.per_tenant.get((issuer, tenant), ())
        return any(base.covers(wanted) for base in candidates)

    @classmethod
    def for_settings(cls, settings: Settings, issuers: Iterable[IssuerServers] = ()
                     ) -> FhirServerPolicy:
        """The policy of ``settings`` and the trusted issuers; raises ValueError for a bad
        base URL (the trust file's are checked when it is loaded)."""
        issuers = list(issuers)
        return cls(
            bases=parse_bases(settings.fhir_server_allowlist),
            per_issuer={i.issuer: parse_bases(i.fhir_servers) for i in issuers if i.fhir_servers},
            per_tenant={(i.issuer, tenant): parse_bases(urls) for i in issuers
                        for tenant, urls in i.tenant_fhir_servers.items()},
            # A developer's own FHIR server (or a test's) runs on this machine.
            allow_loopback=settings.profile is Profile.DEVELOPMENT,
        )
