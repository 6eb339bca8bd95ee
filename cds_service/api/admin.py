"""Admin endpoints over the audit log, behind ``settings.admin_token``.

With no admin token configured the endpoints answer 404 and are left out of the OpenAPI
document: an unconfigured deployment does not reveal that they exist. The token has at least
32 characters (cds_service/profile.py refuses to start with a shorter one); every refused
attempt is logged and answered only after a delay, and past a per-minute budget a worker
answers 429 at once, so guessing is slow and cannot tie up the worker either.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cds_service.api.errors import outcome_response
from cds_service.api.responses import JsonResponse
from cds_service.audit.store import AuditStore
from cds_service.config import Settings

log = logging.getLogger("itb_cds.admin")

# Module level: FastAPI resolves these (postponed) annotations against module globals.
Authorization = Annotated[str | None, Header()]
FAILURE_WINDOW_S = 60.0


class AdminGate:
    """The bearer check of the admin endpoints, with the slowing of failed attempts."""

    def __init__(self, settings: Settings) -> None:
        self._token = settings.admin_token.encode("utf-8") if settings.admin_token else None
        self._delay = settings.admin_failure_delay_seconds
        self._budget = settings.admin_failures_per_minute
        self._failures: deque[float] = deque()

    async def denied(self, request: Request, authorization: str | None) -> Response | None:
        if self._token is None:
            return outcome_response(404, None)
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode("utf-8"),
                                                              self._token):
            return None
        return await self.refused(request)

    async def refused(self, request: Request) -> Response:
        """A failed attempt at a token-guarded path (admin, or the worklist's clinic tokens):
        logged, slowed, and past the budget refused at once; one budget for every path."""
        now = time.monotonic()
        while self._failures and now - self._failures[0] > FAILURE_WINDOW_S:
            self._failures.popleft()
        client = request.client.host if request.client else "-"
        # Never the presented value: a mistyped real token must not end up in a log.
        log.warning("admin: refused %s %s from %s (missing or wrong bearer token)",
                    request.method, request.url.path, client)
        if len(self._failures) >= self._budget:
            return outcome_response(429, "too many failed attempts; retry later",
                                    headers={"Retry-After": str(int(FAILURE_WINDOW_S))})
        self._failures.append(now)
        await asyncio.sleep(self._delay)
        return outcome_response(401, None, headers={"WWW-Authenticate": "Bearer"})


def admin_router(store: AuditStore, settings: Settings, gate: AdminGate) -> APIRouter:
    """The audit endpoints; ``gate`` is shared by every admin router, so failed attempts on
    any of them count against one budget."""
    router = APIRouter(prefix="/admin/audit", tags=["admin"],
                       include_in_schema=bool(settings.admin_token))

    @router.get("/report")
    async def audit_report(request: Request, since: str | None = None,
                           authorization: Authorization = None) -> Response:
        if (denied := await gate.denied(request, authorization)) is not None:
            return denied
        start: datetime | None = None
        if since is not None:
            try:
                start = datetime.fromisoformat(since)
            except ValueError:
                return outcome_response(400, "since: not an ISO date or date-time")
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
            try:
                start.astimezone(UTC)  # 0001-01-01T00:00+01:00 has no UTC time
            except OverflowError:
                return outcome_response(400, "since: out of range")
        report = await run_in_threadpool(store.report, start)  # the store is synchronous
        return JsonResponse(report.model_dump(mode="json"))

    @router.get("/verify")
    async def audit_verify(request: Request, authorization: Authorization = None) -> Response:
        if (denied := await gate.denied(request, authorization)) is not None:
            return denied
        result = await run_in_threadpool(store.verify)
        return JsonResponse(result.model_dump(mode="json"), status_code=200 if result.ok else 409)

    return router
