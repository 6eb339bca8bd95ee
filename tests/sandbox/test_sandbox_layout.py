"""The /sandbox page fits every screen from a phone (360 px) to a wide desktop (1920 px): no
sideways scrolling, every card inside the screen with its summary whole and its buttons
usable — including at 1024 px, where a wide card table used to push the cards off screen."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.sandbox.conftest import OpenPage
from tests.sandbox.sandbox_page import (
    SCENARIOS,
    assert_inside_and_usable,
    assert_no_horizontal_overflow,
    assert_summary_readable,
    card_problems,
    send_fixture,
)

pytestmark = pytest.mark.browser

WIDTHS = [360, 480, 768, 1024, 1280, 1920]
# Two cards (critical refill, warning battery), each with evidence tables, a suggestion and
# the dismiss form: the widest content a fixture sends.
TWO_CARDS = SCENARIOS["mixed-refill-overdue-battery-plan"]
ONE_OF_EACH_FAMILY = [
    "candidacy-cp-tizanidine-ineffective",
    "trial-positive-response",
    "refill-overdue",
    "battery-plan",
    "dq-refill-no-dose-no-concentration",
]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_fits_the_screen_and_every_card_is_usable(
    web_server: Callable[..., LiveServer],
    open_page: Callable[[LiveServer, int], OpenPage],
    screenshots: Path,
    width: int,
) -> None:
    opened = open_page(web_server(), width)
    page = opened.page
    assert_no_horizontal_overflow(page)  # before any call, too
    send_fixture(page, TWO_CARDS)
    assert_no_horizontal_overflow(page)

    cards = page.locator("article.card")
    for i in range(cards.count()):
        card = cards.nth(i)
        assert_summary_readable(page, card)
        for control in (*card.locator("button.suggestion").all(),
                        card.get_by_label("Override reason"),
                        card.get_by_label("Comment (optional)"),
                        card.get_by_role("button", name="Dismiss card")):
            assert_inside_and_usable(page, control)

    # And the buttons do work at this width: dismissing the first card folds it.
    first = cards.first
    first.get_by_label("Override reason").select_option(index=1)
    first.get_by_role("button", name="Dismiss card").click()
    expect(first.locator(".card__outcome")).to_contain_text("Dismissed — reason: ")
    expect(page.locator("#audit tbody tr[data-outcome=overridden]")).to_have_count(1)
    assert_no_horizontal_overflow(page)
    page.screenshot(path=str(screenshots / f"layout-{width}.png"), full_page=True)
    assert opened.script_errors == []
    assert opened.console_errors == []


@pytest.mark.parametrize("scenario_id", ONE_OF_EACH_FAMILY)
def test_each_family_s_cards_fit_a_360_px_phone(
    web_server: Callable[..., LiveServer],
    open_page: Callable[[LiveServer, int], OpenPage],
    scenario_id: str,
) -> None:
    opened = open_page(web_server(), 360)
    page = opened.page
    send_fixture(page, SCENARIOS[scenario_id])
    assert_no_horizontal_overflow(page)
    cards = page.locator("article.card")
    for i in range(cards.count()):
        assert_summary_readable(page, cards.nth(i))
        assert_inside_and_usable(page, cards.nth(i).get_by_role("button", name="Dismiss card"))
    assert opened.script_errors == []
    assert opened.console_errors == []


def test_long_values_wrap_between_words_never_inside_a_date_or_a_number(
    web_server: Callable[..., LiveServer],
    open_page: Callable[[LiveServer, int], OpenPage],
) -> None:
    opened = open_page(web_server(), 360)
    page = opened.page
    send_fixture(page, SCENARIOS["refill-overdue"])
    detail = page.locator("article.card .card__detail")
    # Every date and every dose with its unit in the card is one unbreakable run, on one line
    # (the cards write dates as "11 Jun 2026" and join a number to its unit).
    expect(detail.first).to_contain_text("11\u00a0Jun\u00a02026")
    runs = detail.locator(".nobr")
    # The concentration, and in the alarm and empty arithmetic.
    expect(runs.filter(has_text="1000 mcg/mL")).to_have_count(3)
    heights = runs.evaluate_all(
        "runs => runs.map(r => [r.textContent, r.getClientRects().length])")
    assert heights and all(lines == 1 for _, lines in heights), heights
    assert card_problems(page) == []
    assert_no_horizontal_overflow(page)

    # A long word from the chart (a product name written as one token) wraps at its dots,
    # slashes and underscores, not mid-word and not off the screen.
    scenario = SCENARIOS["candidacy-cp-baclofen-drowsiness"]
    request = copy.deepcopy(scenario.request)
    long_name = "Baclofen_oral_tablet/Lioresal.generic.formulary-item-20mg"
    for entry in request["prefetch"]["medicationRequests"]["entry"]:
        entry["resource"]["medicationCodeableConcept"]["text"] = long_name
    page.get_by_label("Fixture (grouped by card family)").select_option(scenario.id)
    expect(page.locator("#story-title")).to_have_text(scenario.title)
    page.get_by_label("CDS Hooks request (JSON)").fill(json.dumps(request))
    page.get_by_role("button", name="Send to the service").click()
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    item = page.locator("article.card .card__detail li", has_text="Lioresal")
    expect(item).to_have_count(1)
    assert item.locator("wbr").count() >= 2
    assert card_problems(page) == []
    assert_no_horizontal_overflow(page)
