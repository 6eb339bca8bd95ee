"""Acceptance 3, over real HTTP against the production command (development profile, one
worker so that attacker and probe share it; one service for the module): a 1 MB header gets
431 without slowing another client's call; 2,000 idle connections do not keep a call out; a
FHIR server that streams 300 MB does not take the worker's memory. Figures are printed
(``-s``); bounds are generous."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.config import PROJECT_ROOT
from tests.security.conftest import Runner, Service

FIXTURE = PROJECT_ROOT / "fixtures" / "refill" / "refill-overdue.json"
PATH = "/cds-services/itb-patient-view"
MB = 1024 * 1024


def dev_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ITB_CDS_")}
    env.update({"ITB_CDS_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.sqlite'}",
                "ITB_CDS_SPOOL_PATH": str(tmp_path / "audit.spool"), **extra})
    return env


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Short header and body timeouts, so that the timeout test stays short."""
    tmp_path = tmp_path_factory.mktemp("limits")
    runner = Runner(tmp_path)
    yield runner.start(dev_env(tmp_path, ITB_CDS_HEADER_TIMEOUT_SECONDS="2",
                               ITB_CDS_BODY_TIMEOUT_SECONDS="2"))
    runner.stop_all()


def probe_request() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE.read_text())["request"]
    body["hookInstance"] = str(uuid.uuid4())
    return body


def probe_latencies(http: httpx.Client, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = http.post(PATH, json=probe_request())
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return latencies


def big_header_answer(port: int, size: int) -> bytes:
    """Send a request whose one header is ``size`` bytes; what came back, to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(b"GET /cds-services HTTP/1.1\r\nHost: itb\r\nX-Big: "
                         + b"a" * size + b"\r\n\r\n")
        except OSError:
            pass  # the server may stop reading once it has answered; the answer is there
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


# The attacker, in its own process (a thread would share this one's interpreter lock with
# the probe client): one 1 MB header per line read from stdin, the status line printed back.
ATTACKER = r"""
import socket, sys
port, size = int(sys.argv[1]), int(sys.argv[2])
request = b"GET /cds-services HTTP/1.1\r\nHost: itb\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
for _ in sys.stdin:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(request)
        except OSError:
            pass
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    print(answer.split(b"\r\n", 1)[0].decode(), answer.count(b"OperationOutcome"), flush=True)
"""


def test_a_1_mb_header_gets_431_without_slowing_another_client(service: Service) -> None:
    attacker = subprocess.Popen([sys.executable, "-c", ATTACKER, str(service.port), str(MB)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert attacker.stdin is not None and attacker.stdout is not None
    answers = []
    try:
        with httpx.Client(base_url=service.url, timeout=30) as http:
            probe_latencies(http, 5)  # warm: the first calls of a worker validate the chart
            idle: list[float] = []
            under_attack: list[float] = []
            # In rotation, so that the machine's drift (other work on its two cores) weighs
            # on both the same; each attacked probe call overlaps one 1 MB header.
            for _ in range(80):
                idle += probe_latencies(http, 1)
                attacker.stdin.write("go\n")
                attacker.stdin.flush()
                under_attack += probe_latencies(http, 1)
                answers.append(attacker.stdout.readline().strip())
    finally:
        attacker.stdin.close()
        attacker.wait(30)
        attacker.stdout.close()
    median_idle, median_attack = statistics.median(idle), statistics.median(under_attack)
    print(f"\nprobe call median {median_idle:.1f} ms idle, {median_attack:.1f} ms alongside "
          f"{len(answers)} 1 MB headers ({median_attack / median_idle:.2f}x); p90 "
          f"{_p90(idle):.1f} / {_p90(under_attack):.1f} ms")
    assert set(answers) == {"HTTP/1.1 431 Request Header Fields Too Large 1"}
    assert len(answers) == 80
    assert median_attack <= 2 * median_idle


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def test_2000_idle_connections_do_not_keep_a_call_out(service: Service) -> None:
    # 512 connections per worker by default
    idle: list[socket.socket] = []
    try:
        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", service.port), timeout=10))
        started = time.perf_counter()
        with httpx.Client(base_url=service.url, timeout=30) as http:
            response = http.post(PATH, json=probe_request())
        took = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.text
        closed = sum(1 for conn in idle if _closed_by_server(conn))
        print(f"\nprobe call with 2,000 idle connections: {took:.0f} ms; the worker closed "
              f"{closed} idle ones to stay within its limit")
        assert closed >= 2000 - 512
    finally:
        for conn in idle:
            conn.close()


def _closed_by_server(conn: socket.socket) -> bool:
    conn.setblocking(False)
    try:
        return conn.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_silent_and_slow_connections_are_timed_out(service: Service) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as silent, \
            socket.create_connection(("127.0.0.1", service.port), timeout=10) as slow_head, \
            socket.create_connection(("127.0.0.1", service.port), timeout=10) as slow_body:
        started = time.monotonic()
        slow_head.sendall(b"GET /cds-services HTTP/1.1\r\nHost: itb\r\n")
        slow_body.sendall(b"POST /cds-services/itb-patient-view HTTP/1.1\r\nHost: itb\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        assert silent.recv(100) == b""  # closed without a word: nobody asked anything
        assert slow_head.recv(100).startswith(b"HTTP/1.1 408 ")
        assert slow_body.recv(100).startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 10


def test_too_many_header_fields_get_431(service: Service) -> None:
    headers = {f"x-h{i}": "1" for i in range(150)}
    response = httpx.get(service.url + "/cds-services", headers=headers)
    assert response.status_code == 431
    assert response.json()["issue"][0]["code"] == "too-costly"
    assert httpx.get(service.url + "/cds-services").status_code == 200


class StreamingFhirServer:
    """Answers every request with a chunked Bundle that goes on for ``total`` bytes, and
    counts what it managed to send before the client hung up."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        chunk = b" " * MB
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
                framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
                opening = b'{"resourceType":"Bundle","entry":['
                conn.sendall(f"{len(opening):x}\r\n".encode() + opening + b"\r\n")
                for _ in range(self.total // MB):
                    conn.sendall(framed)
                    self.sent += len(chunk)
            except OSError:
                return


@pytest.fixture
def streaming() -> Iterator[StreamingFhirServer]:
    server = StreamingFhirServer(300 * MB)
    yield server
    server.sock.close()


def test_a_fhir_server_streaming_300_mb_does_not_take_the_worker(
        service: Service, streaming: StreamingFhirServer) -> None:
    with httpx.Client(base_url=service.url, timeout=60) as http:
        probe_latencies(http, 3)
        before = service.rss_mb()
        body = probe_request()
        del body["prefetch"]["observations"]  # fetched from fhirServer: the stream
        body["fhirServer"] = f"http://127.0.0.1:{streaming.port}/fhir"
        response = http.post(PATH, json=body)
    peak = service.rss_peak_mb()
    print(f"\n300 MB offered, {streaming.sent / MB:.0f} MB sent before the service hung up; "
          f"worker RSS {before:.0f} MB before, peak {peak:.0f} MB; answer {response.status_code}")
    assert response.status_code == 200, response.text  # observations are not required
    assert streaming.sent < 64 * MB
    assert peak < 250
