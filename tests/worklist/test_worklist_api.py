"""GET /worklist: off until configured; the admin token reads any panel, a clinic token its
own; the page and the files are the CLI's; bad input is a clear OperationOutcome; no token is
ever echoed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.panel import ANCHOR, GROUP_ID
from cds_service.app import create_app
from cds_service.worklist import Panel
from tests.conftest import make_settings
from tests.worklist.conftest import TOKEN

ADMIN = "admin-token-worklist-31c9-" + "a" * 24  # at least 32 characters
CLINIC = "clinic-token-panel-84d2"
OTHER_CLINIC = "clinic-token-other-1b77"
SECRETS = (ADMIN, CLINIC, OTHER_CLINIC, TOKEN)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api(panel_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path_factory.mktemp("worklist-api"), admin_token=ADMIN,
        admin_failure_delay_seconds=0,
        worklist={"fhir_server": panel_url, "fhir_token": TOKEN,
                  "clinic_tokens": {GROUP_ID: CLINIC, "other": OTHER_CLINIC}})
    with TestClient(create_app(settings, clock=lambda: ANCHOR)) as client:
        yield client


def test_off_unless_configured(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, admin_token=ADMIN))) as client:
        response = client.get("/worklist", headers=bearer(ADMIN))
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("headers", [{}, bearer("not-a-token"), {"Authorization": ADMIN}])
def test_no_valid_token_is_401(api: TestClient, headers: dict[str, str]) -> None:
    response = api.get("/worklist", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_tokens_here_count_against_the_admin_budget(
        panel_url: str, tmp_path: Path) -> None:
    """The worklist takes the admin token too: guessing it here is throttled as at /admin."""
    settings = make_settings(
        tmp_path, admin_token=ADMIN, admin_failure_delay_seconds=0,
        admin_failures_per_minute=2, worklist={"fhir_server": panel_url, "fhir_token": TOKEN})
    with TestClient(create_app(settings, clock=lambda: ANCHOR)) as client:
        guesses = [client.get("/worklist", headers=bearer(f"guess-{i}")).status_code
                   for i in range(3)]
        admin = client.get("/admin/audit/verify", headers=bearer("guess-admin"))
    assert guesses == [401, 401, 429]
    assert admin.status_code == 429


def test_a_clinic_token_reads_its_own_panel_as_a_self_contained_page(
        api: TestClient, exported: Panel) -> None:
    response = api.get("/worklist", headers=bearer(CLINIC))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert "<svg" in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"',
                                                            "")
    assert all(row.patient in page for row in exported.rows)
    assert not any(secret in page for secret in SECRETS)


def test_a_clinic_token_cannot_read_another_panel(api: TestClient) -> None:
    response = api.get("/worklist", params={"group": "other"}, headers=bearer(CLINIC))
    assert response.status_code == 403
    unknown = api.get("/worklist", headers=bearer(OTHER_CLINIC))  # no such Group on the server
    assert unknown.status_code == 502
    assert "could not be read" in unknown.json()["issue"][0]["diagnostics"]


def test_the_admin_token_gets_the_files(api: TestClient, exported: Panel) -> None:
    rows = api.get("/worklist", params={"format": "json", "group": GROUP_ID},
                   headers=bearer(ADMIN))
    assert rows.status_code == 200
    assert rows.json() == [r.model_dump(mode="json") for r in exported.rows]
    everyone = api.get("/worklist", params={"format": "json"}, headers=bearer(ADMIN))
    assert everyone.json() == rows.json()  # every pump owner by Device search: the same
    feed = api.get("/worklist", params={"format": "ics", "group": GROUP_ID},
                   headers=bearer(ADMIN))
    assert feed.headers["content-type"].startswith("text/calendar")
    assert feed.headers["content-disposition"] == (
        'attachment; filename="itb-worklist-2026-06-15.ics"')
    assert feed.text.startswith("BEGIN:VCALENDAR")


@pytest.mark.parametrize(("params", "message"), [
    ({"format": "pdf"}, "format"), ({"at": "yesterday"}, "at"), ({"group": "../x"}, "group")])
def test_bad_input_is_a_clear_operation_outcome(api: TestClient, params: dict[str, str],
                                                message: str) -> None:
    response = api.get("/worklist", params=params, headers=bearer(ADMIN))
    assert response.status_code == 400
    diagnostics = response.json()["issue"][0]["diagnostics"]
    assert message in diagnostics
    assert not any(secret in response.text for secret in SECRETS)
