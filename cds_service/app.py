"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from cds_service.api import health, services
from cds_service.api.admin import AdminGate, admin_router
from cds_service.api.errors import install_error_handlers
from cds_service.api.governance import governance_router
from cds_service.api.limits import RequestLimits
from cds_service.api.middleware import CorsAndSecurityHeaders
from cds_service.api.observe import CallObserver
from cds_service.api.openapi import install_openapi
from cds_service.api.worklist import worklist_router
from cds_service.config import AuthMode, Settings
from cds_service.profile import enforce, startup_warnings
from cds_service.runtime import Runtime

log = logging.getLogger("itb_cds")


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """Build the service. ``clock`` is the rules' *now* (tests and demos inject one)."""
    settings = settings or Settings()
    enforce(settings)  # the profile's refusals (ConfigurationError), before anything opens
    settings.ensure_data_dir()

    # Built here rather than in the lifespan so that a bad catalogue, value set or trust file
    # stops the process before it binds, with the loader's message.
    runtime = Runtime.start(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auth_mode is AuthMode.OFF:
            log.warning(
                "AUTH MODE IS OFF: CDS client JWTs are not checked (local development only; "
                "set ITB_CDS_AUTH_MODE=jwt in production)"
            )
        else:
            log.info("auth mode: jwt")
        for warning in startup_warnings(settings):
            log.warning(warning)
        try:
            yield
        finally:
            await runtime.close()

    # Swagger UI and ReDoc from assets shipped in fastapi-offline, not from a CDN: /docs must
    # work on a hospital network that reaches nothing outside.
    app = FastAPIOffline(
        title="ITB CDS",
        version="0.1.0",
        summary="CDS Hooks decision support for intrathecal baclofen pump therapy",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url="/redoc",
        static_url="/docs/assets",
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    install_openapi(app)
    gate = AdminGate(settings)
    app.include_router(admin_router(runtime.store, settings, gate))
    app.include_router(governance_router(runtime.store, settings, gate))
    app.include_router(services.router)
    app.include_router(health.router)
    app.include_router(worklist_router(settings, gate))  # off (404) until configured
    if settings.sandbox_enabled:
        from cds_service.sandbox import sandbox_routes  # imported only when mounted

        app.include_router(sandbox_routes(settings))  # /sandbox and /fhir (synthetic fixtures)
    app.add_middleware(RequestLimits, settings=settings)  # inside CORS: its 503s get headers
    app.add_middleware(CallObserver, metrics=runtime.metrics)  # counts the limits' 503s too
    app.add_middleware(  # outermost: preflights are answered before anything else runs
        CorsAndSecurityHeaders, origins=settings.cors_origins,
        page_prefixes=("/docs", "/redoc", "/sandbox"),
        cors_prefixes=("/cds-services",), routes=app.routes,
    )
    return app
