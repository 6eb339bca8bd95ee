"""A 150-patient clinic panel (bench/panel.py) on a loopback FHIR server, and the worklist run
over it the three ways a panel can be read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from bench.panel import ANCHOR, GROUP_ID, Planned, plan, resources
from bench.panel_server import PanelStore, serving
from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.worklist import Panel, Worklist

# The real-Chromium fixtures of the sandbox tests, for the worklist page.
from tests.sandbox.conftest import browser, chromium_path, screenshots  # noqa: F401

PATIENTS = 150
TOKEN = "worklist-test-token-7f3a"


@pytest.fixture(scope="session")
def planned() -> list[Planned]:
    return plan(PATIENTS)


@pytest.fixture(scope="session")
def store() -> PanelStore:
    return PanelStore(resources(PATIENTS))


@pytest.fixture(scope="session")
def panel_url(store: PanelStore) -> Iterator[str]:
    with serving(store) as url:
        yield url


def run_worklist(url: str, group: str | None, **limits: Any) -> Panel:
    settings = Settings(worklist=limits)

    async def go() -> Panel:
        engine = Engine.build(settings, lambda: ANCHOR)
        try:
            return await Worklist(engine, settings).run(url, TOKEN, group, ANCHOR)
        finally:
            await engine.aclose()

    return asyncio.run(go())


@pytest.fixture(scope="session")
def exported(panel_url: str) -> Panel:
    """The panel read through Group/$export (the server advertises it)."""
    return run_worklist(panel_url, GROUP_ID)

