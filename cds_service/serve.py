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

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    log_level: str = "info"
    access_log: bool = True


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
    config = uvicorn.Config(APP, host=options.host, port=options.port,
                            log_level=options.log_level, access_log=options.access_log,
                            proxy_headers=False, server_header=False, **_limits())
    # The app first, the socket second: the kernel queues connections on a bound socket,
    # and a worker still importing would hold them for seconds.
    config.load()
    sock = bind(options.host, options.port)
    uvicorn.Server(config).run(sockets=[sock])


class GaveUp(RuntimeError):
    """Workers kept dying at start; the supervisor stopped."""


def serve(options: ServeOptions) -> None:
    """Run until SIGINT/SIGTERM; with one worker, or without SO_REUSEPORT balancing, this is
    plain ``uvicorn.run``."""
    if options.workers <= 1 or not reuse_port_balances():
        import uvicorn

        uvicorn.run(APP, host=options.host, port=options.port, workers=options.workers,
                    log_level=options.log_level, access_log=options.access_log,
                    proxy_headers=False, server_header=False, **_limits())
        return
    if options.port == 0:
        raise ValueError("several workers need a fixed port to share")
    # Fail here, in the supervisor, when the port is taken: not N times in the workers. The
    # probe has no SO_REUSEPORT, so another instance's workers make it fail too.
    bind(options.host, options.port, reuse_port=False).close()

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
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    from cds_service.profile import settings_or_exit

    settings_or_exit("cds_service.serve", args.host)  # one line per refusal, exit 2
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        serve(ServeOptions(host=args.host, port=args.port, workers=args.workers,
                           log_level=args.log_level, access_log=args.access_log))
    except GaveUp as exc:
        print(f"cds_service.serve: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
