"""The integration sandbox page and the read-only fixture FHIR endpoint."""

from __future__ import annotations

from fastapi import APIRouter

from cds_service.config import Settings
from cds_service.web.fhir_server import fhir_router
from cds_service.web.fixture_library import FixtureLibrary
from cds_service.web.sandbox import sandbox_router

__all__ = ["FixtureLibrary", "fhir_router", "sandbox_router", "web_router"]


def web_router(settings: Settings) -> APIRouter:
    """``/sandbox`` and ``/fhir``, sharing one fixture library read from
    ``settings.fixtures_dir`` on first use."""
    library = FixtureLibrary(settings.fixtures_dir)
    router = APIRouter()
    router.include_router(sandbox_router(library, settings))
    router.include_router(fhir_router(library, settings))
    return router
