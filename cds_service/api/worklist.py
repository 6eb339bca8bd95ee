"""``GET /worklist``: the clinic worklist page (``?format=`` json, csv, ics or html), read from
the configured FHIR server (``ITB_CDS_WORKLIST__FHIR_SERVER``).

Off (404, as if it did not exist) until a FHIR server and a token are configured. The admin
token may ask for any panel (``?group=``) or every pump patient; a clinic token
(``worklist.clinic_tokens``: Group id -> token) sees its own panel only.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cds_service.api.admin import AdminGate, Authorization
from cds_service.api.errors import outcome_response
from cds_service.api.responses import STATIC_PAGE_CSP
from cds_service.config import Settings
from cds_service.rules.dates import aware
from cds_service.runtime import Runtime

ANY_PANEL = "*"
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _scope(settings: Settings, authorization: str | None) -> str | None:
    """ANY_PANEL for the admin token, the Group id for a clinic token, None otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if settings.admin_token and _same(token, settings.admin_token):
        return ANY_PANEL
    found = None
    for group, secret in settings.worklist.clinic_tokens.items():
        if _same(token, secret.get_secret_value()):  # every token compared: no early exit
            found = group
    return found


def worklist_router(settings: Settings, gate: AdminGate) -> APIRouter:
    """``gate``: the admin routes' own, so a wrong token here is logged, slowed and counted
    against the same budget as one at /admin."""
    configured = bool(settings.worklist.fhir_server
                      and (settings.admin_token or settings.worklist.clinic_tokens))
    # Out of the OpenAPI document until configured, as the admin paths are.
    router = APIRouter(tags=["worklist"], include_in_schema=configured)

    @router.get("/worklist")
    async def worklist(request: Request, format: str = "html", group: str | None = None,
                       at: str | None = None, authorization: Authorization = None) -> Response:
        limits = settings.worklist
        if not configured or limits.fhir_server is None:
            return outcome_response(404, None)
        scope = _scope(settings, authorization)
        if scope is None:
            return await gate.refused(request)
        if group is not None and not _FHIR_ID.match(group):
            return outcome_response(400, "group: not a FHIR id")
        if scope != ANY_PANEL:
            if group is not None and group != scope:
                return outcome_response(403, "a clinic token reads its own panel only")
            group = scope
        # Imported here: a worker that never serves the worklist need not load it (start-up).
        from cds_service.worklist.formats import MEDIA_TYPES, Format, render
        from cds_service.worklist.run import Worklist, WorklistError

        if format not in set(Format):
            return outcome_response(400, "format: json, csv, ics or html")
        runtime: Runtime = request.app.state.runtime
        try:
            now = aware(datetime.fromisoformat(at)) if at else runtime.engine.clock()
        except ValueError:
            return outcome_response(400, "at: not an ISO date or date-time")
        token = limits.fhir_token.get_secret_value() if limits.fhir_token else None
        try:
            panel = await Worklist(runtime.engine, settings).run(limits.fhir_server, token,
                                                                 group, now)
        except WorklistError as exc:
            return outcome_response(502, str(exc))
        fmt = Format(format)
        headers = {"Content-Security-Policy": STATIC_PAGE_CSP} if fmt is Format.HTML else {
            "Content-Disposition":
                f'attachment; filename="itb-worklist-{now.date().isoformat()}.{fmt.value}"'}
        # The page and its chart for up to max_patients rows: off the event loop.
        body = await run_in_threadpool(render, panel, fmt, runtime.engine.catalogue, settings)
        return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)

    return router
