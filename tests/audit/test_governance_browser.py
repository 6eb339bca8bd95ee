"""The governance page in a real Chromium with the network unreachable (issue 18, acceptance 3):
every chart drawn and visible, on screen and in print, with nothing fetched from anywhere but
the service itself."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from cds_service.app import create_app
from cds_service.audit.store import AuditStore
from cds_service.config import PROJECT_ROOT
from tests.audit.governance_log import load, make_log
from tests.conftest import LiveServer, free_port, make_settings, skip_or_fail

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
TOKEN = "governance-browser-test-admin-token"
CHARTS = ("cards-by-rule", "overrides", "latency", "outcomes")
SCREENSHOT = PROJECT_ROOT / "artifacts" / "screenshots" / "governance-dashboard.png"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(str(CHROMIUM)) is None:
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def dashboard(browser: Browser, tmp_path: Path) -> Iterator[tuple[Page, list[str], list[str]]]:
    """The page served by the real service over a synthetic log; the requests the browser
    made, and those it was stopped from making (anything off loopback)."""
    port = free_port()
    settings = make_settings(tmp_path, admin_token=TOKEN, sandbox_enabled=False,
                             public_base_url=f"http://127.0.0.1:{port}")
    store = AuditStore(settings)
    load(store, make_log(4_000, 600))
    store.close()
    requested: list[str] = []
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        requested.append(url)
        if urlsplit(url).hostname in LOOPBACK or url.startswith(("data:", "about:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("internetdisconnected")

    with LiveServer(create_app(settings), port) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      extra_http_headers={"Authorization": f"Bearer {TOKEN}"})
        context.set_default_timeout(10_000)
        context.route("**/*", only_loopback)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            response = page.goto(f"{server.url}/admin/governance")
            assert response is not None and response.status == 200
            yield page, requested, blocked
            assert errors == []
        finally:
            context.close()


def test_every_chart_is_drawn_and_visible_with_the_network_unreachable(
        dashboard: tuple[Page, list[str], list[str]]) -> None:
    page, requested, blocked = dashboard

    for slug in CHARTS:
        chart = page.locator(f"figure[data-chart='{slug}'] svg")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 150, slug
        # Drawn, not an empty frame: data lines and bars are paths inside the plot.
        assert chart.locator("path").count() > 20, slug
        chart.scroll_into_view_if_needed()
    expect(page.locator("text=Cards by service, rule, outcome, tier and rule version")
           ).to_be_visible()
    markers = page.locator("figure[data-chart='cards-by-rule'] svg text", has_text="C2")
    expect(markers).to_have_count(1)  # the catalogue change is marked on the chart
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert blocked == [] and len(requested) == 1  # the page itself, and nothing else


def test_the_printed_page_keeps_the_charts_and_drops_the_controls(
        dashboard: tuple[Page, list[str], list[str]]) -> None:
    page, _, _ = dashboard

    page.emulate_media(media="print")

    expect(page.locator("form.filters")).to_be_hidden()
    for slug in CHARTS:
        expect(page.locator(f"figure[data-chart='{slug}'] svg")).to_be_visible()
    pdf = page.pdf(format="A4", landscape=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
