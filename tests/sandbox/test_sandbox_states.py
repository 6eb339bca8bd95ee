"""The /sandbox page in each state an integration engineer meets: every call first clears the
previous call's cards, audit and feedback; an error replaces them and the audit panel says why
it is empty; in JWT mode the page explains the 401 and sends a pasted token; a fixture sent to
another service is flagged; a card with feedback folds to its summary and outcome."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from playwright.sync_api import Request, expect

from tests.conftest import LiveServer
from tests.sandbox.conftest import OpenPage, runtime_of
from tests.sandbox.sandbox_page import (
    SCENARIOS,
    assert_inside_and_usable,
    assert_no_horizontal_overflow,
    choose_fixture,
    contains,
    send,
    send_fixture,
    sent_hook_instance,
    unexpected_console_errors,
)

pytestmark = pytest.mark.browser

REFILL = SCENARIOS["refill-overdue"]
TWO_CARDS = SCENARIOS["mixed-refill-overdue-battery-plan"]
ORDER_SELECT = SCENARIOS["candidacy-order-select-draft-reaches-max"]
ISSUER = "https://ehr.example.org"
ADMIN_TOKEN = "admin-secret-that-the-page-must-never-show"


@pytest.fixture
def page_1024(
    web_server: Callable[..., LiveServer], open_page: Callable[[LiveServer, int], OpenPage]
) -> Iterator[OpenPage]:
    """1024 px: the width at which the page used to overflow."""
    opened = open_page(web_server(), 1024)
    yield opened
    assert opened.script_errors == []
    assert unexpected_console_errors(opened.console_errors) == []


def test_auth_off_offers_no_token_field(page_1024: OpenPage) -> None:
    page = page_1024.page
    expect(page.locator("body")).to_have_attribute("data-auth-mode", "off")
    expect(page.locator("#auth-panel")).to_have_count(0)
    expect(page.locator("#bearer-token")).to_have_count(0)


def test_invalid_json_after_a_good_call_clears_its_cards_and_says_why_no_audit(
    page_1024: OpenPage,
) -> None:
    page = page_1024.page
    send_fixture(page, REFILL)
    expect(page.locator("#raw-response")).to_contain_text("HTTP 200")

    page.get_by_label("CDS Hooks request (JSON)").fill("{not json")
    send(page)
    expect(page.locator("#status")).to_contain_text("The request is not valid JSON")
    expect(page.locator("article.card")).to_have_count(0)
    expect(page.locator("#cards")).to_have_text("Nothing was sent, so there are no cards.")
    expect(page.locator("#audit dl")).to_have_count(0)
    expect(page.locator("#audit table")).to_have_count(0)
    expect(page.locator("#audit")).to_have_text(
        "No call was recorded: the request was refused before it reached the service "
        "(invalid JSON).")
    expect(page.locator("#raw-request")).to_be_empty()
    expect(page.locator("#raw-response")).to_be_empty()
    assert_no_horizontal_overflow(page)


def test_a_412_replaces_the_previous_cards_with_its_reasons_and_its_audit_record(
    page_1024: OpenPage, screenshots: Path
) -> None:
    page = page_1024.page
    first = send_fixture(page, REFILL)
    request = json.loads(page.get_by_label("CDS Hooks request (JSON)").input_value())
    del request["prefetch"]  # and no fhirServer: the service cannot get the chart
    page.get_by_label("CDS Hooks request (JSON)").fill(json.dumps(request))
    send(page)

    expect(page.locator("#status")).to_contain_text("HTTP 412 in ")
    expect(page.locator("#status")).to_contain_text("required data could not be obtained")
    expect(page.locator("article.card")).to_have_count(0)
    problem = page.locator("#cards .problem")
    expect(problem).to_contain_text("No cards: the service could not obtain the data its "
                                    "rules need.")
    expect(problem.locator("li", has_text="patient: not prefetched and no fhirServer")) \
        .to_have_count(1)
    # The audit panel shows this call (audited before the 412 left), not the previous one.
    second = sent_hook_instance(page)
    assert second != first
    audit = page.locator("#audit")
    expect(audit.locator("dl")).to_have_count(1)
    expect(audit.locator("dl")).to_contain_text(second)
    expect(audit.locator("dt", has_text="HTTP status").locator("+ dd")).to_have_text("412")
    expect(audit.locator("dt", has_text="Missing data").locator("+ dd")).to_contain_text(
        "patient")
    expect(audit.locator("table")).to_have_count(0)  # no cards, so no feedback table
    assert_no_horizontal_overflow(page)
    page.screenshot(path=str(screenshots / "state-412-1024.png"), full_page=True)


def test_a_fixture_selects_its_service_and_another_service_is_flagged(
    page_1024: OpenPage, screenshots: Path
) -> None:
    page = page_1024.page
    service = page.get_by_label("Service and hook")
    warning = page.locator("#service-warning")
    expected = page.locator("#story-expected-line")

    choose_fixture(page, ORDER_SELECT)
    expect(service).to_have_value("itb-order-select")
    expect(warning).to_be_hidden()
    expect(expected).to_have_text("Expected cards: itb-candidacy candidate (warning)")

    service.select_option("itb-patient-view")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Expected cards will differ")
    expect(warning).to_contain_text("written for itb-order-select")
    expect(expected).to_have_text("Expected cards: none predicted for itb-patient-view (this "
                                  "fixture's cards come from itb-order-select).")
    expect(expected).not_to_contain_text("itb-candidacy")
    send(page)
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    expect(page.locator("#status")).to_contain_text(
        "0 cards. Sent to itb-patient-view, not to itb-order-select: the story's expected "
        "cards do not apply.")
    expect(page.locator("#cards")).to_have_text(
        "No cards from itb-patient-view for this request. The fixture expects its cards from "
        "itb-order-select.")
    page.screenshot(path=str(screenshots / "state-wrong-service-1024.png"), full_page=True)

    service.select_option("itb-order-select")
    expect(warning).to_be_hidden()
    expect(expected).to_have_text("Expected cards: itb-candidacy candidate (warning)")
    send(page)
    expect(page.locator("#status")).to_have_text(contains("HTTP 200"))
    expect(page.locator("article.card[data-rule=itb-candidacy]")).to_have_count(1)


def test_a_card_with_feedback_folds_to_its_summary_and_outcome(
    page_1024: OpenPage, screenshots: Path
) -> None:
    page = page_1024.page
    send_fixture(page, TWO_CARDS)
    dismissed, accepted = page.locator("article.card").nth(0), page.locator("article.card").nth(1)

    reasons = dismissed.get_by_label("Override reason")
    reason = reasons.locator("option").nth(1).text_content() or ""
    reasons.select_option(index=1)
    dismissed.get_by_label("Comment (optional)").fill("Refill booked by phone")
    dismissed.get_by_role("button", name="Dismiss card").click()
    expect(dismissed.locator(".card__outcome")).to_have_text(
        f"Dismissed — reason: {reason} (comment: “Refill booked by phone”)")
    expect(dismissed).to_have_attribute("data-feedback", "overridden")
    expect(dismissed.locator(".card__summary")).to_be_visible()
    for part in (".card__detail", ".card__source", ".card__suggestions", ".card__dismiss"):
        expect(dismissed.locator(part)).to_be_hidden()
    expect(accepted.locator(".card__detail")).to_be_visible()  # the other card is untouched

    toggle = dismissed.get_by_role("button", name="Show card details")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(dismissed.locator(".card__detail")).to_be_visible()
    expect(dismissed.get_by_role("button", name="Dismiss card")).to_be_disabled()
    dismissed.get_by_role("button", name="Hide card details").click()
    expect(dismissed.locator(".card__detail")).to_be_hidden()

    suggestion = accepted.locator("button.suggestion").first
    label = (suggestion.text_content() or "").removesuffix(" (recommended)")
    suggestion.click()
    expect(accepted.locator(".card__outcome")).to_have_text(f"Accepted: {label}")
    expect(accepted).to_have_attribute("data-feedback", "accepted")
    expect(accepted.locator(".card__detail")).to_be_hidden()
    expect(accepted.locator(".card__summary")).to_be_visible()
    expect(page.locator("#audit tbody tr")).to_have_count(2)
    page.screenshot(path=str(screenshots / "state-folded-1024.png"), full_page=True)

    # The next call starts from a clean slate: fresh cards, no feedback rows of the last one.
    send(page)
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    expect(page.locator("article.card")).to_have_count(2)
    expect(page.locator("article.card[data-feedback]")).to_have_count(0)
    expect(page.locator("#audit caption")).to_have_text("Feedback rows (0)")


# --- JWT mode ------------------------------------------------------------------------------


@pytest.fixture
def jwt_server(
    tmp_path: Path, web_server: Callable[..., LiveServer]
) -> tuple[LiveServer, Callable[[str], str]]:
    """The service with auth on, trusting one issuer whose key the test holds; returns a
    signer of one-time tokens for an endpoint path."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "alg": "ES384"}
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": {ISSUER: {"jwks": {"keys": [jwk]}}}}))
    server = web_server(auth_mode="jwt", trust_file=trust, admin_token=ADMIN_TOKEN)

    def token(path: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": ISSUER, "sub": "developer", "aud": server.url + path,
                                  "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})

    return server, token


def test_jwt_mode_explains_the_401_and_sends_a_pasted_token(
    jwt_server: tuple[LiveServer, Callable[[str], str]],
    open_page: Callable[[LiveServer, int], OpenPage],
    screenshots: Path,
) -> None:
    server, token = jwt_server
    opened = open_page(server, 360)
    page = opened.page
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if "/cds-services/" in r.url else None)
    service_path = f"/cds-services/{REFILL.service}"

    # The page learnt the mode from the server and says what a call needs.
    panel = page.locator("#auth-panel")
    expect(panel).to_contain_text("Calls need a signed token")
    expect(panel).to_contain_text("ITB_CDS_AUTH_MODE=off")
    expect(panel).to_contain_text("no token signer")
    assert ADMIN_TOKEN not in page.content()

    choose_fixture(page, REFILL)
    expect(page.locator("#token-aud")).to_have_text(server.url + service_path)
    send(page)  # no token pasted
    expect(page.locator("#status")).to_contain_text("HTTP 401")
    expect(page.locator("#status")).to_contain_text("auth mode jwt")
    problem = page.locator("#cards .problem")
    expect(problem).to_contain_text("Paste a bearer token")
    expect(problem).to_contain_text(f"aud must be {server.url}{service_path}")
    expect(problem).to_contain_text("ITB_CDS_AUTH_MODE=off")
    expect(page.locator("#audit")).to_have_text(
        "No call was recorded: the service refused the request before running it "
        "(HTTP 401: no valid bearer token).")
    assert_no_horizontal_overflow(page)
    page.screenshot(path=str(screenshots / "state-jwt-401-360.png"), full_page=True)
    assert sent[-1].headers.get("authorization") is None

    # A pasted token goes in the Authorization header, nowhere else, and is then forgotten.
    call_token = token(service_path)
    page.get_by_label("Bearer token (JWT) for the next call").fill(call_token)
    send(page)
    expect(page.locator("#status")).to_contain_text("HTTP 200")
    expect(page.locator("article.card")).to_have_count(1)
    # A signed call's audit record is not the page's to show (a real client's looks the same).
    expect(page.locator("#audit")).to_contain_text("Not shown for a call sent with a token")
    expect(page.locator("#audit dl")).to_have_count(0)
    assert sent[-1].url.endswith(service_path)
    assert sent[-1].headers["authorization"] == f"Bearer {call_token}"
    expect(page.get_by_label("Bearer token (JWT) for the next call")).to_have_value("")
    expect(page.locator("#token-state")).to_contain_text("sent and forgotten")
    expect(page.locator("#raw-request")).to_contain_text("Authorization: Bearer (token hidden")
    assert call_token not in page.content()
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0

    # Feedback is another endpoint: it needs its own token, and the page says so.
    card = page.locator("article.card").first
    suggestion = card.locator("button.suggestion").first
    suggestion.click()
    expect(card.locator(".card__outcome")).to_contain_text(
        f"Feedback refused: HTTP 401. Feedback needs its own bearer token, with aud "
        f"{server.url}{service_path}/feedback")
    assert_inside_and_usable(page, suggestion)  # still there to try again

    page.get_by_label("Bearer token (JWT) for the next call").fill(
        token(service_path + "/feedback"))
    suggestion.click()
    expect(card.locator(".card__outcome")).to_contain_text("Accepted: ")
    expect(page.locator("#audit")).to_contain_text("Not shown for a call sent with a token")
    hook_instance = sent_hook_instance(page)
    (row,) = runtime_of(server).store.feedback_for(hook_instance)
    assert row.outcome == "accepted"
    assert_no_horizontal_overflow(page)
    assert opened.script_errors == []
    assert unexpected_console_errors(opened.console_errors) == []
