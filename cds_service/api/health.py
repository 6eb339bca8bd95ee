"""Liveness, readiness and metrics for operators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from cds_service.api.responses import JsonResponse
from cds_service.runtime import Runtime

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return JsonResponse({"status": "ok"})


@router.get("/ready")
async def ready(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    database_ok = await run_in_threadpool(rt.store.ping)
    body = {
        "status": "ready" if database_ok else "not-ready",
        "database": "ok" if database_ok else "unreachable (audit records are spooled)",
        "catalogue": rt.engine.catalogue.version,
        "valueSets": rt.engine.terminology.versions,
        "authMode": rt.settings.auth_mode.value,
    }
    return JsonResponse(body, status_code=200 if database_ok else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    body = await run_in_threadpool(rt.metrics.render)  # reads every worker's files
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
