"""What one process holds for its lifetime: built in the app lifespan, torn down with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from cds_service.api.auth import Authenticator
from cds_service.api.discovery import discovery_document
from cds_service.audit.store import AuditStore
from cds_service.catalogue import Catalogue
from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.fhir.client import FhirClient
from cds_service.metrics import Metrics
from cds_service.terminology import Terminology


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: AuditStore
    auth: Authenticator
    metrics: Metrics
    fhir: FhirClient
    jwks_http: httpx.AsyncClient
    discovery: dict[str, Any]

    @classmethod
    def start(cls, settings: Settings, clock: Callable[[], datetime] | None = None) -> Runtime:
        terminology = Terminology.load(settings)
        catalogue = Catalogue.load(settings.cards_dir)
        store = AuditStore(settings)
        store.migrate()
        store.replay_spool()
        fhir = FhirClient(settings)
        jwks_http = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        auth = Authenticator(settings, jwks_http, store)
        engine = Engine(settings, terminology, catalogue, fhir, clock or system_clock)
        return cls(
            settings=settings,
            engine=engine,
            store=store,
            auth=auth,
            metrics=Metrics(),
            fhir=fhir,
            jwks_http=jwks_http,
            discovery=discovery_document(settings).to_wire(),
        )

    async def close(self) -> None:
        await self.fhir.aclose()
        await self.jwks_http.aclose()
        self.store.close()
