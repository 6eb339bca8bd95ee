"""A worker started from the production entry point (``cds_service.asgi``) has its startup heap
frozen and its collector running again (cds_service/heap.py says why)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cds_service.config import PROJECT_ROOT


def test_the_asgi_worker_freezes_its_startup_heap(tmp_path: Path) -> None:
    env = {**os.environ, "ITB_CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'a.sqlite'}",
           "ITB_CDS_SPOOL_PATH": str(tmp_path / "a.spool")}
    probe = "import gc, cds_service.asgi\nprint(gc.isenabled(), gc.get_freeze_count())\n"
    done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    enabled, frozen = done.stdout.split()[-2:]
    assert enabled == "True"  # off while starting, on again once started
    assert int(frozen) > 50_000  # the schemas, value sets and templates of a started worker
