"""The real service (with its sandbox page and fixture FHIR endpoint) on a loopback port, and
a real headless Chromium for the browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cds_service.config import PROJECT_ROOT
from cds_service.runtime import Runtime
from tests.conftest import LiveServer, skip_or_fail

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


def runtime_of(server: LiveServer) -> Runtime:
    """The live service's runtime (its audit store, authenticator ...)."""
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
def web_server(live_app_factory: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """The service as shipped (sandbox and /fhir included) on 127.0.0.1."""
    return live_app_factory


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
