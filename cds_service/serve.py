"""Several uvicorn workers, each with its own listening socket on the same port (SO_REUSEPORT).

``uvicorn --workers N`` (and gunicorn) bind one socket in the supervisor and let every worker
accept from it; a connection belongs to whichever worker won the race for it. An EHR keeps a
pool of persistent connections open, and they arrive together: measured here, 31 of 32 wrk
connections landed on one of two workers, which then ran at 100% while the other idled, and
the service answered at half its capacity with five times the latency. With SO_REUSEPORT each
worker binds its own socket and the kernel spreads new connections over them by a hash of the
connection, so a pool splits evenly between workers however it is opened.

Each worker is an ordinary ``uvicorn.Server`` on ``cds_service.asgi:app``; this module only
binds its socket and keeps N of them running (a worker that dies is started again). Where the
platform has no load-balancing SO_REUSEPORT (only Linux has), it falls back to uvicorn's own
workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING, Any

from cds_service.logs import LogFormat, configure_logging, describe

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("itb_cds.serve")  # not __name__: under -m that is __main__

APP = "cds_service.asgi:app"
BACKLOG = 2048
RESTART_CHECK_S = 0.5
STOP_GRACE_S = 20.0
# A worker that dies sooner than this after its start failed to start (a bad catalogue, a
# database it cannot migrate): after this many such deaths in a row the supervisor gives up
# and exits non-zero, so that systemd or Kubernetes see the failure instead of a restart loop.
EARLY_DEATH_S = 10.0
EARLY_DEATHS_TO_GIVE_UP = 5
_PR_SET_PDEATHSIG = 1
# prometheus_client's multiprocess mode: each worker writes its counts to files in this folder
# and a scrape adds them up (cds_service/metrics.py). Read at import, so set before spawning.
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXIT_STARTUP_FAILED = 3


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    log_level: str = "info"
    access_log: bool = True
    log_format: LogFormat = LogFormat.JSON


class StartupFailed(RuntimeError):
    """The app could not be built (settings, catalogue, value sets, trust): the message says
    why, in one line."""


def _uvicorn_config(options: ServeOptions) -> uvicorn.Config:
    import uvicorn

    # log_config=None: uvicorn's loggers keep the handler configure_logging installed, so its
    # lines are redacted and formatted like the service's own.
    config = uvicorn.Config(APP, host=options.host, port=options.port,
                            log_level=options.log_level, access_log=options.access_log,
                            log_config=None, proxy_headers=False, server_header=False,
                            **_limits())
    try:
        config.load()
    except Exception as exc:  # the loaders' messages name the file and the fault
        raise StartupFailed(describe(exc)) from None
    return config


def reuse_port_balances() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int, *, reuse_port: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    """A worker whose supervisor is gone (SIGKILL, OOM) must not go on serving the port
    unsupervised next to the next instance: Linux sends it SIGTERM when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _limits() -> dict[str, Any]:
    """uvicorn keywords for the header, timeout and connection limits of the ITB_CDS_*
    settings (cds_service/api/connections.py): every worker runs with them."""
    from cds_service.api.connections import uvicorn_options
    from cds_service.config import Settings

    return uvicorn_options(Settings())


def _worker(options: ServeOptions) -> None:
    import uvicorn

    _die_with_parent()
    configure_logging(options.log_level, options.log_format)
    # The app first, the socket second: the kernel queues connections on a bound socket,
    # and a worker still importing would hold them for seconds.
    try:
        config = _uvicorn_config(options)
    except StartupFailed as exc:
        log.critical("worker could not start: %s", exc)
        sys.exit(EXIT_STARTUP_FAILED)
    sock = bind(options.host, options.port)
    uvicorn.Server(config).run(sockets=[sock])


@contextlib.contextmanager
def _worker_environment(options: ServeOptions) -> Iterator[None]:
    """What every worker must agree on, exported before any starts: the address (settings
    derive the public base URL, hence the JWT audience, from it), the log level and format,
    and, with several workers, a metrics folder that this supervisor owns and removes."""
    saved = dict(os.environ)
    os.environ.update(ITB_CDS_HOST=options.host, ITB_CDS_PORT=str(options.port),
                      ITB_CDS_LOG_LEVEL=options.log_level,
                      ITB_CDS_LOG_FORMAT=str(options.log_format))
    owned: str | None = None
    if options.workers > 1 and not os.environ.get(METRICS_DIR_ENV):
        owned = tempfile.mkdtemp(prefix="itb-cds-metrics-")
        os.environ[METRICS_DIR_ENV] = owned
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)


