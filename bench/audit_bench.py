"""The audit write alone: one realistic call record into SQLite, sequential and concurrent.

The record comes from one real engine run on the typical pump chart (bench/charts.py), so its
findings, cards, queries and thresholds are what production writes; every write gets a fresh
hookInstance, so every one is a real insert (fsync'd, hash-chained). Prints

- ``record_call`` ms per call, one after the other (the synchronous API);
- records/s with 1, 8 and 32 asyncio producers awaiting ``record_call_async`` (or, on a store
  without it, ``record_call`` through Starlette's threadpool as the route used to).

    .venv/bin/python -m bench.audit_bench [--calls 300] [--profile] [--dir /dev/shm]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.call_bench import make_runtime
from bench.charts import chart_request
from cds_service.audit.models import CallRecord
from cds_service.audit.store import AuditStore
from cds_service.audit.trace import call_record
from cds_service.config import Settings
from cds_service.services import SERVICES_BY_ID

PRODUCERS = (1, 8, 32)


async def realistic_record(tmp: Path) -> CallRecord:
    rt = make_runtime(tmp)
    try:
        request = {**chart_request("typical", "pump"), "hookInstance": str(uuid.uuid4())}
        result = await rt.engine.invoke(SERVICES_BY_ID["itb-patient-view"], request)
        return call_record(result.trace)
    finally:
        await rt.close()


def fresh(record: CallRecord, count: int) -> list[CallRecord]:
    return [record.model_copy(update={"hook_instance": str(uuid.uuid4())}) for _ in range(count)]


def new_store(tmp: Path, name: str) -> AuditStore:
    store = AuditStore(Settings(database_url=f"sqlite:///{tmp / (name + '.sqlite')}",
                                spool_path=tmp / (name + ".spool")))
    store.migrate()
    return store


async def write_async(store: AuditStore, record: CallRecord) -> None:
    method = getattr(store, "record_call_async", None)
    if method is not None:
        await method(record)
    else:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(store.record_call, record)


async def concurrent(store: AuditStore, records: list[CallRecord], producers: int) -> float:
    queue = list(reversed(records))

    async def producer() -> None:
        while queue:
            await write_async(store, queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(producer() for _ in range(producers)))
    return len(records) / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="itb-audit-bench-", dir=args.dir) as name:
        tmp = Path(name)
        (tmp / "engine").mkdir()
        record = await realistic_record(tmp / "engine")
        size = len(record.model_dump_json())
        print(f"record: {len(record.findings)} findings, {len(record.cards)} cards, "
              f"{len(record.queries)} queries, {size} bytes of JSON")

        store = new_store(tmp, "sequential")
        for rec in fresh(record, 10):  # warm-up: pool, statement caches
            store.record_call(rec)
        samples = []
        records = fresh(record, args.calls)
        if args.profile:
            from pyinstrument import Profiler

            with Profiler() as profiler:
                for rec in records:
                    store.record_call(rec)
            profiler.print(show_all=False)
            records = fresh(record, args.calls)
        for rec in records:
            started = time.perf_counter()
            store.record_call(rec)
            samples.append(time.perf_counter() - started)
        store.close()
        print(f"record_call sequential: median {statistics.median(samples) * 1e3:.3f} ms, "
              f"p90 {statistics.quantiles(samples, n=10)[-1] * 1e3:.3f} ms "
              f"({args.calls} calls)")

        for producers in PRODUCERS:
            store = new_store(tmp, f"concurrent-{producers}")
            await concurrent(store, fresh(record, 10), producers)  # warm-up
            rate = await concurrent(store, fresh(record, args.calls), producers)
            stats = getattr(store, "stats", None)
            batches = f", {stats.batches} batches" if stats is not None else ""
            store.close()
            print(f"{producers:>3} asyncio producers: {rate:8.0f} records/s{batches}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the sequential run")
    parser.add_argument("--dir", help="where the temp SQLite files go (e.g. /dev/shm: no fsync "
                                      "cost, only the CPU); default: the system temp dir")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
