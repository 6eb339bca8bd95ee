"""The real service (with its sandbox page and fixture FHIR endpoint) on a loopback port, and
a real headless Chromium for the browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright

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


# Per module, not per session: between its calls Playwright's sync API leaves its asyncio loop
# marked as running in the main thread, and a later test that runs a loop of its own
# (asyncio.run) would fail with "Cannot run the event loop while another loop is running".
@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# Every wait of a browser test is bounded by this (Playwright's expect waits 5 s by default).
ACTION_TIMEOUT_MS = 10_000


class OpenPage:
    """The /sandbox page of ``server`` in a fresh browser context ``width`` pixels wide, with
    everything that went wrong in it: script errors, CSP violations, failed requests."""

    def __init__(self, browser: Browser, server: LiveServer, width: int) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 800},
                                           base_url=server.url)
        self.context.set_default_timeout(ACTION_TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.script_errors: list[str] = []
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda e: self.script_errors.append(str(e)))
        self.page.on("console", lambda m: self.console_errors.append(m.text)
                     if m.type == "error" else None)
        self.page.goto("/sandbox")
        expect(self.page.locator("body[data-ready=true]")).to_have_count(1)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[LiveServer, int], OpenPage]]:
    opened: list[OpenPage] = []

    def open_(server: LiveServer, width: int) -> OpenPage:
        opened.append(OpenPage(browser, server, width))
        return opened[-1]

    yield open_
    for page in opened:
        page.close()
