"""The sandbox page in a real headless Chromium against the real service: a fixture of each
family shows its expected cards, clicking a suggestion stores accepted feedback, and dismissing
a card with an override reason stores that reason — each visible in the page's audit trail."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from cds_service.audit.models import FeedbackRecord
from cds_service.audit.store import AuditStore
from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import Scenario, load_scenarios
from tests.conftest import LiveServer
from tests.sandbox.conftest import runtime_of

pytestmark = pytest.mark.browser


SCENARIOS = {s.id: s for s in load_scenarios(PROJECT_ROOT / "fixtures")}
# One fixture per family, each with at least one card.
BY_FAMILY = {
    "candidacy": "candidacy-cp-tizanidine-ineffective",
    "trial": "trial-positive-response",
    "refill": "refill-overdue",
    "battery": "battery-plan",
    "data-quality": "dq-refill-no-dose-no-concentration",
    "mixed": "mixed-refill-overdue-battery-plan",
}
# Those whose first card carries a suggestion (data-quality cards have none).
WITH_SUGGESTIONS = [f for f in BY_FAMILY if f != "data-quality"]


@pytest.fixture
def sandbox(
    browser: Browser, web_server: Callable[..., LiveServer]
) -> Iterator[tuple[Page, AuditStore, list[str]]]:
    server = web_server()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400
            and "/sandbox/api/audit/" not in r.url else None)
    page.goto("/sandbox")
    expect(page.locator("body[data-ready=true]")).to_have_count(1)
    store = runtime_of(server).store
    yield page, store, problems
    context.close()


def send_fixture(page: Page, scenario: Scenario) -> str:
    """Pick the fixture, send it, wait for the cards; returns the hookInstance sent."""
    page.get_by_label("Fixture (grouped by card family)").select_option(scenario.id)
    patient = scenario.request["context"]["patientId"]
    expect(page.get_by_label("CDS Hooks request (JSON)")).to_have_value(
        _contains(f'"patientId": "{patient}"'))
    expect(page.locator("#story-title")).to_have_text(scenario.title)
    page.get_by_role("button", name="Send to the service").click()
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    expect(page.locator("article.card")).to_have_count(len(scenario.expected))
    raw = page.locator("#raw-request").text_content() or ""
    return raw.split('"hookInstance": "', 1)[1].split('"', 1)[0]


def _contains(text: str) -> re.Pattern[str]:
    return re.compile(".*" + re.escape(text) + ".*", re.DOTALL)


def shown_cards(page: Page) -> Counter[tuple[str, str, str]]:
    cards = page.locator("article.card")
    return Counter(
        (
            cards.nth(i).get_attribute("data-rule") or "",
            cards.nth(i).get_attribute("data-outcome") or "",
            cards.nth(i).get_attribute("data-indicator") or "",
        )
        for i in range(cards.count())
    )


def feedback(store: AuditStore, hook_instance: str) -> list[FeedbackRecord]:
    return store.feedback_for(hook_instance)


@pytest.mark.parametrize("family", list(BY_FAMILY))
def test_a_fixture_of_each_family_shows_its_expected_cards(
    sandbox: tuple[Page, AuditStore, list[str]], screenshots: Path, family: str
) -> None:
    page, _, problems = sandbox
    scenario = SCENARIOS[BY_FAMILY[family]]
    send_fixture(page, scenario)
    expected = Counter((e.rule, e.outcome, e.indicator) for e in scenario.expected)
    assert shown_cards(page) == expected
    first = page.locator("article.card").first
    # The indicator is written out, not only shown by colour.
    expect(first.locator(".badge")).to_have_text(
        (first.get_attribute("data-indicator") or "").capitalize())
    expect(first.locator(".card__summary")).not_to_be_empty()
    expect(first.locator(".card__source")).to_contain_text("Source:")
    expect(page.locator("#audit dl")).to_have_count(1)  # the call is in the audit trail
    page.screenshot(path=str(screenshots / f"{family}-cards.png"), full_page=True)
    assert problems == []  # no script error, no CSP violation


@pytest.mark.parametrize("family", WITH_SUGGESTIONS)
def test_clicking_a_suggestion_stores_accepted_feedback(
    sandbox: tuple[Page, AuditStore, list[str]], screenshots: Path, family: str
) -> None:
    page, store, problems = sandbox
    hook_instance = send_fixture(page, SCENARIOS[BY_FAMILY[family]])
    card = page.locator("article.card").first
    suggestion = card.locator("button.suggestion").first
    suggestion_uuid = suggestion.get_attribute("data-suggestion-uuid")
    suggestion.click()

    expect(card.locator(".card__outcome")).to_contain_text("Accepted")
    expect(page.locator("#audit tbody tr[data-outcome=accepted]")).to_have_count(1)
    (row,) = feedback(store, hook_instance)
    assert row.outcome == "accepted"
    assert row.card_uuid == card.get_attribute("data-card-uuid")
    assert row.accepted_suggestions == [suggestion_uuid]
    page.screenshot(path=str(screenshots / f"{family}-accepted.png"), full_page=True)
    assert problems == []


@pytest.mark.parametrize("family", list(BY_FAMILY))
def test_dismissing_a_card_with_a_reason_stores_that_reason(
    sandbox: tuple[Page, AuditStore, list[str]], screenshots: Path, family: str
) -> None:
    page, store, problems = sandbox
    hook_instance = send_fixture(page, SCENARIOS[BY_FAMILY[family]])
    card = page.locator("article.card").last
    reasons = card.get_by_label("Override reason")
    choice = reasons.locator("option").last
    reason_text = choice.text_content() or ""
    reasons.select_option(label=reason_text)
    card.get_by_label("Comment (optional)").fill("Discussed with the patient today")
    card.get_by_role("button", name="Dismiss card").click()

    expect(card.locator(".card__outcome")).to_contain_text(f"Dismissed — reason: {reason_text}")
    expect(page.locator("#audit tbody tr[data-outcome=overridden] td.reason")).to_have_text(
        reason_text)
    (row,) = feedback(store, hook_instance)
    assert row.outcome == "overridden"
    assert row.card_uuid == card.get_attribute("data-card-uuid")
    assert row.override_reason_display == reason_text
    assert row.override_reason_code and row.override_reason_system
    assert row.user_comment == "Discussed with the patient today"
    page.screenshot(path=str(screenshots / f"{family}-overridden.png"), full_page=True)
    assert problems == []


def test_a_dismissal_needs_a_reason_when_the_card_offers_some(
    sandbox: tuple[Page, AuditStore, list[str]],
) -> None:
    page, store, _ = sandbox
    hook_instance = send_fixture(page, SCENARIOS[BY_FAMILY["refill"]])
    card = page.locator("article.card").first
    card.get_by_role("button", name="Dismiss card").click()
    expect(card.locator(".card__outcome")).to_have_text("Choose an override reason first.")
    assert feedback(store, hook_instance) == []


def test_a_pasted_request_that_is_not_json_is_reported_not_sent(
    sandbox: tuple[Page, AuditStore, list[str]],
) -> None:
    page, _, _ = sandbox
    page.get_by_label("CDS Hooks request (JSON)").fill("{not json")
    page.get_by_role("button", name="Send to the service").click()
    expect(page.locator("#status")).to_contain_text("not valid JSON")
    expect(page.locator("#raw-response")).to_be_empty()


def test_the_page_works_from_the_keyboard_alone(
    sandbox: tuple[Page, AuditStore, list[str]], screenshots: Path
) -> None:
    page, _, problems = sandbox

    def tab_to(selector: str) -> None:
        for _ in range(40):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        pytest.fail(f"{selector} cannot be reached with Tab")

    tab_to("#fixture")
    page.keyboard.press("ArrowDown")  # the first fixture
    expect(page.get_by_label("CDS Hooks request (JSON)")).to_have_value(_contains('"patientId"'))
    tab_to("#send")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    tab_to("button.suggestion")
    page.keyboard.press("Enter")
    expect(page.locator("#audit tbody tr[data-outcome=accepted]")).to_have_count(1)
    page.screenshot(path=str(screenshots / "keyboard-1280x800.png"))  # the viewport only
    assert problems == []
