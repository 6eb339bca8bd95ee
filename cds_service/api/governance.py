"""GET /admin/governance (page), .json and .csv: the committee's dashboard, admin token only.

The three answer the same ``Governance``; a bad parameter gets a 400 OperationOutcome naming
it, and nothing is read. A range longer than ``governance.max_periods`` periods is refused
rather than drawn: the caller narrows it or picks a coarser period.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from cds_service.api.admin import AdminGate, Authorization
from cds_service.api.errors import outcome_response
from cds_service.api.responses import STATIC_PAGE_CSP, JsonResponse
from cds_service.audit.dashboard import render_csv, render_page
from cds_service.audit.measures import Governance, GovernanceQuery
from cds_service.audit.store import AuditStore
from cds_service.config import Settings
from cds_service.errors import validation_details

# Filter values are ids from the service registry and the card catalogue.
_NAME = re.compile(r"[A-Za-z0-9._@;:+-]{1,128}")
Param = Annotated[str | None, Query(max_length=256)]


class GovernanceRefused(ValueError):
    """A query the dashboard will not answer; the message names why."""


def _periods_between(first: date, last: date, period: str) -> int:
    if period == "day":
        return (last - first).days + 1
    if period == "week":
        monday = first - timedelta(days=first.weekday())
        return (last - monday).days // 7 + 1
    return (last.year - first.year) * 12 + last.month - first.month + 1


def parse_query(settings: Settings, params: dict[str, str | None]) -> GovernanceQuery:
    values = {k: v for k, v in params.items() if v not in (None, "")}
    values.setdefault("period", settings.governance.default_period)
    for name in ("service", "rule", "outcome", "tier", "rule_version"):
        if name in values and not _NAME.fullmatch(str(values[name])):
            raise GovernanceRefused(f"{name}: not a service, rule, outcome, tier or version id")
    try:
        query = GovernanceQuery.model_validate(values)
    except ValidationError as exc:
        raise GovernanceRefused("; ".join(validation_details(exc.errors()))) from None
    if query.since and query.until and query.until <= query.since:
        raise GovernanceRefused("until: must be after since")
    return query


def check_span(store: AuditStore, settings: Settings, query: GovernanceQuery) -> None:
    """Refuse a range of more periods than the setting allows, before any aggregate runs."""
    first, last = query.since, query.until - timedelta(days=1) if query.until else None
    if first is None or last is None:
        span = store.governance_days()
        if span is None:
            return
        first, last = first or span[0], last or span[1]
    limit = settings.governance.max_periods
    if _periods_between(first, last, query.period) > limit:
        raise GovernanceRefused(f"the range spans more than {limit} {query.period}s: narrow "
                                "since/until or choose a longer period")


def slice_params(period: Param = None, since: Param = None, until: Param = None,
                 service: Param = None, rule: Param = None, outcome: Param = None,
                 tier: Param = None, rule_version: Param = None) -> dict[str, str | None]:
    return {"period": period, "since": since, "until": until, "service": service,
            "rule": rule, "outcome": outcome, "tier": tier, "rule_version": rule_version}


Slice = Annotated[dict[str, str | None], Depends(slice_params)]


def governance_router(store: AuditStore, settings: Settings, gate: AdminGate) -> APIRouter:
    router = APIRouter(prefix="/admin", tags=["admin"],
                       include_in_schema=bool(settings.admin_token))

    def measured(params: dict[str, str | None], render: Callable[[Governance], Response]
                 ) -> Response:
        try:
            query = parse_query(settings, params)
            check_span(store, settings, query)
        except GovernanceRefused as exc:
            return outcome_response(400, str(exc))
        return render(store.governance(query))

    async def answer(request: Request, authorization: str | None,
                     params: dict[str, str | None], render: Callable[[Governance], Response]
                     ) -> Response:
        """The slice measured and rendered, or why not; the store and the charts are
        synchronous, so both run in the threadpool."""
        if (denied := await gate.denied(request, authorization)) is not None:
            return denied
        return await run_in_threadpool(measured, params, render)

    def as_json(result: Governance) -> Response:
        return JsonResponse(result.model_dump(mode="json"))

    def as_csv(result: Governance) -> Response:
        return Response(render_csv(result), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="itb-cds-governance.csv"'})

    def as_page(result: Governance) -> Response:
        page = render_page(result, top_rules=settings.governance.chart_rules)
        return HTMLResponse(page, headers={"Content-Security-Policy": STATIC_PAGE_CSP})

    @router.get("/governance.json")
    async def governance_json(request: Request, params: Slice,
                              authorization: Authorization = None) -> Response:
        return await answer(request, authorization, params, as_json)

    @router.get("/governance.csv")
    async def governance_csv(request: Request, params: Slice,
                             authorization: Authorization = None) -> Response:
        return await answer(request, authorization, params, as_csv)

    @router.get("/governance")
    async def governance_page(request: Request, params: Slice,
                              authorization: Authorization = None) -> Response:
        return await answer(request, authorization, params, as_page)

    return router
