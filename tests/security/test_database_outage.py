"""Acceptance 6, with the real thing: PostgreSQL started here, the production command with two
workers, JWT auth. While the database is stopped the calls still answer 200 (the replay cache
degrades to one per worker, the audit records spool) and /ready says degraded and why; after
the restart the spool is replayed and the keyed chain verifies with every record in it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cds_service.audit.store import AuditStore
from cds_service.config import PROJECT_ROOT, Settings
from tests.pg import PostgresServer, postgres_server
from tests.security.conftest import Service, production_env, sign

FIXTURE = PROJECT_ROOT / "fixtures" / "refill" / "refill-overdue.json"
PATH = "/cds-services/itb-patient-view"


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    yield from postgres_server()  # its own server: this module stops and starts it


def call_body() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE.read_text())["request"]
    body["hookInstance"] = str(uuid.uuid4())
    return body


@pytest.mark.postgres
def test_jwt_calls_answer_through_a_database_outage_and_nothing_is_lost(
        tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey,
        serve: Callable[..., Service], pg_server: PostgresServer) -> None:
    url = pg_server.create_database()
    env = production_env(tmp_path, signing_key, ITB_CDS_DATABASE_URL=url)
    service = serve(env, workers=2)
    made: list[str] = []
    # One kept-alive connection: every call, replay and /ready goes to the same worker.
    with httpx.Client(base_url=service.url, timeout=60) as http:
        def call(headers: dict[str, str] | None = None) -> httpx.Response:
            body = call_body()
            response = http.post(PATH, json=body, headers=headers or sign(signing_key, PATH))
            if response.status_code == 200:
                made.append(body["hookInstance"])
            return response

        assert [call().status_code for _ in range(5)] == [200] * 5
        pg_server.stop()
        try:
            during = [call().status_code for _ in range(8)]
            replayed = sign(signing_key, PATH)
            assert call(replayed).status_code == 200
            assert call(replayed).status_code == 401  # this worker still refuses a replay
            ready = http.get("/ready")
            spooled = (tmp_path / "audit.spool").read_text().splitlines()
        finally:
            pg_server.start()
        after = call()
        ready_after = http.get("/ready")

    print(f"\ndatabase stopped: {during} (+1 replay refused); /ready {ready.status_code} "
          f"{ready.json()['degraded']}; {len(spooled)} records spooled")
    assert during == [200] * 8
    assert ready.status_code == 503 and ready.json()["status"] == "degraded"
    reasons = " ".join(ready.json()["degraded"])
    assert "audit database unreachable" in reasons and "JWT replay cache is per worker" in reasons
    assert len(spooled) == 9
    assert after.status_code == 200  # its write replays the spool first
    assert ready_after.json()["status"] == "ready", ready_after.text

    cli = subprocess.run([sys.executable, "-m", "cds_service.cli", "audit", "verify"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "spool: 0 record(s)" in cli.stdout
    store = AuditStore(Settings(database_url=url, spool_path=tmp_path / "audit.spool",
                                audit_hmac_key_file=Path(env["ITB_CDS_AUDIT_HMAC_KEY_FILE"])))
    try:
        stored = [record.hook_instance for _, record in store.calls()]
        result = store.verify()
    finally:
        store.close()
    assert stored == made  # every call, in order, none twice
    assert result.ok and result.keyed == result.checked
    print(cli.stdout.strip())

