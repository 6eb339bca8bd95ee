"""Requests in flight and request-body bytes held, per worker: 503 with Retry-After beyond.

A request being answered holds memory (its body, then the parsed chart) until its answer
leaves; 48 concurrent 10 MB bodies took a worker to 617 MB. ``RequestLimits`` counts both
and refuses what would go over, early and cheaply, instead of letting the worker swell.
The operator probes are exempt: an overloaded worker must still say how it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.api.errors import ApiError, outcome_response
from cds_service.config import Settings

EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics"})


class RequestLimits:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.max_in_flight = settings.max_in_flight
        self.max_body_bytes = settings.max_body_bytes_in_flight
        self.retry_after = {"Retry-After": str(settings.retry_after_seconds)}
        # One event loop per worker: plain counters, no lock.
        self.in_flight = 0
        self.body_bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            response = outcome_response(503, "too many requests in progress; retry later",
                                        headers=self.retry_after)
            await response(scope, receive, send)
            return
        held = 0

        async def counted_receive() -> Message:
            nonlocal held
            message = await receive()
            size = len(message.get("body", b"")) if message["type"] == "http.request" else 0
            if size:
                if self.body_bytes + size > self.max_body_bytes:
                    # Raised into the route's body read, answered by the ApiError handler.
                    raise ApiError(503, "too much request data in progress; retry later",
                                   headers=self.retry_after)
                self.body_bytes += size
                held += size
            return message

        self.in_flight += 1
        try:
            await self.app(scope, counted_receive, send)
        finally:
            self.in_flight -= 1
            self.body_bytes -= held
