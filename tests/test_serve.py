"""``python -m cds_service.serve`` (the production command) with N workers: every worker has
its own SO_REUSEPORT socket, so a pool of persistent connections (an EHR's) is spread over the
workers instead of landing on one; a worker that dies is replaced; SIGINT stops them all; a
second instance cannot share the port; workers die with their supervisor."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cds_service.config import PROJECT_ROOT
from cds_service.serve import reuse_port_balances
from tests.conftest import free_port

pytestmark = pytest.mark.skipif(not reuse_port_balances(),
                                reason="SO_REUSEPORT balancing is Linux-only")
DEADLINE_S = 90.0


def wait_for(predicate: object, what: str) -> None:
    """Poll an outside process's state (there is nothing to block on) until true or deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def workers_of(supervisor: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == supervisor and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def owner_of_connections(port: int, pids: list[int], state: str = "01") -> Counter[int]:
    """How many of the sockets on ``port`` in ``state`` each worker holds (from /proc);
    01 is ESTABLISHED, 0A is LISTEN."""
    inodes: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == state:
            inodes.add(fields[9])
    owners: Counter[int] = Counter()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                owners[pid] += 1
    return owners


def serve_command(port: int) -> list[str]:
    """The production command (README)."""
    return [sys.executable, "-m", "cds_service.serve", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "2", "--no-access-log", "--log-level", "warning"]


def serve_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITB_CDS_")}
    env.update({"ITB_CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.sqlite'}",
                "ITB_CDS_SPOOL_PATH": str(tmp_path / "audit.spool"),
                "ITB_CDS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **extra})
    return env


def stop(process: subprocess.Popen[bytes], workers: list[int]) -> None:
    """SIGINT and wait; whatever is still running after that is killed, workers included."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    process = subprocess.Popen(serve_command(port), cwd=PROJECT_ROOT,
                               env=serve_env(tmp_path, port),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()

    def two_ready_workers() -> bool:
        workers = workers_of(process.pid)
        seen.update(workers)
        listening = owner_of_connections(port, workers, state="0A")
        return len(listening) == 2 and ready(f"http://127.0.0.1:{port}")

    try:
        wait_for(two_ready_workers, "two workers listening")
        yield process, port
    finally:
        stop(process, sorted(seen | set(workers_of(process.pid))))


def responses(connections: list[socket.socket], quiet_s: float) -> set[int]:
    """Indexes of the connections that answered, reading until none answers for quiet_s."""
    answered: set[int] = set()
    while len(answered) < len(connections):
        waiting = [c for i, c in enumerate(connections) if i not in answered]
        readable, _, _ = select.select(waiting, [], [], quiet_s)
        if not readable:
            break
        for conn in readable:
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            answered.add(connections.index(conn))
    return answered


def test_each_worker_accepts_only_its_own_share_of_a_connection_pool(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    """A pool opens its connections together. Here both workers are stopped while 32
    connections are made, then only the first is let go: with one shared socket it would
    accept and answer all 32; with a socket per worker it answers only those the kernel queued
    for it, and the second worker, let go next, answers the rest."""
    process, port = served
    first, second = workers_of(process.pid)
    connections: list[socket.socket] = []
    try:
        for pid in (first, second):
            os.kill(pid, signal.SIGSTOP)
        try:
            connections = [socket.create_connection(("127.0.0.1", port), timeout=10)
                           for _ in range(32)]
            for conn in connections:
                conn.sendall(b"GET /health HTTP/1.1\r\nHost: itb\r\n\r\n")
        finally:
            os.kill(first, signal.SIGCONT)
        by_first = responses(connections, quiet_s=2.0)
        os.kill(second, signal.SIGCONT)
        rest = [c for i, c in enumerate(connections) if i not in by_first]
        by_second = responses(rest, quiet_s=30.0)
        owners = owner_of_connections(port, [first, second])
    finally:
        for pid in (first, second):
            os.kill(pid, signal.SIGCONT)
        for conn in connections:
            conn.close()
    assert len(by_first) + len(by_second) == 32
    # A fair split of 32 leaves fewer than 4 on a side with probability ~3e-6.
    assert 4 <= len(by_first) <= 28, (len(by_first), len(by_second))
    assert owners == {first: len(by_first), second: len(by_second)}


def test_a_dead_worker_is_replaced_and_sigint_stops_everything(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    process, port = served
    before = workers_of(process.pid)
    os.kill(before[0], signal.SIGKILL)
    wait_for(lambda: len(workers_of(process.pid)) == 2 and before[0] not in workers_of(
        process.pid), "a replacement worker")
    wait_for(lambda: ready(f"http://127.0.0.1:{port}"), "ready after the restart")

    workers = workers_of(process.pid)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_second_instance_on_a_served_port_refuses_to_start(
        served: tuple[subprocess.Popen[bytes], int], tmp_path: Path) -> None:
    _, port = served
    second = subprocess.run(serve_command(port), cwd=PROJECT_ROOT,
                            env=serve_env(tmp_path / "second", port), capture_output=True,
                            timeout=120)
    assert second.returncode != 0
    assert b"address already in use" in second.stderr.lower()


def test_workers_do_not_outlive_a_killed_supervisor(
        served: tuple[subprocess.Popen[bytes], int]) -> None:
    process, _ = served
    workers = workers_of(process.pid)
    process.kill()
    process.wait(30)
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
             "the orphaned workers to exit")


def test_workers_that_cannot_start_make_the_supervisor_give_up(tmp_path: Path) -> None:
    port = free_port()
    failing = subprocess.run(serve_command(port), cwd=PROJECT_ROOT, timeout=300,
                             env=serve_env(tmp_path, port, ITB_CDS_CARDS_DIR=str(
                                 tmp_path / "no-such-catalogue")), capture_output=True)
    assert failing.returncode == 1
    assert b"died within" in failing.stderr
