"""The integration sandbox: the /sandbox page, the read-only fixture FHIR endpoint, the
scenario fixtures and ``itb-cds run``. The app mounts it only when enabled; nothing in the
engine imports it."""

from __future__ import annotations

from fastapi import APIRouter

from cds_service.config import Settings
from cds_service.sandbox.fhir_export import export_router
from cds_service.sandbox.fhir_server import fhir_router
from cds_service.sandbox.fixture_library import FixtureLibrary
from cds_service.sandbox.gallery import gallery_router
from cds_service.sandbox.page import sandbox_router

__all__ = ["FixtureLibrary", "fhir_router", "sandbox_router", "sandbox_routes"]


def sandbox_routes(settings: Settings) -> APIRouter:
    """``/sandbox`` (with its card gallery) and ``/fhir``, sharing one fixture library read
    from ``settings.fixtures_dir`` on first use."""
    library = FixtureLibrary(settings.fixtures_dir)
    router = APIRouter()
    router.include_router(sandbox_router(library, settings))
    router.include_router(gallery_router(library, settings))
    # Before /fhir/{type}/{id}: "$export-status/<job>" would match that route too.
    router.include_router(export_router(library))
    router.include_router(fhir_router(library, settings))
    return router
