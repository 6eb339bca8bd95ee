"""The clinic worklist over a loopback FHIR server holding a synthetic panel (bench/panel.py):
how fast, how much memory, and whether every pump patient is listed exactly once with the
outcomes the clinical arithmetic gives (and nobody else).

The server and the worklist run as separate processes (the worklist's peak RSS is its own),
once per panel size and per way of reading the panel: a Group through Bulk Data export, a
Group through plain searches, every pump owner found by a Device search.

    .venv/bin/python -m bench.worklist_bench [--sizes 500,1000,2000] [--paths bulk,search,device]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("bulk", "search", "device")


def client(url: str, patients: int, path: str) -> dict[str, Any]:
    """Run the worklist once in this process; its figures and its check."""
    from bench.panel import ANCHOR, GROUP_ID, plan
    from cds_service.config import Settings
    from cds_service.engine import Engine
    from cds_service.worklist import Worklist

    settings = Settings(worklist={"bulk_export": path == "bulk"})
    group = None if path == "device" else GROUP_ID

    async def go() -> Any:
        engine = Engine.build(settings, lambda: ANCHOR)
        try:
            return await Worklist(engine, settings).run(url, "bench-token", group, ANCHOR)
        finally:
            await engine.aclose()

    started = time.perf_counter()
    panel = asyncio.run(go())
    seconds = time.perf_counter() - started
    expected = {p.patient_id: p.expected for p in plan(patients) if p.kind == "pump"}
    listed: dict[str, list[tuple[str | None, str | None]]] = {}
    for row in panel.rows:
        outcome = (row.refill.outcome if row.refill else None,
                   row.battery.outcome if row.battery else "none")
        listed.setdefault(row.patient, []).append(outcome)
    wrong = [p for p, want in expected.items() if listed.get(p) != [want]]
    extra = sorted(set(listed) - set(expected))
    return {"patients": patients, "path": path, "seconds": round(seconds, 2),
            "patients_per_s": round(patients / seconds, 1),
            "charts_per_s": round(panel.charts / seconds, 1), "charts": panel.charts,
            "rows": len(panel.rows), "pumps_expected": len(expected), "wrong": len(wrong),
            "extra": len(extra),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def one(patients: int, path: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.panel_server", "--patients", str(patients)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # "PORT n" once the panel is built and listening
        if not line.startswith("PORT "):
            raise RuntimeError("the panel server did not start")
        url = f"http://127.0.0.1:{line.split()[1]}/fhir"
        out = subprocess.run(
            [sys.executable, "-m", "bench.worklist_bench", "client", "--url", url,
             "--patients", str(patients), "--path", path],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("client")
    run.add_argument("--url", required=True)
    run.add_argument("--patients", type=int, required=True)
    run.add_argument("--path", choices=PATHS, required=True)
    parser.add_argument("--sizes", default="500,1000,2000")
    parser.add_argument("--paths", default=",".join(PATHS))
    args = parser.parse_args()
    if args.command == "client":
        print(json.dumps(client(args.url, args.patients, args.path)))
        return
    print(f"{'patients':>8} {'path':>7} {'seconds':>8} {'patients/s':>10} {'charts/s':>9} "
          f"{'rows':>5} {'wrong':>5} {'extra':>5} {'peak RSS MB':>11}")
    failed = False
    for size in (int(s) for s in args.sizes.split(",")):
        for path in args.paths.split(","):
            r = one(size, path)
            failed |= bool(r["wrong"] or r["extra"])
            print(f"{r['patients']:>8} {r['path']:>7} {r['seconds']:>8} "
                  f"{r['patients_per_s']:>10} {r['charts_per_s']:>9} {r['rows']:>5} "
                  f"{r['wrong']:>5} {r['extra']:>5} {r['peak_rss_mb']:>11}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
