"""Admin endpoints over the audit log, behind ``settings.admin_token``.

With no admin token configured the endpoints answer 404: an unconfigured deployment does not
reveal that they exist.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header
from starlette.responses import Response

from cds_service.api.errors import outcome_response
from cds_service.api.responses import JsonResponse
from cds_service.audit.store import AuditStore
from cds_service.config import Settings

# Module level: FastAPI resolves these (postponed) annotations against module globals.
Authorization = Annotated[str | None, Header()]


def _denied(settings: Settings, authorization: str | None) -> Response | None:
    if not settings.admin_token:
        return outcome_response(404, None)
    scheme, _, token = (authorization or "").partition(" ")
    expected = settings.admin_token.encode("utf-8")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8"),
                                                             expected):
        return outcome_response(401, None, headers={"WWW-Authenticate": "Bearer"})
    return None


def admin_router(store: AuditStore, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/admin/audit", tags=["admin"])

    # Plain ``def``: FastAPI runs these in its threadpool, the store is synchronous.
    @router.get("/report")
    def audit_report(since: str | None = None, authorization: Authorization = None
                     ) -> Response:
        if (denied := _denied(settings, authorization)) is not None:
            return denied
        start: datetime | None = None
        if since is not None:
            try:
                start = datetime.fromisoformat(since)
            except ValueError:
                return outcome_response(400, "since: not an ISO date or date-time")
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
        return JsonResponse(store.report(start).model_dump(mode="json"))

    @router.get("/verify")
    def audit_verify(authorization: Authorization = None) -> Response:
        if (denied := _denied(settings, authorization)) is not None:
            return denied
        result = store.verify()
        return JsonResponse(result.model_dump(mode="json"), status_code=200 if result.ok else 409)

    return router
