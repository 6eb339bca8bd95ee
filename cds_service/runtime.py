"""What one process holds for its lifetime: built in the app lifespan, torn down with it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from cds_service.api.discovery import discovery_document
from cds_service.audit.database import AuditUnavailable
from cds_service.audit.store import AuditStore
from cds_service.auth.replay import DatabaseReplayCache, FallbackReplayCache
from cds_service.auth.tokens import Authenticator
from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.fhir.allowlist import FhirServerPolicy
from cds_service.fhir.client import shared_ssl_context
from cds_service.metrics import Metrics

log = logging.getLogger("itb_cds")


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: AuditStore
    auth: Authenticator
    metrics: Metrics
    jwks_http: httpx.AsyncClient
    discovery: dict[str, Any]
    replay: FallbackReplayCache

    @classmethod
    def start(cls, settings: Settings, clock: Callable[[], datetime] | None = None) -> Runtime:
        store = AuditStore(settings)
        try:
            store.migrate()  # replays the spool too
        except Exception as exc:  # the service answers on the spool until the database is back
            log.error("audit database unavailable at startup (%s): spooling", type(exc).__name__)
        jwks_http = httpx.AsyncClient(verify=shared_ssl_context(), timeout=5.0,
                                      follow_redirects=False)
        replay = FallbackReplayCache(DatabaseReplayCache(store.database),
                                     outages=(AuditUnavailable,))
        auth = Authenticator(settings, jwks_http, replay)
        # After the trust file: it names the FHIR servers each issuer's calls may use.
        servers = FhirServerPolicy.for_settings(settings, auth.trust.issuers.values())
        engine = Engine.build(settings, clock or system_clock, servers)
        return cls(
            settings=settings,
            engine=engine,
            store=store,
            auth=auth,
            metrics=Metrics(settings.spool_path),
            jwks_http=jwks_http,
            discovery=discovery_document(settings).to_wire(),
            replay=replay,
        )

    async def close(self) -> None:
        await self.engine.aclose()
        await self.jwks_http.aclose()
        await self.store.adrain()  # every queued audit write committed before shutdown ends
