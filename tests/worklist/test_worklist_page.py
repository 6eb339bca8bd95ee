"""The worklist page of GET /worklist in a real Chromium: the timeline chart is drawn and
visible (one group per week, bars whose counts are the rows' due dates), the table lists every
row most urgent first, nothing at all is loaded besides the page, and it prints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bench.panel import ANCHOR, GROUP_ID
from cds_service.app import create_app
from cds_service.worklist import Panel
from cds_service.worklist.page import timeline
from tests.conftest import LiveServer, free_port, make_settings
from tests.worklist.conftest import TOKEN

pytestmark = pytest.mark.browser
ADMIN = "admin-token-page-55e1-" + "p" * 24  # at least 32 characters


@pytest.fixture(scope="module")
def page(exported: Panel, browser: Browser, panel_url: str,
         tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Page, list[str], list[str]]]:
    # ``exported`` first: it runs an event loop, which Playwright's sync API forbids once open.
    port = free_port()
    settings = make_settings(tmp_path_factory.mktemp("worklist-page"), admin_token=ADMIN,
                             public_base_url=f"http://127.0.0.1:{port}",
                             worklist={"fhir_server": panel_url, "fhir_token": TOKEN})
    with LiveServer(create_app(settings, clock=lambda: ANCHOR), port) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      base_url=server.url,
                                      extra_http_headers={"Authorization": f"Bearer {ADMIN}"})
        context.set_default_timeout(20_000)
        opened = context.new_page()
        requests: list[str] = []
        problems: list[str] = []
        opened.on("request", lambda r: requests.append(r.url))
        opened.on("pageerror", lambda e: problems.append(str(e)))
        opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        opened.goto(f"/worklist?group={GROUP_ID}")
        yield opened, requests, problems
        context.close()


def test_the_timeline_chart_is_drawn_and_visible(page: tuple[Page, list[str], list[str]],
                                                 exported: Panel, screenshots: Path) -> None:
    opened, _, _ = page
    svg = opened.locator("figure#timeline svg")
    expect(svg).to_be_visible()
    box = svg.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 150
    weeks = opened.locator("svg g.week")
    expect(weeks).to_have_count(27)
    chart = timeline(exported.rows, ANCHOR.date(), 180)
    drawn = [int(w.get_attribute("data-refills") or 0) for w in weeks.all()]
    assert drawn == [b.refills for b in chart.bars] and sum(drawn) > 0
    tallest = max(opened.locator("svg rect.refills").all(),
                  key=lambda r: (r.bounding_box() or {"height": 0})["height"])
    expect(tallest).to_be_visible()
    assert (tallest.bounding_box() or {"height": 0})["height"] > 20
    opened.screenshot(path=str(screenshots / "worklist.png"), full_page=True)


def test_the_table_lists_every_row_most_urgent_first(page: tuple[Page, list[str], list[str]],
                                                     exported: Panel) -> None:
    opened, _, _ = page
    rows = opened.locator("table#rows tbody tr")
    expect(rows).to_have_count(len(exported.rows))
    expect(rows.first).to_have_class("critical")
    expect(rows.first.locator("td").first).to_have_text(exported.rows[0].patient)


def test_the_page_loads_nothing_else_and_prints(page: tuple[Page, list[str], list[str]]
                                                ) -> None:
    opened, requests, problems = page
    assert [r.split("/", 3)[3] for r in requests] == [f"worklist?group={GROUP_ID}"]
    assert problems == []
    opened.emulate_media(media="print")
    expect(opened.locator("figure#timeline svg")).to_be_visible()
    assert len(opened.pdf(format="A4", landscape=True)) > 10_000
