"""A throwaway PostgreSQL server on a unix socket, for tests that need the real thing.

Finds ``initdb``/``pg_ctl`` in PATH or /usr/lib/postgresql/*/bin. PostgreSQL refuses to run
as root, so as root the server runs as the ``postgres`` user (via ``runuser``) in a temporary
directory it owns. Not installed: ``pytest.skip`` — unless ITB_CDS_REQUIRE_SYSTEM_SERVICES=1,
then the test fails.

    from tests.pg import postgres_server   # in a conftest: a session-scoped fixture

    @pytest.fixture(scope="session")
    def pg() -> Iterator[PostgresServer]:
        yield from postgres_server()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_ENV = "ITB_CDS_REQUIRE_SYSTEM_SERVICES"
RUN_AS = "postgres"


def find_bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    for candidate in candidates:
        if (candidate / "pg_ctl").exists() and (candidate / "initdb").exists():
            return candidate
    return None


def unavailable(reason: str) -> None:
    """Skip, or fail when the environment says system services are required."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1)")
    pytest.skip(reason)


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path  # temp dir: data/, the socket, the log

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync", "--locale=C")

    def start(self) -> None:
        options = (f"-k {self.socket_dir} -c listen_addresses='' -c fsync=off"
                   " -c full_page_writes=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file),
                  "-o", options, "-w", "-t", "30", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def postgres_server() -> Iterator[PostgresServer]:
    """Generator for a session-scoped fixture: start once, stop and remove at the end."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL (initdb, pg_ctl) is not installed")
        return
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(RUN_AS)
        except KeyError:
            unavailable(f"running as root and there is no {RUN_AS!r} user to run PostgreSQL")
            return
        if shutil.which("runuser") is None:
            unavailable("running as root and runuser is not available")
            return
    # Short path: the unix socket path must stay under ~100 bytes.
    root = Path(tempfile.mkdtemp(prefix="itbpg-", dir="/tmp"))
    if os.geteuid() == 0:
        os.chown(root, account.pw_uid, account.pw_gid)
    server = PostgresServer(bin_dir=bin_dir, root=root)
    try:
        server.init()
        server.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr or exc.stdout}")
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
