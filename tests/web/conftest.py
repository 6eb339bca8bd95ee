"""The real service (with its sandbox page and fixture FHIR endpoint) on a loopback port, and
a real headless Chromium for the browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute

from cds_service.app import create_app
from cds_service.config import PROJECT_ROOT
from cds_service.runtime import Runtime
from cds_service.web import web_router
from tests.conftest import FIXED_NOW, LiveServer, free_port, make_settings, skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = PROJECT_ROOT / "artifacts" / "screenshots"


def _serves(app: FastAPI, path: str) -> bool:
    routes: list[BaseRoute] = app.router.routes
    return any(getattr(route, "path", "") == path for route in routes)


def web_app(settings: Any, clock: Callable[[], datetime]) -> FastAPI:
    """``create_app`` as shipped; the sandbox routes are added only if app.py does not wire
    them yet, so these tests exercise the real wiring once it is there."""
    app = create_app(settings, clock=clock)
    if not _serves(app, "/sandbox"):
        app.include_router(web_router(settings))
    return app


def runtime_of(server: LiveServer) -> Runtime:
    """The live service's runtime (its audit store, authenticator ...)."""
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start the service on 127.0.0.1 (public_base_url = its own URL); stopped after the test."""
    servers: list[LiveServer] = []

    def start(clock: Callable[[], datetime] = lambda: FIXED_NOW, **overrides: Any) -> LiveServer:
        port = free_port()
        overrides.setdefault("public_base_url", f"http://127.0.0.1:{port}")
        settings = make_settings(tmp_path, **overrides)
        server = LiveServer(web_app(settings, clock))
        server.port, server.url = port, f"http://127.0.0.1:{port}"
        server.server.config.port = port
        servers.append(server.__enter__())
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture
def live_web(web_server: Callable[..., LiveServer]) -> Iterator[tuple[LiveServer, httpx.Client]]:
    server = web_server()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield server, http


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
