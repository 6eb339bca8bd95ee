"""HTTP load on the production-style deployment, from loopback, with wrk.

Starts the service exactly as README documents for production (``python -m cds_service.serve``:
uvicorn, one worker per core, each with its own SO_REUSEPORT socket)
on a fresh SQLite audit log in a temp dir, then:

1. cold start: process spawn to the first 200 from /ready, on a database whose schema an
   ``itb-cds audit migrate`` created beforehand (a restart, as deployments see it);
2. saturation: wrk with ``--connections`` for ``--duration`` s on the typical pump chart
   (a fresh hookInstance per request, bench/post.lua) -> throughput, p50/p95/p99;
3. one connection for 3 s (latency with no queueing), then paced: ``--paced-connections``
   connections each wait between requests so the offered rate is ~``--rate`` calls/s for
   ``--duration`` s -> p50/p95/p99 at that rate (the achieved rate is printed: it falls short
   when the service cannot keep up);
4. afterwards: errors, audit records vs successful responses (read from the SQLite file),
   RSS of each worker from /proc.

    .venv/bin/python -m bench.load [--workers 2] [--duration 30] [--chart typical-pump] [--cold]

Every request sends the same chart (with its own hookInstance), so by default the workers'
memos answer it without validating it again: a chart re-opened, order-select firing on every
edit. ``--cold`` turns the memos off (ITB_CDS_VALIDATION_MEMO_ENTRIES=0,
ITB_CDS_RECORD_MEMO_ENTRIES=0): every call validates its chart as if never seen.

Needs wrk (Debian: apt-get install -y wrk). Traffic goes to 127.0.0.1 only; every phase is
bounded in time by wrk's -d and the whole script by its own deadlines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.charts import chart_request

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "00000000-0000-4000-8000-000000000000"
SERVICE_PATH = "/cds-services/itb-patient-view"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_command(port: int, workers: int) -> list[str]:
    """The production command (README): ``python -m cds_service.serve``, one uvicorn worker
    per core, each with its own SO_REUSEPORT socket; no access log (the audit log is the
    record of every call), no proxy headers, no server header."""
    return [
        str(ROOT / ".venv" / "bin" / "python"), "-m", "cds_service.serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]


def server_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITB_CDS_")}
    env.update({
        "ITB_CDS_DATABASE_URL": f"sqlite:///{tmp / 'audit.sqlite'}",
        "ITB_CDS_SPOOL_PATH": str(tmp / "audit.spool"),
        "ITB_CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ITB_CDS_AUTH_MODE": "off",
    })
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    cold_start_s: float

    def worker_pids(self) -> list[int]:
        """Children of the uvicorn supervisor (the workers), from /proc."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            # multiprocessing's resource tracker is a child too; workers run spawn_main.
            if ppid == self.process.pid and b"spawn_main" in _cmdline(entry):
                pids.append(int(entry.name))
        return sorted(pids)

    def rss_mb(self) -> dict[int, float]:
        out = {}
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    out[pid] = int(line.split()[1]) / 1024
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(tmp: Path, workers: int, env_extra: dict[str, str] | None = None,
                 deadline_s: float = 60.0) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("ab")
    started = time.perf_counter()
    process = subprocess.Popen(server_command(port, workers), cwd=ROOT,
                               env=server_env(tmp, port, **(env_extra or {})),
                               stdout=log, stderr=subprocess.STDOUT)
    with httpx.Client(timeout=2.0) as http:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}; see {log.name}")
            if time.perf_counter() - started > deadline_s:
                process.kill()
                raise RuntimeError("server did not become ready")
            try:
                if http.get(url + "/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.01)  # polling a port that is not open yet: nothing to wait on
    return Server(process, url, time.perf_counter() - started)


def write_body(tmp: Path, chart: str) -> Path:
    size, kind = chart.split("-", 1)
    request = chart_request(size, kind)
    path = tmp / f"{chart}.json"
    path.write_bytes(orjson.dumps({**request, "hookInstance": PLACEHOLDER}))
    return path


_runs = iter(range(1, 65536))


def run_wrk(url: str, body: Path, *, threads: int, connections: int, duration: int,
            delay_ms: int = 0) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    command = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
               "--timeout", "10s", "-s", str(ROOT / "bench" / "post.lua"),
               url + SERVICE_PATH, "--", str(body), str(next(_runs))]
    if delay_ms:
        command.append(str(delay_ms))
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60,
                          check=True)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
            return result
    raise RuntimeError(f"no summary from wrk:\n{done.stdout}\n{done.stderr}")


