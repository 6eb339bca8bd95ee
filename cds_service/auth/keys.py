"""Key sets published by CDS clients: fetched from allowlisted ``jku`` URLs and cached.

Only URLs the trust configuration allows are ever fetched (see tokens.Authenticator), with a
size and time limit, no redirects, and a refetch budget for unknown key ids.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from cds_service.auth.trust import InvalidJwks, KeySet, TrustedKey, parse_jwks

MAX_JWKS_BYTES = 256 * 1024
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
# After a refetch for an unknown kid, further unknown kids for the same jku wait this long
# before fetching again, so tokens with made-up kids cannot make us hammer the client's host.
UNKNOWN_KID_REFETCH_COOLDOWN_SECONDS = 30.0


class JwksUnavailable(Exception):
    """A key set could not be fetched or used; ``reason`` says why (no secrets in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _CachedKeySet:
    keys: KeySet
    fetched_at: float
    unknown_kid_refetch_at: float = -math.inf


class JwksCache:
    """Key sets fetched from allowlisted ``jku`` URLs, kept for ``ttl_seconds``.

    An unknown ``kid`` in a cached set triggers one refetch (the client may have rotated its
    keys), at most once per cooldown per ``jku``. Fetches of one ``jku`` are serialised so a
    burst of requests on a cold cache fetches once.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        ttl_seconds: float,
        allow_http: bool,
        clock: Callable[[], float] = time.time,
        unknown_kid_cooldown_seconds: float = UNKNOWN_KID_REFETCH_COOLDOWN_SECONDS,
    ) -> None:
        self._http = http
        self._ttl = ttl_seconds
        self._allow_http = allow_http
        self._clock = clock
        self._cooldown = unknown_kid_cooldown_seconds
        self._entries: dict[str, _CachedKeySet] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def key(self, jku: str, kid: str) -> TrustedKey | None:
        """The key ``kid`` of the set at ``jku`` (None if the set has no such key).

        Raises ``JwksUnavailable`` when the set had to be fetched and could not be.
        """
        lock = self._locks.setdefault(jku, asyncio.Lock())
        async with lock:
            now = self._clock()
            entry = self._entries.get(jku)
            if entry is None or now - entry.fetched_at >= self._ttl:
                entry = await self._refresh(jku, now)
                return entry.keys.get(kid)
            found = entry.keys.get(kid)
            if found is not None or now - entry.unknown_kid_refetch_at < self._cooldown:
                return found
            entry.unknown_kid_refetch_at = now
            entry = await self._refresh(jku, now)
            entry.unknown_kid_refetch_at = now
            return entry.keys.get(kid)

    async def _refresh(self, jku: str, now: float) -> _CachedKeySet:
        keys = await self._fetch(jku)
        entry = _CachedKeySet(keys=keys, fetched_at=now)
        self._entries[jku] = entry
        return entry

    async def _fetch(self, jku: str) -> KeySet:
        scheme = urlsplit(jku).scheme
        if scheme != "https" and not (scheme == "http" and self._allow_http):
            raise JwksUnavailable(f"jku scheme {scheme!r} is not allowed")
        body = bytearray()
        try:
            async with self._http.stream(
                "GET",
                jku,
                headers={"Accept": "application/json"},
                follow_redirects=False,
                timeout=JWKS_FETCH_TIMEOUT_SECONDS,
            ) as response:
                if response.status_code != 200:
                    raise JwksUnavailable(f"JWKS answered HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksUnavailable("JWKS is too large")
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"JWKS fetch failed ({type(exc).__name__})") from None
        try:
            return parse_jwks(json.loads(body), strict=False)
        except ValueError as exc:  # InvalidJwks and JSONDecodeError are both ValueErrors
            detail = str(exc) if isinstance(exc, InvalidJwks) else "not JSON"
            raise JwksUnavailable(f"JWKS unusable: {detail}") from None
