"""What a connection may cost a worker before the app sees a request.

uvicorn's HTTP protocol has no limit on the size or count of request headers, no timeout
until the headers or the body have arrived, and no connection limit that spares idle
connections: a 50 MB header blocked a worker's event loop for seconds, and 2,500 silent
connections took every file descriptor. ``GuardedHttpToolsProtocol`` is uvicorn's httptools
protocol with those limits (all settings, see ``ConnectionLimits``):

- request line and headers over ``max_header_bytes``, or more than ``max_header_count``
  headers: 431, counted on the bytes as they arrive, before the parser buffers them;
- no complete request head within ``header_timeout_seconds`` of the connection (or of its
  first byte on a kept-alive one): 408 and closed (closed silently if nothing came);
- a body not complete within ``body_timeout_seconds`` of its head: 408 and closed;
- at ``max_connections`` a new connection closes the longest-idle one (an idle connection
  costs a client nothing to reopen), then a slow request head; if every connection is busy
  with a request, the new one gets 503 with Retry-After.

A refused connection is answered and then drained for a moment before it closes: closing a
socket with unread data sends a reset, and the client would lose the answer with it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
from dataclasses import dataclass
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cds_service.api.errors import operation_outcome
from cds_service.config import Settings

log = logging.getLogger("itb_cds.http")

LINGER_SECONDS = 2.0  # how long a refused connection is drained before it is closed
SLOW_HEAD_SECONDS = 1.0  # a request head older than this may be evicted for a new connection
# Descriptors a worker needs besides its connections: database, spool, logs, FHIR clients.
SPARE_DESCRIPTORS = 128
_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large",
            503: "Service Unavailable"}


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    max_header_count: int
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    retry_after_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.max_header_bytes, settings.max_header_count,
                   settings.header_timeout_seconds, settings.body_timeout_seconds,
                   settings.max_connections, settings.retry_after_seconds)


class _HeadTooLarge(Exception):
    """Raised from a parser callback; httptools wraps it, ``data_received`` answers 431."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        # idle: no byte of a request yet; head: request head arriving; body: its body
        # arriving; app: being answered; closing: refused, draining.
        self.phase = "idle"
        self.since = self.loop.time()
        self.head_bytes = 0  # bytes received since the head began (body bytes may be in)
        self.head_size = 0  # the head as parsed: URL and header fields
        self.head_count = 0
        self.timer: asyncio.TimerHandle | None = None

    # -- connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.since = self.loop.time()
        self._arm(self.limits.header_timeout_s)
        if len(self.connections) > self.limits.max_connections and not self._evict_one():
            log.warning("refused a connection: %d connections, all busy",
                        len(self.connections) - 1)
            self._refuse(503, "too many connections; retry later", retry_after=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _evictable(self) -> tuple[int, float] | None:
        """(preference, since) if this connection may be closed for a new one."""
        if self.phase == "closing":
            return (0, self.since)
        if self.phase == "idle":
            return (1, self.since)
        if self.phase == "head" and self.loop.time() - self.since > SLOW_HEAD_SECONDS:
            return (2, self.since)
        return None

    def _evict_one(self) -> bool:
        best: tuple[tuple[int, float], GuardedHttpToolsProtocol] | None = None
        for other in self.connections:
            if other is self or not isinstance(other, GuardedHttpToolsProtocol):
                continue
            rank = other._evictable()
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, other)
        if best is None:
            return False
        victim = best[1]
        self.connections.discard(victim)  # counted out now; connection_lost comes later
        victim.phase = "closing"
        victim._disarm()
        victim.transport.close()
        return True

    # -- bytes ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.phase == "closing":
            return  # drained: see the module docstring
        self._unset_keepalive_if_required()
        if self.phase == "idle":
            self._start_head()
        if self.phase == "head":
            # Counted before parsing: httptools buffers a header until it is complete.
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # the service speaks no WebSocket
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, str(exc.__context__))
                return
            log.info("invalid HTTP request (%s)", type(exc).__name__)
            self._refuse(400, "invalid HTTP request")
            return
        if self.phase == "head" and self.head_bytes > self.limits.max_header_bytes:
            self._refuse(431, f"request head larger than {self.limits.max_header_bytes} bytes")

    def _start_head(self) -> None:
        self.phase = "head"
        self.since = self.loop.time()
        self.head_bytes = 0
        self.head_size = 0
        self.head_count = 0
        self._arm(self.limits.header_timeout_s)

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.phase != "head":  # a pipelined request right after the previous one
            self._start_head()

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_count += 1
        self.head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self.head_count > self.limits.max_header_count:
            raise _HeadTooLarge(f"more than {self.limits.max_header_count} header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        # A head that arrived whole in one read was not caught by the byte count.
        if self.head_size > self.limits.max_header_bytes:
            raise _HeadTooLarge(f"request head larger than {self.limits.max_header_bytes} "
                                "bytes")
        self.phase = "body"
        self._arm(self.limits.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.phase = "app"
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self.phase == "app":
            self.phase = "idle"
            self.since = self.loop.time()
        super().on_response_complete()  # arms uvicorn's keep-alive timeout

    # -- timeouts and refusals ------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _timed_out(self) -> None:
        self.timer = None
        if self.transport.is_closing():
            return
        if self.phase == "idle":
            self.transport.close()  # connected and said nothing: nobody to answer
        elif self.phase == "head":
            self._refuse(408, "request head not received in time")
        elif self.phase == "body":
            if self.cycle is not None and self.cycle.response_started:
                self.transport.close()
            else:
                self._refuse(408, "request body not received in time")

    def _refuse(self, status: int, message: str, *, retry_after: bool = False) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app must not write after our answer
        body = orjson.dumps(operation_outcome(status, message))
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Bad Request')}",
                "content-type: application/fhir+json", f"content-length: {len(body)}",
                "connection: close", "cache-control: no-store",
                "x-content-type-options: nosniff"]
        if retry_after:
            head.append(f"retry-after: {self.limits.retry_after_s}")
        self.transport.write("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)
        self.phase = "closing"
        self._disarm()
        self.timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        if self.transport.can_write_eof():
            self.transport.write_eof()


def ensure_descriptors(max_connections: int) -> None:
    """Raise this process's soft descriptor limit to fit ``max_connections`` (up to the hard
    limit): running out of descriptors stops ``accept`` for everyone, idle or not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < wanted:
            log.warning("ITB_CDS_MAX_CONNECTIONS=%d needs %d descriptors; the hard limit is "
                        "%d", max_connections, wanted, hard)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The ``uvicorn.Config`` keywords that put these limits in force for ``settings``."""
    limits = ConnectionLimits.from_settings(settings)
    ensure_descriptors(limits.max_connections)
    options: dict[str, Any] = {
        "http": functools.partial(GuardedHttpToolsProtocol, limits=limits),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "ws": "none",  # no WebSocket route: an Upgrade header is ignored, not handed over
    }
    if settings.tls_certfile is not None:
        options.update(ssl_certfile=str(settings.tls_certfile),
                       ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None)
    return options
