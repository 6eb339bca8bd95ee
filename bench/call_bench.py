"""One full service call in-process, against reading and writing the same JSON at all.

Per chart size (bench/charts.py: small, typical, large, huge; a pump patient and one without),
times what the route does for one patient-view call — ``orjson.loads`` + the nesting check,
``Engine.invoke`` (wire model, prefetch, selective parse, rules, cards), the audit write to
SQLite (committed, hash-chained) and ``orjson.dumps`` of the response — next to
``orjson.loads`` + ``orjson.dumps`` of the same request body, in the same run, and prints the
ratio. Every call carries a fresh hookInstance, so every audit write is a real insert.
Targets: typical <= 3x, large <= 5x (printed, never asserted).

Two figures per chart: "cold" empties the engine's memos before every call (a chart this worker
has never seen), "warm" sends the same chart again (a chart opened again, order-select firing
on every change to the order), which the record memo answers without parsing.

    .venv/bin/python -m bench.call_bench [--repeat 30] [--sizes typical,large]
                                         [--profile SIZE [--cold]]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from bench.charts import KINDS, SIZES, chart_request, resource_count
from cds_service.api.body import nesting_depth_exceeds
from cds_service.audit.trace import call_record
from cds_service.config import Settings
from cds_service.runtime import Runtime
from cds_service.services import SERVICES_BY_ID

TARGETS = {"typical": 3.0, "large": 5.0}


def _bodies(request: dict[str, Any], count: int) -> list[bytes]:
    """``count`` serialised copies of the request, each with its own hookInstance."""
    return [orjson.dumps({**request, "hookInstance": str(uuid.uuid4())}) for _ in range(count)]


async def _interleaved(fns: list[Callable[[bytes], Awaitable[object]]],
                       bodies: list[list[bytes]]) -> list[float]:
    """Median seconds of each function, timed in rotation on the same bodies: this machine's
    speed drifts by tens of percent over seconds, and a ratio of two phases timed one after
    the other would measure the drift."""
    samples: list[list[float]] = [[] for _ in fns]
    for row in zip(*bodies, strict=True):
        for fn, raw, out in zip(fns, row, samples, strict=True):
            started = time.perf_counter()
            await fn(raw)
            out.append(time.perf_counter() - started)
    return [statistics.median(s) for s in samples]


def make_runtime(tmp: Path) -> Runtime:
    from datetime import UTC, datetime

    settings = Settings(
        database_url=f"sqlite:///{tmp / 'audit.sqlite'}",
        spool_path=tmp / "audit.spool",
    )
    # The charts are built around 15 June 2026 (scripts/build_fixtures.py A_JUN).
    return Runtime.start(settings, lambda: datetime(2026, 6, 15, 9, 0, tzinfo=UTC))


async def run(args: argparse.Namespace) -> None:
    service = SERVICES_BY_ID["itb-patient-view"]
    with tempfile.TemporaryDirectory(prefix="itb-bench-") as tmp:
        rt = make_runtime(Path(tmp))
        settings = rt.settings

        async def full_call(raw: bytes) -> bytes:
            body = orjson.loads(raw)
            if nesting_depth_exceeds(raw, settings.max_json_depth):
                raise RuntimeError("bench chart too deep")
            result = await rt.engine.invoke(service, body)
            await rt.store.record_call_async(call_record(result.trace))
            return orjson.dumps(result.body)

        async def round_trip(raw: bytes) -> bytes:
            return orjson.dumps(orjson.loads(raw))

        def forget() -> None:
            rt.engine.validation_memo.clear()
            rt.engine.record_memo.clear()

        async def cold_call(raw: bytes) -> bytes:
            forget()
            return await full_call(raw)

        print(f"{'chart':<16}{'resources':>10}{'MB':>7}{'orjson rt':>10}{'cold':>8}{'ratio':>7}"
              f"{'warm':>8}{'ratio':>7}  target   (ms, medians of {args.repeat})")
        for size in args.sizes:
            repeat = max(5, args.repeat // 10) if size == "huge" else args.repeat
            for kind in KINDS:
                request = chart_request(size, kind)
                bodies = _bodies(request, repeat + 3)
                await full_call(bodies[0])  # warm-up: imports, caches, schema
                await round_trip(bodies[1])
                if args.profile == size:
                    from pyinstrument import Profiler

                    with Profiler(async_mode="enabled") as profiler:
                        for raw in _bodies(request, repeat):
                            await (cold_call if args.cold else full_call)(raw)
                    profiler.print(show_all=False)
                # Each call its own hookInstance, so that every audit write is a new record;
                # a warm call follows a cold one with the same chart.
                base, cold, warm = await _interleaved(
                    [round_trip, cold_call, full_call],
                    [bodies[3:], bodies[3:], _bodies(request, repeat)])
                target = TARGETS.get(size)
                verdict = "" if target is None else f"<= {target:g}x cold " + (
                    "ok" if cold / base <= target else "MISSED") + ", warm " + (
                    "ok" if warm / base <= target else "MISSED")
                print(f"{size + '-' + kind:<16}{resource_count(request):>10}"
                      f"{len(bodies[0]) / 1e6:>7.2f}{base * 1e3:>10.2f}{cold * 1e3:>8.2f}"
                      f"{cold / base:>6.1f}x{warm * 1e3:>8.2f}{warm / base:>6.1f}x  {verdict}")
        await rt.engine.fhir.aclose()
        await rt.jwks_http.aclose()
        await rt.store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help="comma-separated subset of " + ",".join(SIZES))
    parser.add_argument("--profile", choices=list(SIZES), help="pyinstrument one size")
    parser.add_argument("--cold", action="store_true", help="profile cold calls (memos emptied)")
    args = parser.parse_args()
    args.sizes = [s for s in args.sizes.split(",") if s]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
