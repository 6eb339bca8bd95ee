"""The governance dashboard on a big audit log: every measure against brute force, and the time
the JSON takes over HTTP, on SQLite and on PostgreSQL.

A synthetic log (tests/audit/governance_log.py: 200,000 calls and 30,000 feedback items by
default) goes through the real batch writer into each database; the service then runs on a
loopback port and answers GET /admin/governance.json for a few slices, each compared with the
brute-force Python computation over the same records (tests/audit/governance_oracle.py).
Prints the load time, each answer's time (best and median of ``--repeat``) and EQUAL/DIFFERS;
exits 1 when any answer differs.

    .venv/bin/python -m bench.governance_bench [--calls 200000] [--feedback 30000]
        [--backend sqlite|postgres|both] [--repeat 5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from cds_service.app import create_app
from cds_service.audit.measures import Governance, GovernanceQuery
from cds_service.audit.store import AuditStore
from cds_service.config import Settings
from tests.audit.governance_log import SyntheticLog, load, make_log
from tests.audit.governance_oracle import brute_force
from tests.conftest import LiveServer
from tests.pg import postgres_server

TOKEN = "governance-bench-admin-token-0123456789"  # 32+ characters, as the profile asks
SLICES: list[dict[str, str]] = [
    {},  # what the page shows first: every week, everything
    {"period": "day"},
    {"period": "month", "service": "itb-patient-view", "since": "2025-02-03",
     "until": "2025-05-01"},
    {"period": "week", "rule": "itb-refill", "tier": "critical"},
]


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'governance.sqlite'}"
        return
    servers = postgres_server()
    server = next(servers)
    try:
        yield server.create_database()
    finally:
        with contextlib.suppress(StopIteration):
            next(servers)


def differences(got: dict[str, Any], want: dict[str, Any], path: str = "") -> list[str]:
    if isinstance(got, dict) and isinstance(want, dict):
        out: list[str] = []
        for key in sorted(got.keys() | want.keys()):
            out += differences(got.get(key), want.get(key), f"{path}.{key}")
        return out
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [d for i, (g, w) in enumerate(zip(got, want, strict=True))
                for d in differences(g, w, f"{path}[{i}]")]
    return [] if got == want else [f"{path}: {str(got)[:80]} != {str(want)[:80]}"]


def run(backend: str, log: SyntheticLog, tmp: Path, repeat: int) -> bool:
    ok = True
    with database(backend, tmp) as url:
        settings = Settings(database_url=url, spool_path=tmp / f"{backend}.spool",
                            admin_token=TOKEN, sandbox_enabled=False)
        store = AuditStore(settings)
        started = time.perf_counter()
        load(store, log)
        if store.database.is_postgres:
            # What autovacuum does to a live table after inserts: statistics for the planner
            # and the visibility map that lets the measures read their indexes alone.
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
        store.close()
        print(f"{backend}: loaded {len(log.calls):,} calls and {log.feedback_items:,} feedback "
              f"items in {time.perf_counter() - started:.1f} s", flush=True)
        with LiveServer(create_app(settings)) as server, httpx.Client(
                base_url=server.url, timeout=120,
                headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for params in SLICES:
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    response = http.get("/admin/governance.json", params=params)
                    times.append(time.perf_counter() - t0)
                    assert response.status_code == 200, response.text
                got = Governance.model_validate(response.json())
                want = brute_force(log, GovernanceQuery.model_validate(
                    {"period": "week", **params}))
                diff = differences(got.model_dump(mode="json", exclude={"generated_at"}),
                                   want.model_dump(mode="json", exclude={"generated_at"}))
                ok = ok and not diff
                print(f"  {backend} /admin/governance.json {params or '(default)'}: best "
                      f"{min(times):.3f} s, median {statistics.median(times):.3f} s — "
                      f"{'EQUAL to brute force' if not diff else 'DIFFERS: ' + diff[0]}",
                      flush=True)
            t0 = time.perf_counter()
            page = http.get("/admin/governance")
            print(f"  {backend} /admin/governance (page, {len(page.content):,} bytes): "
                  f"{time.perf_counter() - t0:.3f} s", flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--feedback", type=int, default=30_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    log = make_log(args.calls, args.feedback)
    print(f"generated {len(log.calls):,} calls, {log.feedback_items:,} feedback items in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results = [run(b, log, Path(tmp), args.repeat) for b in backends]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
