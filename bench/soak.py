"""Soak with faults: load for a while on PostgreSQL, with a bad FHIR server and one DB restart.

Starts PostgreSQL on a unix socket (tests/pg.py), a slow/failing FHIR server on loopback
(bench/fhir_faults.py) and the service under the production command (bench/load.py, N
workers) on that database. Then, for ``--minutes``, a bounded pool of clients sends:

- 70 % good patient-view calls with full prefetch (typical pump chart, fresh hookInstance);
- 15 % calls whose observations/appointments are missing, so the service must query the bad
  FHIR server within its budget (answers 200 or 412, never 5xx);
- 15 % bad input: broken JSON, wrong hook, wrong types, wrong content type, unknown service.

Halfway through, PostgreSQL is stopped for ``--outage`` seconds and started again (the
service spools to disk meanwhile). Afterwards the spool is replayed and the script prints:
5xx caused by bad input (must be 0), 200 responses without an audit record (must be 0), the
chain check, 5xx of any kind, and RSS per worker at start / middle / end.

    .venv/bin/python -m bench.soak [--minutes 10] [--workers 2] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.charts import chart_request
from bench.load import ROOT, Server, free_port, start_server
from cds_service.audit.store import AuditStore
from cds_service.config import Settings
from tests.pg import postgres_server

PATH = "/cds-services/itb-patient-view"


def bad_inputs(good: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """(path, body, content type) that a client may send and that must get a 4xx."""
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    return [
        (PATH, b'{"hook": "patient-view", "context": ', "application/json"),
        (PATH, orjson.dumps({**good, "hook": "order-sign"}), "application/json"),
        (PATH, orjson.dumps({**good, "context": {"patientId": 17}}), "application/json"),
        (PATH, orjson.dumps({**good, "prefetch": "everything"}), "application/json"),
        (PATH, orjson.dumps({**good, "hookInstance": ["x"]}), "application/json"),
        (PATH, orjson.dumps({"deep": deep}), "application/json"),
        (PATH, b"hook=patient-view", "application/x-www-form-urlencoded"),
        ("/cds-services/no-such-service", orjson.dumps(good), "application/json"),
        (PATH + "/feedback", b'{"feedback": [{"card": 1}]}', "application/json"),
    ]


class Tally:
    def __init__(self) -> None:
        self.by_kind: Counter[str] = Counter()
        self.ok_instances: list[str] = []
        self.transport_errors = 0

    def line(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))


async def client(http: httpx.AsyncClient, good: dict[str, Any], fhir_url: str,
                 deadline: float, max_calls: int, tally: Tally) -> None:
    bad = bad_inputs(good)
    fallback_base = {k: v for k, v in good.items() if k != "prefetch"}
    fallback_prefetch = {k: v for k, v in good["prefetch"].items()
                         if k not in ("observations", "appointments")}
    for _ in range(max_calls):
        if time.monotonic() > deadline:
            return
        roll = random.random()
        instance = str(uuid.uuid4())
        if roll < 0.70:
            kind, path, ctype = "good", PATH, "application/json"
            body = orjson.dumps({**good, "hookInstance": instance})
        elif roll < 0.85:
            kind, path, ctype = "fallback", PATH, "application/json"
            body = orjson.dumps({**fallback_base, "hookInstance": instance,
                                 "fhirServer": fhir_url, "prefetch": fallback_prefetch})
        else:
            kind = "bad"
            path, body, ctype = random.choice(bad)
        try:
            response = await http.post(path, content=body, headers={"content-type": ctype})
        except httpx.TransportError:
            tally.transport_errors += 1
            continue
        tally.by_kind[f"{kind} {response.status_code}"] += 1
        if response.status_code == 200 and kind != "bad":
            tally.ok_instances.append(instance)


def rss_line(server: Server) -> str:
    return ", ".join(f"{mb:.0f} MB" for mb in server.rss_mb().values())


async def drive(args: argparse.Namespace, server: Server, fhir_url: str,
                pg_restart: Any) -> tuple[Tally, list[str]]:
    good = chart_request("typical", "pump")
    tally = Tally()
    rss = [f"start: {rss_line(server)}"]
    duration = args.minutes * 60
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
        tasks = [asyncio.create_task(client(http, good, fhir_url, deadline, args.max_calls,
                                            tally)) for _ in range(args.clients)]
        await asyncio.sleep(duration / 2)
        rss.append(f"middle: {rss_line(server)}")
        print(f"[{time.strftime('%X')}] halfway: {tally.line()}; stopping PostgreSQL for "
              f"{args.outage} s", flush=True)
        await asyncio.to_thread(pg_restart)
        print(f"[{time.strftime('%X')}] PostgreSQL is back", flush=True)
        await asyncio.gather(*tasks)
    rss.append(f"end: {rss_line(server)}")
    return tally, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--outage", type=float, default=10, help="seconds PostgreSQL is down")
    parser.add_argument("--max-calls", type=int, default=200_000, help="per client, a bound")
    args = parser.parse_args()

    pg_gen = postgres_server()
    pg = next(pg_gen)
    fhir: subprocess.Popen[bytes] | None = None
    server: Server | None = None
    try:
        db_url = pg.create_database()
        fhir_port = free_port()
        fhir = subprocess.Popen(
            [str(ROOT / ".venv/bin/uvicorn"), "bench.fhir_faults:app", "--host", "127.0.0.1",
             "--port", str(fhir_port), "--log-level", "warning", "--no-access-log"], cwd=ROOT)
        with tempfile.TemporaryDirectory(prefix="itb-soak-") as tmp_name:
            tmp = Path(tmp_name)
            server = start_server(tmp, args.workers, {"ITB_CDS_DATABASE_URL": db_url})
            print(f"PostgreSQL {pg.root}, FHIR faults on :{fhir_port}, service {server.url} "
                  f"({args.workers} workers, cold start {server.cold_start_s:.2f} s)", flush=True)

            def pg_restart() -> None:
                pg.stop()
                time.sleep(args.outage)  # the outage itself: a length of time, not a wait
                pg.start()

            tally, rss = asyncio.run(drive(args, server, f"http://127.0.0.1:{fhir_port}/fhir",
                                           pg_restart))
            server.stop()
            settings = Settings(database_url=db_url, spool_path=tmp / "audit.spool")
            store = AuditStore(settings)
            replayed = store.replay_spool()
            recorded = {c.hook_instance for _, c in store.calls()}
            lost = [i for i in tally.ok_instances if i not in recorded]
            verdict = store.verify()
            store.close()
        bad_5xx = sum(v for k, v in tally.by_kind.items() if k.startswith("bad 5"))
        all_5xx = sum(v for k, v in tally.by_kind.items() if k.split()[1].startswith("5"))
        print(f"responses: {tally.line()}; transport errors {tally.transport_errors}")
        print(f"5xx caused by bad input: {bad_5xx} (must be 0); 5xx of any kind: {all_5xx}")
        print(f"200 responses {len(tally.ok_instances)}; audit call records {len(recorded)} "
              f"({replayed} replayed from the spool after the run); lost: {len(lost)} "
              "(must be 0)")
        print(f"chain verifies: {verdict.ok} ({verdict.checked} entries"
              f"{'' if verdict.ok else ', broken at ' + str(verdict.first_broken_seq)})")
        print("RSS per worker: " + "; ".join(rss))
    finally:
        if server is not None:
            server.stop()
        if fhir is not None:
            fhir.terminate()
            fhir.wait(timeout=10)
        next(pg_gen, None)  # resumes after its yield: stops the server, removes its dir


if __name__ == "__main__":
    main()
