"""Liveness, readiness and metrics for operators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from cds_service.api.responses import JsonResponse
from cds_service.profile import startup_warnings
from cds_service.runtime import Runtime

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return JsonResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    database_ok = await run_in_threadpool(rt.store.ping)
    degraded = degraded_reasons(rt, database_ok)
    body: dict[str, object] = {
        "status": "degraded" if degraded else "ready",
        "database": "ok" if database_ok else "unreachable (audit records are spooled)",
        "catalogue": rt.engine.catalogue.version,
        "valueSets": rt.engine.terminology.versions,
        "authMode": rt.settings.auth_mode.value,
    }
    if degraded:
        body["degraded"] = degraded
    if warnings := startup_warnings(rt.settings):
        body["warnings"] = warnings
    return JsonResponse(body, status_code=503 if degraded else 200)


def degraded_reasons(rt: Runtime, database_ok: bool) -> list[str]:
    """Why the service answers calls but not as it should (503, so a human looks): the
    database (a ping passes on a full disk, so failing writes count too), the spool, the
    replay cache."""
    reasons = []
    if not database_ok:
        reasons.append("audit database unreachable: records are spooled")
    failing = rt.store.failing
    if failing is not None:
        reasons.append(f"{failing[1]} (since {failing[0].isoformat(timespec='seconds')})")
    if rt.store.spool.has_items():
        reasons.append("audit records in the spool wait for the database")
    if (replay := rt.replay.degraded) is not None:
        reasons.append(replay)
    return reasons


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    body = await run_in_threadpool(rt.metrics.render)  # reads every worker's files
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
