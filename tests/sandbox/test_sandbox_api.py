"""The sandbox page's helpers: fixtures shifted to the service's today, safe markdown, the
audit trail of a call about a fixture patient, and the page's security headers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import load_scenarios, shifted_request
from tests.conftest import FIXED_NOW, LiveServer

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")
Live = tuple[LiveServer, httpx.Client]


def test_fixtures_are_listed_with_their_story_family_and_expected_cards(live_web: Live) -> None:
    _, http = live_web
    listed = http.get("/sandbox/api/fixtures").json()["fixtures"]
    assert {f["id"] for f in listed} == {s.id for s in SCENARIOS}
    refill = next(f for f in listed if f["id"] == "refill-overdue")
    assert refill["family"] == "refill"
    assert refill["story"]
    assert refill["expected"] == [
        {"rule": "itb-refill", "outcome": "overdue", "indicator": "critical"}
    ]
    families = [f["family"] for f in listed]
    assert families == sorted(families, key=["candidacy", "trial", "refill", "battery",
                                             "data-quality", "mixed", "scheduling"].index)


def test_a_fixture_request_is_shifted_to_the_service_clock(live_web: Live) -> None:
    _, http = live_web
    scenario = next(s for s in SCENARIOS if s.id == "refill-overdue")
    response = http.get(f"/sandbox/api/fixtures/{scenario.id}/request")
    assert response.status_code == 200
    assert response.json() == shifted_request(scenario, FIXED_NOW)
    assert http.get("/sandbox/api/fixtures/no-such-fixture/request").status_code == 404


def test_the_page_lists_fixtures_by_family_under_a_strict_csp(live_web: Live) -> None:
    _, http = live_web
    page = http.get("/sandbox")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert '<optgroup label="refill">' in page.text
    assert "<script>" not in page.text  # no inline script: the CSP would block it anyway
    script = http.get("/sandbox/static/sandbox.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert http.get("/sandbox/static/../app.py").status_code == 404
    assert http.get("/sandbox/static/sandbox.html").status_code == 404


def test_markdown_is_rendered_without_raw_html_or_script_links(live_web: Live) -> None:
    _, http = live_web
    response = http.post(
        "/sandbox/api/markdown",
        json={"markdown": [
            "**Refill** due <script>alert(1)</script> <img src=x onerror=alert(1)>",
            "[label](javascript:alert(1)) and [source](https://example.org/label)",
        ]},
    )
    assert response.status_code == 200
    first, second = response.json()["html"]
    assert "<strong>Refill</strong>" in first
    assert "<script>" not in first and "<img" not in first
    assert "&lt;script&gt;" in first
    assert 'href="javascript:' not in second
    assert 'href="https://example.org/label"' in second
    assert 'rel="noopener noreferrer"' in second
    assert http.post("/sandbox/api/markdown", json={"markdown": "x"}).status_code == 400


def test_the_audit_trail_shows_the_call_and_its_feedback_rows(live_web: Live) -> None:
    _, http = live_web
    scenario = next(s for s in SCENARIOS if s.id == "refill-overdue")
    request = shifted_request(scenario, FIXED_NOW)
    request["hookInstance"] = str(uuid.uuid4())
    cards = http.post(f"/cds-services/{scenario.service}", json=request).json()["cards"]
    card = cards[0]
    feedback = {
        "feedback": [{
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": card["overrideReasons"][0], "userComment": "seen"},
            "outcomeTimestamp": datetime.now(UTC).isoformat(),
        }]
    }
    assert http.post(f"/cds-services/{scenario.service}/feedback", json=feedback).status_code == 200

    trail = http.get(f"/sandbox/api/audit/{request['hookInstance']}").json()
    (call,) = trail["calls"]
    assert call["hook_instance"] == request["hookInstance"]
    assert [c["uuid"] for c in call["cards"]] == [c["uuid"] for c in cards]
    (row,) = trail["feedback"]
    assert row["outcome"] == "overridden"
    assert row["override_reason_code"] == card["overrideReasons"][0]["code"]
    assert row["user_comment"] == "seen"


def test_the_audit_trail_of_a_call_about_a_real_chart_is_not_shown(live_web: Live) -> None:
    _, http = live_web
    scenario = next(s for s in SCENARIOS if s.id == "refill-overdue")
    request = shifted_request(scenario, FIXED_NOW)
    request["hookInstance"] = str(uuid.uuid4())
    request["context"]["patientId"] = "a-real-patient"
    http.post(f"/cds-services/{scenario.service}", json=request)
    assert http.get(f"/sandbox/api/audit/{request['hookInstance']}").status_code == 404
    assert http.get(f"/sandbox/api/audit/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize("path", ["/sandbox", "/sandbox/api/fixtures", "/fhir/metadata"])
def test_an_empty_fixtures_folder_gives_an_empty_sandbox(
    web_server: Callable[..., LiveServer], tmp_path: Path, path: str
) -> None:
    server = web_server(fixtures_dir=tmp_path / "none")
    response = httpx.get(server.url + path)
    assert response.status_code == 200
