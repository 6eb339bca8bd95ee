"""The card gallery: every scenario's cards as an EHR shows them, for the committee's review.

Each scenario is answered by the real engine at its anchor day (so the dates are the ones its
story tells, and the page is the same on any day), and its cards are drawn with the sandbox's
card markup and styles: indicator, summary, the detail markdown rendered as the sandbox renders
it (raw HTML off), source, suggestions and override reasons. ``/sandbox/gallery`` serves it;
``itb-cds rulebook`` writes it as one self-contained file next to the rule book.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from itertools import groupby
from typing import Any

from fastapi import APIRouter
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.errors import CdsError
from cds_service.sandbox.fixture_library import FixtureLibrary
from cds_service.sandbox.markdown import render_markdown
from cds_service.sandbox.page import CONTENT_SECURITY_POLICY
from cds_service.sandbox.scenarios import Scenario
from cds_service.services import SERVICES_BY_ID

_TEMPLATES = Environment(
    loader=PackageLoader("cds_service.sandbox", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_STYLES = ("sandbox.css", "gallery.css")


@dataclass(frozen=True, slots=True)
class Entry:
    """One scenario and the cards the service answered it with (at its anchor)."""

    scenario: Scenario
    status: int
    cards: tuple[dict[str, Any], ...]


class _Clock:
    """The engine's now: each scenario's anchor in turn."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def answer_every_scenario(scenarios: list[Scenario], settings: Settings) -> list[Entry]:
    """Every scenario sent to its service at its anchor, by one engine (no audit)."""
    clock = _Clock()
    engine = Engine.build(settings, clock)
    entries = []
    try:
        for s in scenarios:
            clock.now = s.anchor
            try:
                result = await engine.invoke(SERVICES_BY_ID[s.service], s.request)
            except CdsError:
                entries.append(Entry(s, 412, ()))
                continue
            entries.append(Entry(s, 200, tuple(result.body["cards"])))
    finally:
        await engine.aclose()
    return entries


def digest(entries: list[Entry]) -> str:
    """What the gallery shows, as a SHA-256: the static file carries it so a test can tell
    a stale file from a fresh one without comparing renderer bytes."""
    shown = [[e.scenario.id, e.status, [_shown(c) for c in e.cards]] for e in entries]
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def _shown(card: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in card.items() if k not in ("uuid", "suggestions")} | {
        "suggestions": [s["label"] for s in card.get("suggestions", [])]}


def _card_view(card: dict[str, Any]) -> dict[str, Any]:
    finding = card.get("extension", {}).get("itb-cds.finding", {})
    return {
        "indicator": card["indicator"],
        "rule": finding.get("rule", ""),
        "outcome": finding.get("outcome", ""),
        "summary": card["summary"],
        "detail": Markup(render_markdown(card.get("detail", ""))),  # raw HTML is escaped
        "source": card.get("source", {}),
        "suggestions": [s["label"] for s in card.get("suggestions", [])],
        "reasons": card.get("overrideReasons", []),
    }


def _families(entries: list[Entry]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for family, items in groupby(entries, key=lambda e: e.scenario.family):
        yield family, [{"scenario": e.scenario, "status": e.status,
                        "cards": [_card_view(c) for c in e.cards]} for e in items]


def gallery_html(entries: list[Entry], *, standalone: bool) -> str:
    """The gallery page; ``standalone`` inlines its styles (a file opened from disk)."""
    styles = ""
    if standalone:
        styles = "\n".join(
            resources.files("cds_service.sandbox").joinpath("static", name).read_text()
            for name in _STYLES)
    ordered = sorted(entries, key=lambda e: (e.scenario.family, e.scenario.id))
    return _TEMPLATES.get_template("gallery.html").render(
        families=list(_families(ordered)), standalone=standalone, styles=Markup(styles),
        digest=digest(entries), count=sum(len(e.cards) for e in entries),
        scenarios=len(entries))


def gallery_router(library: FixtureLibrary, settings: Settings) -> APIRouter:
    router = APIRouter(prefix="/sandbox", tags=["sandbox"], include_in_schema=False)
    cached: list[str] = []

    @router.get("/gallery")
    async def gallery() -> Response:
        if not cached:
            scenarios = list(await run_in_threadpool(library.scenarios))
            cached.append(gallery_html(await answer_every_scenario(scenarios, settings),
                                       standalone=False))
        return HTMLResponse(cached[0], headers={"Content-Security-Policy":
                                                CONTENT_SECURITY_POLICY})

    @router.get("/gallery.css")
    async def styles() -> Response:
        body = resources.files("cds_service.sandbox").joinpath("static", "gallery.css")
        return Response(body.read_bytes(), media_type="text/css; charset=utf-8",
                        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    return router
