"""No access token reaches the database or the spool, whatever the inputs carried."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from cds_service.audit.models import CallRecord, QueryRecord
from cds_service.audit.store import AuditStore
from cds_service.config import Settings
from tests.pg import PostgresServer

MakeCall = Callable[..., CallRecord]
ACCESS_TOKEN = "tok-7f3a9c1e5b-SECRET"
JWT = "eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJzZWNyZXQifQ.c2lnbmF0dXJlLVNFQ1JFVA"


def _tokenised_call(make_call: MakeCall) -> CallRecord:
    return make_call(
        fhir_server=f"https://user:{ACCESS_TOKEN}@ehr.example/fhir",
        queries=[
            QueryRecord(key="devices", status=200,
                        url=f"https://ehr.example/fhir/Device?patient=1&access_token={ACCESS_TOKEN}"),
            QueryRecord(key="conditions", status=401, url="https://ehr.example/fhir/Condition",
                        error=f"401 for request with Authorization: Bearer {ACCESS_TOKEN}"),
        ],
        error=f"upstream rejected token {JWT}",
    )


def _database_text(store: AuditStore, settings: Settings, backend: str,
                   request: pytest.FixtureRequest) -> bytes:
    if backend == "sqlite":
        db = Path(settings.database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in db.parent.iterdir())
    server: PostgresServer = request.getfixturevalue("pg")
    dump = shutil.which("pg_dump", path=str(server.bin_dir))
    if dump is not None:
        return subprocess.run([dump, "-h", str(server.socket_dir), "-U", "postgres",
                               store.url.database or ""],
                              check=True, capture_output=True).stdout
    with store.engine.begin() as conn:  # no pg_dump: every text column of every table
        return "\n".join(str(tuple(r)) for table in ("audit_entry", "audit_card", "jwt_replay")
                         for r in conn.execute(text(f"SELECT * FROM {table}"))).encode()


def test_tokens_in_the_inputs_never_reach_the_database(
        store: AuditStore, settings: Settings, make_call: MakeCall, backend: str,
        request: pytest.FixtureRequest) -> None:
    call = _tokenised_call(make_call)
    store.record_call(call)

    stored = _database_text(store, settings, backend, request)

    assert b"ehr.example/fhir/Device?patient=1" in stored  # the query itself is kept
    assert ACCESS_TOKEN.encode() not in stored
    assert JWT.encode() not in stored


def test_tokens_never_reach_the_spool(settings: Settings, make_call: MakeCall,
                                      tmp_path: Path) -> None:
    unreachable = settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'missing-dir' / 'audit.sqlite'}"})
    store = AuditStore(unreachable)

    store.record_call(_tokenised_call(make_call))

    spooled = unreachable.spool_path.read_bytes()
    assert b"ehr.example" in spooled
    assert ACCESS_TOKEN.encode() not in spooled
    assert JWT.encode() not in spooled
    store.close()
