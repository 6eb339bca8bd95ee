"""The production command (``python -m cds_service.serve``) with two workers, its log in a
file: for the tests of what an operator sees across workers (metrics, logs)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.config import PROJECT_ROOT
from tests.conftest import free_port
from tests.test_serve import owner_of_connections, ready, stop, wait_for, workers_of


@dataclass
class Running:
    url: str
    port: int
    log: Path
    pids: list[int]

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()

    def records(self) -> list[dict[str, Any]]:
        """Every log line, parsed: a line that is not one JSON object fails here."""
        return [json.loads(line) for line in self.lines()]

    def wait_for_record(self, what: str, **fields: object) -> dict[str, Any]:
        """A log record with these fields, once some worker has written it."""
        found: list[dict[str, Any]] = []

        def written() -> bool:
            found[:] = [r for r in self.records()
                        if all(r.get(k) == v for k, v in fields.items())]
            return bool(found)

        wait_for(written, what)
        return found[0]


@contextlib.contextmanager
def two_workers(tmp_path: Path, *args: str, **env_extra: str) -> Iterator[Running]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ITB_CDS_", "PROMETHEUS_"))}
    env.update({"ITB_CDS_DATA_DIR": str(tmp_path / "data"), "ITB_CDS_PUBLIC_BASE_URL": url,
                **env_extra})
    log = tmp_path / "service.log"
    command = [sys.executable, "-m", "cds_service.serve", "--host", "127.0.0.1", "--port",
               str(port), "--workers", "2", *args]
    seen: set[int] = set()
    with open(log, "wb") as sink, subprocess.Popen(command, cwd=PROJECT_ROOT, env=env,
                                                   stdout=sink, stderr=sink) as process:
        def both_ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the service stopped: {log.read_text()[-3000:]}")
            workers = workers_of(process.pid)
            seen.update(workers)
            listening = owner_of_connections(port, workers, state="0A")
            return len(listening) == 2 and ready(url)

        try:
            wait_for(both_ready, "two workers listening")
            yield Running(url=url, port=port, log=log, pids=sorted(seen))
        finally:
            stop(process, sorted(seen | set(workers_of(process.pid))))
