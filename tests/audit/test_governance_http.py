"""/admin/governance, .json and .csv: the admin token, bad input refused with an
OperationOutcome, one slice three ways; ``itb-cds audit report --html`` writes the same page."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cds_service.api.admin import AdminGate
from cds_service.api.governance import governance_router
from cds_service.audit.cli import audit_app
from cds_service.audit.measures import Governance, GovernanceQuery
from cds_service.audit.store import AuditStore
from cds_service.config import Settings
from tests.audit.governance_log import load, make_log
from tests.audit.governance_oracle import brute_force

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
LOG = make_log(1_500, 200, seed=7)
PATHS = ("/admin/governance", "/admin/governance.json", "/admin/governance.csv")


@pytest.fixture
def client(store: AuditStore, settings: Settings) -> TestClient:
    load(store, LOG)
    app = FastAPI()
    app.include_router(governance_router(store, settings, AdminGate(settings)))
    return TestClient(app)


def _auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token}"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic YWRtaW46YWRtaW4="])
def test_without_the_admin_token_nothing_is_shown(client: TestClient, header: str | None
                                                  ) -> None:
    for path in PATHS:
        response = client.get(path, headers={"Authorization": header} if header else {})
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"


def test_unconfigured_the_dashboard_is_404(store: AuditStore, settings: Settings) -> None:
    app = FastAPI()
    unconfigured = settings.model_copy(update={"admin_token": None})
    app.include_router(governance_router(store, unconfigured, AdminGate(unconfigured)))
    with TestClient(app) as client:
        assert client.get("/admin/governance", headers={"Authorization": "Bearer x"}
                          ).status_code == 404


@pytest.mark.parametrize(("params", "says"), [
    ({"period": "year"}, "period"),
    ({"since": "last tuesday"}, "since"),
    ({"since": "2025-03-01", "until": "2025-03-01"}, "until: must be after since"),
    ({"service": "<script>"}, "service: not a service"),
    ({"rule": "x" * 200}, "rule"),
    ({"period": "day", "since": "2020-01-01", "until": "2025-01-01"}, "more than 400 days"),
    ({"period": "day"}, None),  # the log's 182 days fit
])
def test_bad_input_gets_a_400_operation_outcome_naming_it(
        client: TestClient, settings: Settings, params: dict[str, str], says: str | None
) -> None:
    for path in PATHS:
        response = client.get(path, params=params, headers=_auth(settings))
        if says is None:
            assert response.status_code == 200
            continue
        assert response.status_code == 400, (path, params)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert says in outcome["issue"][0]["diagnostics"]


def test_the_page_json_and_csv_carry_the_same_slice(client: TestClient, settings: Settings
                                                    ) -> None:
    params = {"period": "month", "service": "itb-patient-view"}
    page = client.get("/admin/governance", params=params, headers=_auth(settings))
    data = client.get("/admin/governance.json", params=params, headers=_auth(settings))
    table = client.get("/admin/governance.csv", params=params, headers=_auth(settings))

    got = Governance.model_validate(data.json())
    want = brute_force(LOG, GovernanceQuery.model_validate(params))
    assert got.model_dump(exclude={"generated_at"}) == want.model_dump(exclude={"generated_at"})
    # Nothing the page needs may come from elsewhere.
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.text.count('<figure class="chart"') == 4 and "<script" not in page.text
    assert f"{got.totals.calls.calls:,}" in page.text
    rows = list(csv.DictReader(io.StringIO(table.text)))
    cell = {(r["section"], r["period"], r["measure"]): r["value"] for r in rows}
    assert cell[("total", "all", "calls.calls")] == str(got.totals.calls.calls)
    first = got.periods[0]
    assert cell[("period", first.period, "cards.overridden")] == str(first.cards.overridden)
    assert table.headers["content-type"].startswith("text/csv")


def test_report_html_writes_the_dashboard_to_a_file(
        store: AuditStore, database_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    load(store, LOG)
    monkeypatch.setenv("ITB_CDS_SPOOL_PATH", str(tmp_path / "cli.spool"))
    target = tmp_path / "minutes" / "governance.html"
    target.parent.mkdir()

    result = CliRunner().invoke(audit_app, ["report", "--html", str(target), "--period",
                                            "month", "--database-url", database_url])
    refused = CliRunner().invoke(audit_app, ["report", "--html", str(target), "--period",
                                             "year", "--database-url", database_url])

    assert result.exit_code == 0, result.output
    page = target.read_text(encoding="utf-8")
    assert page.count('<figure class="chart"') == 4 and "<script" not in page
    assert "Monthly periods" in page and "governance.json" not in page  # no links in a file
    assert refused.exit_code != 0 and "--period" in refused.output
