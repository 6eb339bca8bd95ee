"""Many threads in several processes write at once: one record per call, one linear chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text

from cds_service.audit.store import AuditStore
from cds_service.config import Settings

REPO = Path(__file__).resolve().parents[2]
PROCESSES = 3
THREADS = 4
PER_PROCESS = 60
SHARED = 20  # hook instances every writer records: retries across processes

# A worker process: its own AuditStore, THREADS threads, each call recorded twice.
WORKER = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from cds_service.audit.models import CallRecord, CardRecord
from cds_service.audit.store import AuditStore
from cds_service.config import Settings

job = json.loads(sys.argv[1])
store = AuditStore(Settings(database_url=job["url"], spool_path=Path(job["spool"])))

def record(hook_instance: str) -> None:
    now = datetime.now(UTC)
    call = CallRecord(hook_instance=hook_instance, service_id="itb-order-sign",
                      hook="order-sign", received_at=now, answered_at=now, http_status=200,
                      cards=[CardRecord(uuid="card-" + hook_instance, summary="s",
                                        indicator="info", rule="itb-refill", outcome="ok")])
    store.record_call(call)
    store.record_call(call)

with ThreadPoolExecutor(job["threads"]) as pool:
    list(pool.map(record, job["instances"]))
store.close()
"""


def _instances(start: int, count: int) -> list[str]:
    return [f"00000000-0000-4000-8000-{n:012d}" for n in range(start, start + count)]


def test_concurrent_writers_keep_one_record_per_call_and_a_linear_chain(
        store: AuditStore, settings: Settings) -> None:
    shared = _instances(0, SHARED)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(REPO), os.environ.get("PYTHONPATH")]))}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps({
                "url": settings.database_url,
                "spool": str(settings.spool_path),
                "threads": THREADS,
                "instances": shared + _instances(1000 * (p + 1), PER_PROCESS),
            })],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in range(PROCESSES)
    ]

    from datetime import UTC, datetime

    from cds_service.audit.models import CallRecord

    def record(hook_instance: str) -> None:
        now = datetime.now(UTC)
        call = CallRecord(hook_instance=hook_instance, service_id="itb-order-sign",
                          hook="order-sign", received_at=now, answered_at=now,
                          http_status=200)
        store.record_call(call)
        store.record_call(call)

    in_process = shared + _instances(100_000, PER_PROCESS)
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(record, in_process))
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err

    expected = SHARED + (PROCESSES + 1) * PER_PROCESS
    assert expected >= 200
    with store.engine.begin() as conn:
        rows = conn.execute(text("SELECT count(*), count(DISTINCT entry_key) FROM audit_entry"))
        assert tuple(rows.one()) == (expected, expected)
    result = store.verify()
    assert result.ok, result.reason
    assert result.checked == expected
    assert not settings.spool_path.exists() or settings.spool_path.stat().st_size == 0
