"""The JWT replay cache: a client token's ``jti`` is accepted once per issuer.

``InMemoryReplayCache`` serves a single worker. ``DatabaseReplayCache`` keeps the ids in the
``jwt_replay`` table of the database every worker of a node shares (the audit database; its
migrations create the table), so a token replayed to another worker is refused too.
``FallbackReplayCache`` keeps answering while that database is down, with a cache per worker.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import BigInteger, String, column, delete, insert, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

log = logging.getLogger("itb_cds.auth")

# Expired rows are swept on one call in this many; the other calls clear only their own key.
JTI_PRUNE_EVERY = 100
# While the shared cache is down it is tried again on every call when it fails fast (refused,
# gone), but only this often when a try takes longer: a database that times out instead of
# refusing would otherwise hold every call for its connect timeout.
SHARED_RETRY_SECONDS = 5.0
SLOW_FAILURE_SECONDS = 0.25

# The columns used here; the table (keys, index) is defined and created with the audit schema.
_jwt_replay = table(
    "jwt_replay",
    column("iss", String),
    column("jti", String),
    column("expires_at", BigInteger),  # epoch seconds, UTC
)


class ReplayCache(Protocol):
    """Remembers token ids so that a token is accepted once.

    ``remember`` returns True when ``(iss, jti)`` was not seen before (and records it until
    ``expires_at``, after which the token would be refused as expired anyway), False when it
    is a replay. Implementations shared by several workers must make the check-and-record
    atomic.
    """

    def remember(self, iss: str, jti: str, expires_at: datetime) -> bool: ...


class InMemoryReplayCache:
    """A per-process ``ReplayCache``; enough for a single worker."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[tuple[str, str], float] = {}
        self._expiry_heap: list[tuple[float, tuple[str, str]]] = []

    def remember(self, iss: str, jti: str, expires_at: datetime) -> bool:
        key = (iss, jti)
        until = expires_at.timestamp()
        with self._lock:
            now = self._clock()
            self._forget_expired(now)
            if key in self._until:
                return False
            self._until[key] = until
            heapq.heappush(self._expiry_heap, (until, key))
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._until)

    def seen(self, iss: str, jti: str) -> bool:
        """Whether ``(iss, jti)`` is remembered and not yet expired (nothing is recorded)."""
        with self._lock:
            self._forget_expired(self._clock())
            return (iss, jti) in self._until

    def entries(self) -> list[tuple[str, str, datetime]]:
        """Every remembered, unexpired ``(iss, jti, expires_at)``."""
        with self._lock:
            self._forget_expired(self._clock())
            return [(iss, jti, datetime.fromtimestamp(until, UTC))
                    for (iss, jti), until in self._until.items()]

    def _forget_expired(self, now: float) -> None:
        while self._expiry_heap and self._expiry_heap[0][0] <= now:
            until, key = heapq.heappop(self._expiry_heap)
            if self._until.get(key) == until:
                del self._until[key]


class ReplayDatabase(Protocol):
    """The shared database a ``DatabaseReplayCache`` keeps its rows in."""

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction on a schema that has the ``jwt_replay`` table; raises its own
        error (the audit database: ``AuditUnavailable``) when the database is down."""
        ...


class DatabaseReplayCache:
    """A ``ReplayCache`` shared by the workers of one node, in their shared database."""

    def __init__(self, database: ReplayDatabase) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._calls = 0

    def remember(self, iss: str, jti: str, expires_at: datetime) -> bool:
        """True if (iss, jti) is fresh (now remembered), False if seen and not yet expired.

        Raises what the database raises for an outage: the auth layer must fail closed.
        """
        now = int(datetime.now(UTC).timestamp())
        expires = int(expires_at.timestamp()) if expires_at.tzinfo else int(
            expires_at.replace(tzinfo=UTC).timestamp())
        with self._lock:
            self._calls += 1
            prune = self._calls % JTI_PRUNE_EVERY == 1
        try:
            with self._database.transaction() as conn:
                if prune:
                    conn.execute(delete(_jwt_replay).where(_jwt_replay.c.expires_at <= now))
                else:
                    conn.execute(delete(_jwt_replay).where(
                        _jwt_replay.c.iss == iss, _jwt_replay.c.jti == jti,
                        _jwt_replay.c.expires_at <= now))
                seen = conn.execute(select(_jwt_replay.c.expires_at).where(
                    _jwt_replay.c.iss == iss, _jwt_replay.c.jti == jti)).first()
                if seen is not None:
                    return False
                conn.execute(insert(_jwt_replay).values(iss=iss, jti=jti, expires_at=expires))
        except IntegrityError:
            return False  # another worker remembered the same jti a moment ago
        return True


class FallbackReplayCache:
    """The shared cache, and while it is down a cache of this worker's own.

    An outage of the shared database must not refuse every client call (the audit log spools
    meanwhile), so this worker checks tokens against what it saw itself. The known gap: a
    token replayed to *another* worker in that window is not detected. When the database is
    back the tokens seen meanwhile are written to it, and any that another worker had accepted
    too is logged as a replay that got through.
    """

    def __init__(self, shared: ReplayCache, *, outages: tuple[type[BaseException], ...],
                 clock: Callable[[], float] = time.time) -> None:
        self._shared = shared
        self._outages = outages
        self._clock = clock
        self._local = InMemoryReplayCache(clock)
        self._lock = threading.Lock()
        self._degraded_since: float | None = None
        self._retry_at = 0.0

    @property
    def degraded(self) -> str | None:
        """Why replays are checked per worker, or None while the shared cache is in use."""
        since = self._degraded_since
        if since is None:
            return None
        started = datetime.fromtimestamp(since, UTC).isoformat(timespec="seconds")
        return (f"JWT replay cache is per worker since {started} (shared database "
                "unavailable): a token replayed to another worker is not detected")

    def remember(self, iss: str, jti: str, expires_at: datetime) -> bool:
        if self._local.seen(iss, jti):
            return False
        now = self._clock()
        if self._degraded_since is not None and now < self._retry_at:
            return self._local.remember(iss, jti, expires_at)
        started = time.monotonic()
        try:
            fresh = self._shared.remember(iss, jti, expires_at)
        except self._outages:
            slow = time.monotonic() - started > SLOW_FAILURE_SECONDS
            self._enter_outage(now, SHARED_RETRY_SECONDS if slow else 0.0)
            return self._local.remember(iss, jti, expires_at)
        if self._degraded_since is not None:
            self._leave_outage(now)
        return fresh

    def _enter_outage(self, now: float, retry_after: float) -> None:
        with self._lock:
            self._retry_at = now + retry_after
            if self._degraded_since is not None:
                return
            self._degraded_since = now
        log.warning("JWT replay cache: shared database unavailable; this worker checks "
                    "replays on its own until it is back (replays to other workers in the "
                    "meantime are not detected)")

    def _leave_outage(self, now: float) -> None:
        with self._lock:
            since, self._degraded_since = self._degraded_since, None
        if since is None:
            return
        crossed = 0
        for iss, jti, until in self._local.entries():
            try:
                if not self._shared.remember(iss, jti, until):
                    crossed += 1
            except self._outages:
                self._enter_outage(now, 0.0)
                return
        # Everything it held is in the shared cache now, which refuses those tokens itself.
        self._local = InMemoryReplayCache(self._clock)
        log.warning("JWT replay cache: shared database back after %.0f s", now - since)
        if crossed:
            log.warning("JWT replay cache: %d token id(s) accepted during the outage had been "
                        "accepted by another worker too (replays that got through)", crossed)
