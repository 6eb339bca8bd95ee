"""Exports: every resource is valid FHIR R4 (R4B models); CSV opens in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.guidanceresponse import GuidanceResponse
from typer.testing import CliRunner

from cds_service.audit.cli import audit_app
from cds_service.audit.models import CallRecord, ClientIdentity, FeedbackRecord, QueryRecord
from cds_service.audit.store import AuditStore

MakeCall = Callable[..., CallRecord]
MODELS = {"AuditEvent": AuditEvent, "GuidanceResponse": GuidanceResponse}


@pytest.fixture
def varied_log(store: AuditStore, make_call: MakeCall) -> AuditStore:
    ok = make_call(0, queries=[QueryRecord(key="devices", url="https://ehr/fhir/Device?patient=1",
                                           status=200, latency_ms=12.5, pages=2)])
    store.record_call(ok)
    store.record_call(make_call(1, hook_instance="not-a-uuid", cards=[], findings=[],
                                client=ClientIdentity(), user_id=None, encounter_id=None))
    store.record_call(make_call(2, http_status=412, cards=[], error="prefetch unobtainable"))
    store.record_call(make_call(3, http_status=500, cards=[], error="=1+2 internal error"))
    store.record_feedback("itb-patient-view", [
        FeedbackRecord(card_uuid=ok.cards[0].uuid, outcome="overridden",
                       outcome_timestamp=ok.answered_at, override_reason_code="other",
                       override_reason_system="urn:itb-cds:override", user_comment="=cmd"),
        FeedbackRecord(card_uuid="unknown", outcome="accepted",
                       outcome_timestamp=ok.answered_at),
    ])
    return store


def test_every_exported_resource_validates_as_fhir_r4(varied_log: AuditStore) -> None:
    resources = list(varied_log.export_fhir())

    kinds = [r["resourceType"] for r in resources]
    assert kinds.count("AuditEvent") == 6 and kinds.count("GuidanceResponse") == 4
    for resource in resources:
        MODELS[resource["resourceType"]].model_validate(resource)


def test_the_audit_event_names_patient_client_user_and_service(varied_log: AuditStore) -> None:
    event = next(varied_log.export_fhir())

    assert event["action"] == "E" and event["outcome"] == "0"
    assert {"Patient/pat-0"} <= {e["what"].get("reference") for e in event["entity"]
                                 if "what" in e}
    whos = [a["who"] for a in event["agent"]]
    assert {"system": "https://sandbox.cds-hooks.org", "value": "sandbox"} in [
        w.get("identifier") for w in whos]
    assert {"reference": "Practitioner/dr-1"} in whos
    assert event["source"]["observer"]["identifier"]["value"] == "itb-patient-view"


def test_guidance_response_status_follows_the_http_status(varied_log: AuditStore) -> None:
    statuses = [r["status"] for r in varied_log.export_fhir()
                if r["resourceType"] == "GuidanceResponse"]

    assert statuses == ["success", "success", "data-required", "failure"]


def test_since_and_until_select_by_time(varied_log: AuditStore) -> None:
    since = datetime(2025, 3, 1, 9, 1, tzinfo=UTC)
    until = datetime(2025, 3, 1, 9, 3, tzinfo=UTC)

    ids = [r["id"] for r in varied_log.export_fhir(since, until)
           if r["resourceType"] == "GuidanceResponse"]

    assert ids == ["gr-not-a-uuid", ids[1]] and len(ids) == 2


def test_csv_has_one_row_per_entry_and_neutralises_formulas(varied_log: AuditStore) -> None:
    rows = list(csv.DictReader(io.StringIO("".join(varied_log.export_csv()))))

    assert [r["kind"] for r in rows] == ["call"] * 4 + ["feedback"] * 2
    assert rows[0]["cards"] == "[warning] Pump refill due in 5 days"
    assert rows[5]["unknown_card"] == "true"
    assert rows[3]["error"] == "'=1+2 internal error"


def test_cli_export_writes_valid_ndjson(varied_log: AuditStore, database_url: str,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITB_CDS_SPOOL_PATH", str(tmp_path / "cli.spool"))
    out = tmp_path / "audit.ndjson"

    result = CliRunner().invoke(audit_app, ["export", "--format", "fhir", "--since",
                                            "2025-03-01", "-o", str(out),
                                            "--database-url", database_url])

    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10
    for line in lines:
        resource = json.loads(line)
        MODELS[resource["resourceType"]].model_validate(resource)


def test_cli_report_prints_rules_and_outcomes(varied_log: AuditStore, database_url: str,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITB_CDS_SPOOL_PATH", str(tmp_path / "cli.spool"))

    table = CliRunner().invoke(audit_app, ["report", "--database-url", database_url])
    as_json = CliRunner().invoke(audit_app, ["report", "--json", "--database-url",
                                             database_url])

    assert table.exit_code == 0, table.output
    assert "itb-refill" in table.output and "override: other: 1" in table.output
    assert json.loads(as_json.output)["rows"][0]["overridden"] == 1
