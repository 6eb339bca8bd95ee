"""Feedback checked against the card it names, over real HTTP (issue 18, acceptance 1).

Each way feedback can fail to fit its card is stored (in the chain, hashed with its flags),
answered with its flag, and counted apart in the audit report and the governance dashboard;
feedback that fits is answered exactly as before.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cds_service.audit.store import AuditStore
from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import load_scenario
from tests.conftest import LiveServer, make_settings

SCENARIO = load_scenario(PROJECT_ROOT / "fixtures" / "refill" / "refill-overdue.json")
ADMIN = "admin-token-for-the-feedback-flag-tests"
WHEN = "2026-06-15T09:05:00Z"


@pytest.fixture
def service(live_app_factory: Callable[..., LiveServer], tmp_path: Path
            ) -> Iterator[tuple[httpx.Client, dict[str, Any], AuditStore]]:
    """The live service, one card it showed on patient-view, and the audit store behind it."""
    server = live_app_factory(clock=lambda: SCENARIO.anchor, admin_token=ADMIN)
    body = copy.deepcopy(SCENARIO.request)
    body["hookInstance"] = str(uuid.uuid4())
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post(f"/cds-services/{SCENARIO.service}", json=body)
        assert answer.status_code == 200, answer.text
        [card] = [c for c in answer.json()["cards"] if c.get("suggestions")][:1]
        store = AuditStore(make_settings(tmp_path))
        try:
            yield http, card, store
        finally:
            store.close()


def post(http: httpx.Client, items: list[dict[str, Any]], service: str = SCENARIO.service
         ) -> httpx.Response:
    return http.post(f"/cds-services/{service}/feedback", json={"feedback": items})


def accepted(card: dict[str, Any], *suggestions: str, at: str = WHEN) -> dict[str, Any]:
    return {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": at,
            "acceptedSuggestions": [{"id": s} for s in suggestions]}


def overridden(card: dict[str, Any], code: str, at: str = WHEN) -> dict[str, Any]:
    # The system the card gives that code (HL7's or the local one); the local one otherwise.
    system = next((r["system"] for r in card.get("overrideReasons", []) if r["code"] == code),
                  "urn:itb-cds:codes")
    return {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": at,
            "overrideReason": {"reason": {"system": system, "code": code,
                                          "display": code}, "userComment": "n/a"}}


def test_feedback_that_fits_its_card_is_answered_and_stored_as_before(service: Any) -> None:
    http, card, store = service
    offered = card["overrideReasons"][0]["code"]

    taken = post(http, [accepted(card, card["suggestions"][0]["uuid"])])
    declined = post(http, [overridden(card, offered, at="2026-06-15T09:06:00Z")])

    # Byte for byte the answer of before the checks: no flags field when nothing is flagged.
    assert taken.content == b'{"spooled":0,"stored":1,"duplicates":0,"unknownCards":0}'
    assert declined.content == taken.content
    assert [s.flags for s in store.stored_feedback()] == [[], []]
    with store.engine.connect() as conn:
        bodies = [json.loads(b) for b in conn.execute(text(
            "SELECT body FROM audit_entry WHERE kind = 'feedback' ORDER BY seq")).scalars()]
    assert all("flags" not in b["payload"] for b in bodies)


@pytest.mark.parametrize(("flag", "make", "to_service"), [
    ("reason-not-offered", lambda card: overridden(card, "bogus"), SCENARIO.service),
    ("other-service", lambda card: accepted(card), "itb-order-sign"),
    ("suggestion-not-on-card", lambda card: accepted(card, str(uuid.uuid4())),
     SCENARIO.service),
    ("unknown-card", lambda card: accepted({"uuid": str(uuid.uuid4())}), SCENARIO.service),
])
def test_feedback_that_does_not_fit_is_stored_flagged_answered_and_counted_apart(
        service: Any, flag: str, make: Callable[[dict[str, Any]], dict[str, Any]],
        to_service: str) -> None:
    http, card, store = service
    fits = accepted(card, card["suggestions"][0]["uuid"], at="2026-06-15T09:01:00Z")
    misfit = make(card)

    answer = post(http, [fits, misfit], service=to_service)
    retried = post(http, [misfit], service=to_service)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stored"] == 2 and body["unknownCards"] == (1 if flag == "unknown-card" else 0)
    # The first item (the one sent to its own service) fits unless this case moved the post.
    expected = [{"index": 1, "card": misfit["card"], "flags": [flag]}]
    if to_service != SCENARIO.service:
        expected.insert(0, {"index": 0, "card": card["uuid"], "flags": [flag]})
    assert body["flags"] == expected
    assert retried.json()["duplicates"] == 1
    assert retried.json()["flags"] == [{"index": 0, "card": misfit["card"], "flags": [flag]}]

    stored = {s.record.card_uuid + s.record.outcome + str(s.record.outcome_timestamp): s
              for s in store.stored_feedback()}
    assert len(stored) == 2 and [flag] in [s.flags for s in stored.values()]
    assert store.verify().ok  # stored in the chain, flags hashed with the entry

    headers = {"Authorization": f"Bearer {ADMIN}"}
    report = http.get("/admin/audit/report", headers=headers).json()
    dashboard = http.get("/admin/governance.json", headers=headers).json()
    flagged = len(expected)
    assert report["flagged_feedback"] == {flag: flagged}
    assert sum(r["accepted"] + r["overridden"] for r in report["rows"]) == 2 - flagged
    assert dashboard["totals"]["flagged_feedback"] == {"total": flagged,
                                                      "by_flag": {flag: flagged}}
    cards = dashboard["totals"]["cards"]
    assert cards["accepted"] + cards["overridden"] == 2 - flagged
