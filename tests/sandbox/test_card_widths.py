"""Every scenario's cards read whole in a narrow EHR panel (issue 16), in a real Chromium 320
and 400 px wide: nothing wider than the screen, every summary shown whole, no date or number
(with its unit) broken across two lines.

Every scenario is checked in the card gallery (/sandbox/gallery: each scenario's response
drawn with the sandbox's card markup and styles, one page load for all); the /sandbox page's
own script-built card view is checked on a card of every family and the widest responses
(sending each of the 107 fixtures through its form takes minutes on this machine)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from cds_service.sandbox.scenarios import shifted_anchor
from tests.conftest import FIXED_NOW, Clock, LiveServer
from tests.sandbox.conftest import OpenPage
from tests.sandbox.sandbox_page import (
    SCENARIOS,
    assert_no_horizontal_overflow,
    card_problems,
    send_fixture,
)

pytestmark = pytest.mark.browser

WIDTHS = [320, 400]
# A card of every family, the three of the screenshots, two cards in one response and
# the longest labels (an unknown pump model, instants with their time).
ON_THE_PAGE = [
    "refill-overdue", "candidacy-cp-baclofen-drowsiness",
    "candidacy-order-sign-above-max-sandbox", "trial-mas-negative-one-plus",
    "battery-eri-date-recorded", "dq-refill-unknown-volume-and-model",
    "mixed-refill-empty-battery-end-of-service",
]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_sandbox_page_s_cards_fit_a_narrow_panel(
    web_server: Callable[..., LiveServer],
    open_page: Callable[[LiveServer, int], OpenPage],
    width: int,
) -> None:
    # The service's now: each scenario's anchor time on the sandbox's day (the page shifts a
    # fixture's dates to that day; some trial stories depend on the hour).
    clock = Clock(FIXED_NOW)
    opened = open_page(web_server(clock=clock), width)
    page = opened.page
    problems: list[str] = []
    shown = 0
    for scenario in (SCENARIOS[i] for i in ON_THE_PAGE):
        clock.now = shifted_anchor(scenario, FIXED_NOW)
        send_fixture(page, scenario)  # its expected cards, no more, no fewer
        assert_no_horizontal_overflow(page)
        problems += [f"{scenario.id}: {p}" for p in card_problems(page)]
        shown += page.locator("article.card").count()
    assert problems == []
    assert shown == sum(len(SCENARIOS[i].expected) for i in ON_THE_PAGE)
    assert opened.script_errors == []


@pytest.mark.parametrize("width", WIDTHS)
def test_the_card_gallery_shows_every_scenario_and_fits_a_narrow_panel(
    web_server: Callable[..., LiveServer],
    open_page: Callable[[LiveServer, int], OpenPage],
    width: int,
) -> None:
    opened = open_page(web_server(), width)
    page = opened.page
    page.goto("/sandbox/gallery")
    expect(page.locator("section.scenario")).to_have_count(len(SCENARIOS))
    expected = sum(len(s.expected) for s in SCENARIOS.values())
    expect(page.locator("article.card")).to_have_count(expected)
    for scenario in SCENARIOS.values():
        cards = page.locator(f'section.scenario[data-scenario="{scenario.id}"] article.card')
        assert sorted((c.get_attribute("data-rule"), c.get_attribute("data-outcome"),
                       c.get_attribute("data-indicator")) for c in cards.all()) == sorted(
            (e.rule, e.outcome, e.indicator) for e in scenario.expected), scenario.id
    assert_no_horizontal_overflow(page)
    assert card_problems(page) == []
    assert opened.script_errors == [] and opened.console_errors == []
