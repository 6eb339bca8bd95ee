"""Fixtures for the audit tests: one store per test, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cds_service.audit.models import CallRecord, CardRecord, ClientIdentity, FindingRecord
from cds_service.audit.store import AuditStore
from cds_service.config import Settings
from tests.pg import PostgresServer, postgres_server

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    yield from postgres_server()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        (tmp_path / "db").mkdir()
        return f"sqlite:///{tmp_path / 'db' / 'audit.sqlite'}"
    server: PostgresServer = request.getfixturevalue("pg")
    return server.create_database()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        spool_path=tmp_path / "spool" / "audit.spool",
        admin_token="admin-secret-for-tests",
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[AuditStore]:
    audit = AuditStore(settings)
    audit.migrate()
    yield audit
    audit.close()


MakeCall = Callable[..., CallRecord]


@pytest.fixture
def make_call() -> MakeCall:
    """A realistic call record; keyword arguments override fields."""

    def build(n: int = 0, **overrides: object) -> CallRecord:
        hook_instance = str(overrides.pop("hook_instance", uuid.uuid4()))
        received = T0 + timedelta(minutes=n)
        fields: dict[str, object] = {
            "hook_instance": hook_instance,
            "service_id": "itb-patient-view",
            "hook": "patient-view",
            "received_at": received,
            "answered_at": received + timedelta(milliseconds=140),
            "http_status": 200,
            "client": ClientIdentity(iss="https://sandbox.cds-hooks.org", sub="sandbox",
                                     tenant="ward-7"),
            "user_id": "Practitioner/dr-1",
            "patient_id": f"pat-{n % 5}",
            "encounter_id": "enc-1",
            "prefetch_supplied": ["patient", "conditions"],
            "prefetch_fetched": ["devices"],
            "prefetch_missing": ["appointments"],
            "prefetch_sha256": {"patient": "ab" * 32},
            "findings": [FindingRecord(rule="itb-refill", rule_version="1.0.0",
                                       outcome="refill-due-soon", tier="warning",
                                       evidence_refs=["Device/pump-1"],
                                       numbers={"daysToAlarm": 5, "volumeMl": 3.5})],
            "cards": [CardRecord(uuid=str(uuid.uuid4()), summary="Pump refill due in 5 days",
                                 indicator="warning", rule="itb-refill",
                                 outcome="refill-due-soon",
                                 suggestion_uuids=[str(uuid.uuid4())])],
            "catalogue_version": "2025.03",
            "rule_versions": {"itb-refill": "1.0.0"},
            "value_set_versions": {"baclofen": "1"},
            "thresholds": Settings().thresholds(),
        }
        fields.update(overrides)
        return CallRecord.model_validate(fields)

    return build