def audit_calls(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (count,) = conn.execute("SELECT count(*) FROM audit_entry WHERE kind = 'call'").fetchone()
    return int(count)


def describe(label: str, r: dict[str, Any]) -> str:
    seconds = r["duration_us"] / 1e6
    lat = r["latency_us"]
    errors = sum(r["errors"].values())
    return (f"{label:<10} {r['requests']:>7} calls in {seconds:5.1f} s = "
            f"{r['requests'] / seconds:7.1f} calls/s   p50 {lat['p50'] / 1e3:6.1f} ms  "
            f"p95 {lat['p95'] / 1e3:6.1f} ms  p99 {lat['p99'] / 1e3:6.1f} ms  "
            f"max {lat['max'] / 1e3:6.1f} ms   errors {errors} {r['errors']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=200, help="paced phase: calls/s offered")
    parser.add_argument("--paced-connections", type=int, default=32)
    parser.add_argument("--chart", default="typical-pump")
    parser.add_argument("--cold", action="store_true",
                        help="memos off: every call validates its chart afresh")
    args = parser.parse_args()
    memo_env = {"ITB_CDS_VALIDATION_MEMO_ENTRIES": "0",
                "ITB_CDS_RECORD_MEMO_ENTRIES": "0"} if args.cold else {}

    with tempfile.TemporaryDirectory(prefix="itb-load-") as tmp_name:
        tmp = Path(tmp_name)
        body = write_body(tmp, args.chart)
        command = " ".join(server_command(0, args.workers)).replace("--port 0", "--port P")
        print(f"command : {command}")
        print(f"memos   : {'off (--cold)' if args.cold else 'on (the chart repeats)'}")
        # A restart, the usual cold start: the schema exists (a deployment creates it once,
        # with `itb-cds audit migrate`), so the workers only check its revision.
        subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "cds_service.cli",
                        "audit", "migrate", "--database-url", f"sqlite:///{tmp / 'audit.sqlite'}"],
                       cwd=ROOT, env=server_env(tmp, 0), check=True, capture_output=True,
                       timeout=120)
        server = start_server(tmp, args.workers, memo_env)
        try:
            print(f"cold start to /ready: {server.cold_start_s:.2f} s, schema already migrated"
                  " (target <= 2 s)")
            print(f"chart   : {args.chart}, {body.stat().st_size / 1e3:.0f} kB per request; "
                  f"workers {server.worker_pids()}")
            print(f"RSS MB after start : {_fmt_rss(server.rss_mb())}")
            warm = run_wrk(server.url, body, threads=2, connections=4, duration=3)
            results = {"warm-up": warm}
            results["saturate"] = run_wrk(server.url, body, threads=2,
                                          connections=args.connections, duration=args.duration)
            # Paced: many connections, each waiting between its requests, so that the offered
            # rate is ~--rate. Each connection sticks to the worker that accepted it, so a
            # handful of connections can land mostly on one worker; an EHR's pool has many.
            idle = run_wrk(server.url, body, threads=1, connections=1, duration=3)
            results["one-conn"] = idle
            connections = args.paced_connections
            delay_ms = max(1, round(connections * 1000 / args.rate
                                    - idle["latency_us"]["p50"] / 1e3))
            results["paced"] = run_wrk(server.url, body, threads=2, connections=connections,
                                       duration=args.duration, delay_ms=delay_ms)
            for label, r in results.items():
                print(describe(label, r))
            ok = sum(r["requests"] - r["errors"]["status"] for r in results.values())
            total = sum(r["requests"] for r in results.values())
            rss = server.rss_mb()
        finally:
            server.stop()
        stored = audit_calls(tmp / "audit.sqlite")
        spooled = _spool_lines(tmp / "audit.spool")
        print(f"calls completed (wrk): {total}; 2xx {ok}; audit call records {stored}"
              f" (+{spooled} spooled); missing {max(0, ok - stored - spooled)}"
              " (records may exceed 2xx: calls in flight when wrk stopped are still answered)")
        print(f"load average at the end: {os.getloadavg()}")
        print(f"RSS MB after {total} calls: {_fmt_rss(rss)} (target <= 150 MB per worker)")


def _cmdline(proc_dir: Path) -> bytes:
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""


def _fmt_rss(rss: dict[int, float]) -> str:
    return ", ".join(f"pid {pid}: {mb:.1f}" for pid, mb in rss.items()) or "(no workers)"


def _spool_lines(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


if __name__ == "__main__":
    main()
