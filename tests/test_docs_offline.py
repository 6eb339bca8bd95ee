"""/docs (Swagger UI) and /redoc render in a real Chromium that cannot reach anything but the
service: their scripts and styles are served by the service itself (fastapi-offline), not
fetched from a CDN that a hospital network blocks. Swagger UI asks for nothing outside; the
ReDoc bundle still asks for its "powered by" logo image, which fails without harm."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Request, Route, expect, sync_playwright

from tests.conftest import LiveServer, skip_or_fail
from tests.sandbox.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
# Everything not on loopback goes to a proxy nobody listens on: the network is unreachable.
OFFLINE_ARGS = [*CHROMIUM_ARGS, "--proxy-server=http://127.0.0.1:9"]


REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def render(url: str, chromium: Path) -> tuple[str, str, int, list[str], list[str]]:
    """(Swagger UI's title, ReDoc's heading, operations listed, and the requests each page
    made beyond loopback).

    Runs in a thread of its own: Playwright's sync API refuses a thread whose event loop is
    running, and another test module may keep one running for the whole session."""
    outside: list[str] = []

    def only_loopback(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=OFFLINE_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            page.goto(url + "/docs")
            title = page.locator(".swagger-ui .info .title")
            expect(title).to_contain_text("ITB CDS", timeout=20_000)
            operations = page.locator(".swagger-ui .opblock")
            expect(operations.first).to_be_visible()
            swagger, count = title.inner_text(), operations.count()
            from_swagger = list(outside)
            outside.clear()
            page.goto(url + "/redoc")
            heading = page.locator("h1").first
            expect(heading).to_contain_text("ITB CDS", timeout=20_000)
            redoc = heading.inner_text()
        finally:
            browser.close()
    return swagger, redoc, count, from_swagger, outside


def test_the_api_docs_render_with_the_network_unreachable(
        live_app_factory: Callable[..., LiveServer]) -> None:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    server = live_app_factory()
    with ThreadPoolExecutor(1) as pool:
        swagger, redoc, operations, from_swagger, from_redoc = pool.submit(
            render, server.url, CHROMIUM).result()
    assert "ITB CDS" in swagger and "ITB CDS" in redoc
    assert operations >= 5  # discovery, the service call, feedback, health, ready, metrics
    assert from_swagger == [], f"Swagger UI reached for the network: {from_swagger}"
    assert set(from_redoc) <= {REDOC_LOGO}, f"ReDoc reached for the network: {from_redoc}"
