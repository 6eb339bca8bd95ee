"""The JWT replay cache: a client token's ``jti`` is accepted once per issuer.

``InMemoryReplayCache`` serves a single worker. ``DatabaseReplayCache`` keeps the ids in the
``jwt_replay`` table of the database every worker of a node shares (the audit database; its
migrations create the table), so a token replayed to another worker is refused too.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import BigInteger, String, column, delete, insert, select, table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

# Expired rows are swept on one call in this many; the other calls clear only their own key.
JTI_PRUNE_EVERY = 100

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
