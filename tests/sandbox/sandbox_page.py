"""What the browser tests of the /sandbox page do and check, in the page's own words."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Locator, Page, expect

from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import Scenario, load_scenarios

SCENARIOS = {s.id: s for s in load_scenarios(PROJECT_ROOT / "fixtures")}

# Chromium reports every 4xx answer to a fetch on the console; the state tests expect some.
REFUSED_RESOURCE = re.compile(r"^Failed to load resource: the server responded with a status "
                              r"of 4\d\d\b")


def contains(text: str) -> re.Pattern[str]:
    return re.compile(".*" + re.escape(text) + ".*", re.DOTALL)


def choose_fixture(page: Page, scenario: Scenario) -> None:
    page.get_by_label("Fixture (grouped by card family)").select_option(scenario.id)
    patient = scenario.request["context"]["patientId"]
    expect(page.get_by_label("CDS Hooks request (JSON)")).to_have_value(
        contains(f'"patientId": "{patient}"'))
    expect(page.locator("#story-title")).to_have_text(scenario.title)


def send(page: Page) -> None:
    page.get_by_role("button", name="Send to the service").click()
    expect(page.locator("#status")).not_to_have_text(re.compile("^(Sending…|Nothing sent yet.)$"))


def send_fixture(page: Page, scenario: Scenario) -> str:
    """Pick the fixture, send it to its service, wait for its cards and its audit record;
    returns the hookInstance sent."""
    choose_fixture(page, scenario)
    send(page)
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    expect(page.locator("article.card")).to_have_count(len(scenario.expected))
    expect(page.locator("#audit dl")).to_have_count(1)
    return sent_hook_instance(page)


def sent_hook_instance(page: Page) -> str:
    raw = page.locator("#raw-request").text_content() or ""
    return raw.split('"hookInstance": "', 1)[1].split('"', 1)[0]


def viewport_width(page: Page) -> int:
    width: int = page.evaluate("document.documentElement.clientWidth")
    return width


def assert_no_horizontal_overflow(page: Page) -> None:
    """Nothing wider than the screen, and every card wholly inside it, side to side."""
    scroll_width, client_width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll_width <= client_width, f"the page is {scroll_width} px wide in {client_width}"
    edges = page.locator("article.card").evaluate_all(
        "cards => cards.map(c => { const r = c.getBoundingClientRect();"
        " return [r.left, r.right]; })")
    for left, right in edges:
        assert 0 <= left and right <= client_width, (left, right, client_width)


def assert_inside_and_usable(page: Page, control: Locator) -> None:
    """Visible, wholly on screen once scrolled to, and would take a click (Playwright's
    actionability checks: attached, visible, stable, enabled, not covered)."""
    control.scroll_into_view_if_needed()
    expect(control).to_be_visible()
    expect(control).to_be_enabled()
    box = control.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport_width(page), box
    control.click(trial=True)


def assert_summary_readable(page: Page, card: Locator) -> None:
    """The summary is shown whole: on screen and not cut off by its own box."""
    summary = card.locator(".card__summary")
    summary.scroll_into_view_if_needed()
    expect(summary).to_be_visible()
    expect(summary).to_be_in_viewport(ratio=1)
    clipped = summary.evaluate("s => s.scrollWidth > s.clientWidth")
    assert not clipped
    box = summary.bounding_box()
    assert box is not None and box["x"] + box["width"] <= viewport_width(page)


def unexpected_console_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not REFUSED_RESOURCE.match(e)]


# Every date, time, number, range and model number in a card's text, each as one run that
# must sit on one line (a number keeps its unit: the service joins them with a no-break
# space).
_RUNS = (r"\d{1,2}\u00a0[A-Z][a-z]{2}\u00a0\d{4}|\d{4}-\d{2}-\d{2}|\d{2}:\d{2}"
         r"|\d+(?:[-\u2013\u2060]+\d+)+|\d+(?:[.,]\d+)*(?:\u00a0[^\s]+)?")
CARD_PROBLEMS_JS = """
([cards, runs, width]) => {
  const problems = [];
  const pattern = new RegExp(runs, "g");
  for (const card of cards) {
    const id = card.dataset.rule + "/" + card.dataset.outcome;
    const box = card.getBoundingClientRect();
    if (box.left < 0 || box.right > width + 0.5)
      problems.push(`${id}: card ${box.left}..${box.right}`);
    const summary = card.querySelector(".card__summary");
    const s = summary.getBoundingClientRect();
    if (s.left < 0 || s.right > width + 0.5) problems.push(`${id}: summary off screen`);
    if (summary.scrollWidth > summary.clientWidth + 1
        || summary.scrollHeight > summary.clientHeight + 1)
      problems.push(`${id}: summary clipped`);
    for (const el of card.querySelectorAll("*")) {
      if (el.getBoundingClientRect().right > width + 0.5 && el.getClientRects().length)
        problems.push(`${id}: <${el.tagName.toLowerCase()}> sticks out: `
                      + el.textContent.slice(0, 40));
    }
    const walker = document.createTreeWalker(card, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      for (const m of node.nodeValue.matchAll(pattern)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = new Set(Array.from(range.getClientRects(), (r) => Math.round(r.top)));
        if (tops.size > 1) problems.push(`${id}: "${m[0]}" broken across lines`);
      }
    }
  }
  return problems;
}
"""


def card_problems(page: Page) -> list[str]:
    """What is wrong with how the page shows its cards: a card, summary or part of a card
    wider than the screen, a summary cut off, a date or number broken across lines."""
    width = viewport_width(page)
    problems: list[str] = page.locator("article.card").evaluate_all(
        f"cards => ({CARD_PROBLEMS_JS})([cards, {json.dumps(_RUNS)}, {width}])")
    return problems