class GaveUp(RuntimeError):
    """Workers kept dying at start; the supervisor stopped."""


def serve(options: ServeOptions) -> None:
    """Run until SIGINT/SIGTERM; with one worker, or without SO_REUSEPORT balancing, this is
    plain uvicorn. Raises ``StartupFailed`` (one worker) or ``GaveUp`` (several)."""
    configure_logging(options.log_level, options.log_format)
    with _worker_environment(options):
        if options.workers <= 1:
            import uvicorn

            config = _uvicorn_config(options)
            uvicorn.Server(config).run()
        elif not reuse_port_balances():
            import uvicorn

            uvicorn.run(APP, host=options.host, port=options.port, workers=options.workers,
                        log_level=options.log_level, access_log=options.access_log,
                        log_config=None, proxy_headers=False, server_header=False,
                        **_limits())
        else:
            _supervise(options)


def _supervise(options: ServeOptions) -> None:
    if options.port == 0:
        raise ValueError("several workers need a fixed port to share")
    # Fail here, in the supervisor, when the port is taken: not N times in the workers. The
    # probe has no SO_REUSEPORT, so another instance's workers make it fail too.
    try:
        bind(options.host, options.port, reuse_port=False).close()
    except OSError as exc:
        raise StartupFailed(f"cannot listen on {options.host}:{options.port}: "
                            f"{exc.strerror or exc}") from None

    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    started: dict[int, float] = {}

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(options,), daemon=False)
        process.start()
        started[id(process)] = time.monotonic()
        return process

    workers = [start() for _ in range(options.workers)]
    log.info("%d workers on %s:%d, one SO_REUSEPORT socket each (pids %s)",
             options.workers, options.host, options.port, [w.pid for w in workers])
    early_deaths = 0
    try:
        while not stop.wait(RESTART_CHECK_S):
            for i, worker in enumerate(workers):
                if worker.is_alive():
                    continue
                lived = time.monotonic() - started.pop(id(worker))
                if worker.exitcode == EXIT_STARTUP_FAILED:
                    # Its settings or data are wrong: another worker would fail the same way.
                    raise GaveUp(f"a worker died within {lived:.1f} s of starting: it could "
                                 "not start, and its log line above says why")
                early_deaths = early_deaths + 1 if lived < EARLY_DEATH_S else 0
                if early_deaths >= EARLY_DEATHS_TO_GIVE_UP:
                    raise GaveUp(f"{early_deaths} workers in a row died within "
                                 f"{EARLY_DEATH_S:g} s of starting; see their log above")
                log.error("worker %s exited with %s after %.1f s; starting another",
                          worker.pid, worker.exitcode, lived)
                workers[i] = start()
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: uvicorn finishes in-flight requests, then stops
        for worker in workers:
            worker.join(STOP_GRACE_S)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> None:
    """``python -m cds_service.serve --host H --port P --workers N``: the production command.

    The supervisor only binds, spawns and watches, so it imports nothing of the service
    (``itb-cds serve`` first loads the whole CLI, ~1 s of a cold start); the workers import the
    app and read their ``ITB_CDS_*`` settings themselves.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cds_service.serve",
                                     description=main.__doc__.splitlines()[0] if main.__doc__
                                     else None)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    levels = ("debug", "info", "warning", "error", "critical")
    parser.add_argument("--log-level", choices=levels, type=str.lower,
                        default=os.environ.get("ITB_CDS_LOG_LEVEL", "info").lower())
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat],
                        default=os.environ.get("ITB_CDS_LOG_FORMAT", LogFormat.JSON.value))
    args = parser.parse_args(argv)
    from cds_service.profile import settings_or_exit

    settings_or_exit("cds_service.serve", args.host)  # one line per refusal, exit 2
    try:
        serve(ServeOptions(host=args.host, port=args.port, workers=args.workers,
                           log_level=args.log_level, access_log=args.access_log,
                           log_format=LogFormat(args.log_format)))
    except (GaveUp, StartupFailed) as exc:
        print(f"cds_service.serve: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
