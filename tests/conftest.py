"""Shared test plumbing: settings on a temp SQLite file, an app with a fixed clock, and the
real service under uvicorn on a loopback port for tests that must go over HTTP."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.config import Settings

# Anything shaped like a compact JWS, and the bearer values the tests use.
_SECRET_SHAPES = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.|Bearer\s+[A-Za-z0-9._~+/-]{8,}"
)


@pytest.fixture(autouse=True)
def no_secrets_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Over the whole run: nothing logged may carry a JWT or a bearer token."""
    caplog.set_level(logging.DEBUG)
    yield
    leaks = [
        f"{record.name}:{record.levelname}"
        for phase in ("setup", "call", "teardown")
        for record in caplog.get_records(phase)  # type: ignore[arg-type]
        if _SECRET_SHAPES.search(record.getMessage())
    ]
    assert not leaks, f"a token was logged by {leaks}"


FIXED_NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
REQUIRE_SYSTEM_SERVICES = os.environ.get("ITB_CDS_REQUIRE_SYSTEM_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip when a system service is not installed, unless CI demands it."""
    if REQUIRE_SYSTEM_SERVICES:
        pytest.fail(f"{reason} (ITB_CDS_REQUIRE_SYSTEM_SERVICES=1)")
    pytest.skip(reason)


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'audit.sqlite'}",
        "spool_path": tmp / "audit.spool",
        "public_base_url": "http://testserver",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, clock=lambda: FIXED_NOW)) as test_client:
        yield test_client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server on 127.0.0.1 serving ``app`` in a background thread."""

    def __init__(self, app: FastAPI, port: int | None = None, **options: Any) -> None:
        """``options``: more uvicorn.Config keywords (the service's connection limits)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class Clock:
    """A clock a test moves: the service reads ``now`` at each call."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def clocked_service(tmp: Path, timeout: float = 30) -> Iterator[tuple[httpx.Client, Clock]]:
    """The service on loopback with a clock the test sets, and a client for it."""
    clock = Clock()
    port = free_port()
    settings = make_settings(tmp, public_base_url=f"http://127.0.0.1:{port}")
    server = LiveServer(create_app(settings, clock=clock), port)
    with server, httpx.Client(base_url=server.url, timeout=timeout) as http:
        yield http, clock


@pytest.fixture
def live_app_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    servers: list[LiveServer] = []

    def start(clock: Callable[[], datetime] = lambda: FIXED_NOW, **overrides: Any) -> LiveServer:
        port = free_port()
        overrides.setdefault("public_base_url", f"http://127.0.0.1:{port}")
        app = create_app(make_settings(tmp_path, **overrides), clock=clock)
        server = LiveServer(app, port)
        servers.append(server.__enter__())
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture
def live(live_app_factory: Callable[..., LiveServer]) -> Iterator[httpx.Client]:
    server = live_app_factory()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http
