"""GET /admin/audit/report and /verify: admin bearer token, OperationOutcome on refusal."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from cds_service.api.admin import AdminGate, admin_router
from cds_service.audit.models import CallRecord
from cds_service.audit.store import AuditStore
from cds_service.config import Settings

MakeCall = Callable[..., CallRecord]
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _client(store: AuditStore, settings: Settings) -> TestClient:
    app = FastAPI()
    app.include_router(admin_router(store, settings, AdminGate(settings)))
    return TestClient(app)


def _auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.admin_token}"}


def test_the_report_is_served_as_json_to_the_admin(store: AuditStore, settings: Settings,
                                                   make_call: MakeCall) -> None:
    store.record_call(make_call(0))
    store.record_call(make_call(5))

    with _client(store, settings) as client:
        everything = client.get("/admin/audit/report", headers=_auth(settings))
        later = client.get("/admin/audit/report", params={"since": "2025-03-01T09:03:00Z"},
                           headers=_auth(settings))

    assert everything.status_code == 200
    assert everything.json()["rows"][0]["shown"] == 2
    assert later.json()["calls"] == 1


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic YWRtaW46YWRtaW4=", "Bearer"])
def test_a_missing_or_wrong_token_gets_401_operation_outcome(
        store: AuditStore, settings: Settings, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with _client(store, settings) as client:
        for path in ("/admin/audit/report", "/admin/audit/verify"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json()["resourceType"] == "OperationOutcome"
            assert response.headers["www-authenticate"] == "Bearer"


def test_without_a_configured_admin_token_the_endpoints_are_404(
        store: AuditStore, settings: Settings) -> None:
    unconfigured = settings.model_copy(update={"admin_token": None})
    with _client(store, unconfigured) as client:
        response = client.get("/admin/audit/report", headers={"Authorization": "Bearer x"})

    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_verify_answers_409_with_the_broken_link(store: AuditStore, settings: Settings,
                                                 make_call: MakeCall) -> None:
    for n in range(3):
        store.record_call(make_call(n))
    with _client(store, settings) as client:
        intact = client.get("/admin/audit/verify", headers=_auth(settings))
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_entry SET body = body || ' ' WHERE seq = 2"))
        broken = client.get("/admin/audit/verify", headers=_auth(settings))

    assert intact.status_code == 200 and intact.json()["ok"] is True
    assert broken.status_code == 409
    assert broken.json()["first_broken_seq"] == 2


def test_a_bad_since_is_a_400(store: AuditStore, settings: Settings) -> None:
    with _client(store, settings) as client:
        response = client.get("/admin/audit/report", params={"since": "yesterday"},
                              headers=_auth(settings))
    assert response.status_code == 400
