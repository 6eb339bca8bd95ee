"""``/sandbox``: an integration page that sends fixture (or pasted) CDS Hooks requests to the
real service endpoints, renders the cards as an EHR would, posts real feedback, and shows
the audit trail of the call.

The page is server-rendered HTML with one small script (no build step). Everything it shows
comes from the service's public endpoints, except three helpers under ``/sandbox/api``:
the fixtures (requests shifted to the service's today), safe markdown rendering of card
details, and the audit trail of a call about a fixture patient. The template tells the script
the auth mode and the public base URL, so that in JWT mode the page can say what a token needs;
neither is a secret, and no secret reaches the page.
"""

from __future__ import annotations

from importlib import resources
from itertools import groupby
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from cds_service.api.body import read_json
from cds_service.api.errors import ApiError
from cds_service.api.responses import JsonResponse
from cds_service.config import Settings
from cds_service.sandbox.fixture_library import FixtureLibrary
from cds_service.sandbox.markdown import render_markdown
from cds_service.sandbox.scenarios import Scenario
from cds_service.services import SERVICES

if TYPE_CHECKING:
    from cds_service.runtime import Runtime

# The page runs only its own script and styles; rendered card markdown cannot run anything
# even if it slipped through, and the page cannot be framed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
STATIC_FILES = {
    "sandbox.js": "text/javascript; charset=utf-8",
    "sandbox.css": "text/css; charset=utf-8",
}
MAX_MARKDOWN_ITEMS = 100
MAX_MARKDOWN_CHARS = 20_000

_TEMPLATES = Environment(
    loader=PackageLoader("cds_service.sandbox", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class MarkdownRequest(BaseModel):
    markdown: list[str] = Field(max_length=MAX_MARKDOWN_ITEMS)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": CONTENT_SECURITY_POLICY}


def fixture_summary(s: Scenario) -> dict[str, Any]:
    return {
        "id": s.id,
        "title": s.title,
        "story": s.story,
        "family": s.family,
        "service": s.service,
        "expected": [e.model_dump(exclude_none=True) for e in s.expected],
    }


def sandbox_router(library: FixtureLibrary, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/sandbox", tags=["sandbox"], include_in_schema=False)

    @router.get("")
    async def page(request: Request) -> Response:
        scenarios = await run_in_threadpool(library.scenarios)
        families = [(family, list(items)) for family, items in
                    groupby(scenarios, key=lambda s: s.family)]
        html = _TEMPLATES.get_template("sandbox.html").render(
            families=families,
            services=SERVICES,
            auth_mode=settings.auth_mode.value,
            # Not a secret: every token's aud is built from it, and a developer signing one
            # locally has to know it.
            public_base_url=settings.public_base_url,
        )
        return HTMLResponse(html, headers=_page_headers())

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            raise ApiError(404, "not found")
        body = resources.files("cds_service.sandbox").joinpath("static", name).read_bytes()
        return Response(body, media_type=media_type, headers=_page_headers())

    @router.get("/api/fixtures")
    async def fixtures() -> Response:
        scenarios = await run_in_threadpool(library.scenarios)
        return JsonResponse({"fixtures": [fixture_summary(s) for s in scenarios]})

    @router.get("/api/fixtures/{scenario_id}/request")
    async def fixture_request(scenario_id: str, request: Request) -> Response:
        scenario = await run_in_threadpool(library.scenario, scenario_id)
        if scenario is None:
            raise ApiError(404, f"unknown fixture: {scenario_id[:64]}")
        now = _runtime(request).engine.clock()
        return JsonResponse(library.request(scenario, now))

    @router.get("/api/audit/{hook_instance}")
    async def audit(hook_instance: str, request: Request) -> Response:
        store = _runtime(request).store
        calls = await run_in_threadpool(store.calls_for, hook_instance[:64])
        # Only calls the sandbox itself could have made: about a fixture's synthetic patient,
        # without a client token (the page sends none; a JWT-authenticated call came from a
        # real CDS client) and with no FHIR server but this service's own /fhir. This page is
        # not an audit viewer and must not show who looked at a chart, or from where.
        own_fhir = settings.public_base_url + "/fhir"
        visible = [c for c in calls if library.is_fixture_patient(c.patient_id)
                   and c.client.iss is None
                   and c.fhir_server in (None, own_fhir, own_fhir + "/")]
        if not visible:
            raise ApiError(404, "no recorded call about a fixture patient has that hookInstance")
        feedback = await run_in_threadpool(store.stored_feedback, hook_instance=hook_instance)
        return JsonResponse(
            {
                "calls": [c.model_dump(mode="json", exclude_none=True) for c in visible],
                "feedback": [
                    f.record.model_dump(mode="json", exclude_none=True) | {"seq": f.seq}
                    for f in feedback
                ],
            }
        )

    @router.post("/api/markdown")
    async def markdown(request: Request) -> Response:
        body = await read_json(request, max_bytes=MAX_MARKDOWN_ITEMS * MAX_MARKDOWN_CHARS,
                               max_depth=4)
        try:
            parsed = MarkdownRequest.model_validate(body)
        except ValidationError:
            raise ApiError(400, "expected {\"markdown\": [string, ...]}") from None
        return JsonResponse(
            {"html": [render_markdown(text[:MAX_MARKDOWN_CHARS]) for text in parsed.markdown]}
        )

    return router
