"""The sandbox's synthetic /fhir holds a Group of the demo patients and exports it (Bulk Data
Group/$export), so the worklist runs against the sandbox in one command: each fixture's pump
appears with the refill and battery outcomes its story expects of patient-view."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from cds_service.config import PROJECT_ROOT, Settings
from cds_service.engine import Engine
from cds_service.sandbox.fixture_library import DEMO_GROUP_ID
from cds_service.sandbox.scenarios import load_scenarios
from cds_service.worklist import Panel, Worklist
from tests.conftest import FIXED_NOW, LiveServer

SCENARIOS = load_scenarios(PROJECT_ROOT / "fixtures")
PUMP_RULES = ("itb-refill", "itb-battery")


@pytest.fixture
def sandbox(live_app_factory: Callable[..., LiveServer]) -> str:
    return live_app_factory().url + "/fhir"


def test_the_demo_group_holds_every_demo_patient_and_exports_them(sandbox: str) -> None:
    with httpx.Client(timeout=30) as http:
        group = http.get(f"{sandbox}/Group/{DEMO_GROUP_ID}").json()
        members = {m["entity"]["reference"] for m in group["member"]}
        assert members == {f"Patient/{s.request['context']['patientId']}" for s in SCENARIOS}
        statement = http.get(f"{sandbox}/metadata").json()
        [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Group"]
        assert entry["operation"][0]["name"] == "export"
        kick_off = http.get(f"{sandbox}/Group/{DEMO_GROUP_ID}/$export",
                            params={"_type": "Patient,Device"},
                            headers={"Prefer": "respond-async"})
        assert kick_off.status_code == 202
        manifest = http.get(kick_off.headers["content-location"]).json()
        assert [o["type"] for o in manifest["output"]] == ["Patient", "Device"]
        lines = http.get(manifest["output"][0]["url"]).text.splitlines()
        assert {f"Patient/{json.loads(line)['id']}"
                for line in lines} == members
        assert http.get(f"{sandbox}/$export-status/not-a-job").status_code == 404
        # Comma-separated patients are alternatives (the worklist screens a Group so).
        pumped = [s.request["context"]["patientId"] for s in SCENARIOS
                  if s.id in ("refill-overdue", "battery-plan")]
        devices = http.get(f"{sandbox}/Device", params={"patient": ",".join(pumped)}).json()
        owners = {e["resource"]["patient"]["reference"] for e in devices["entry"]}
        assert owners == {f"Patient/{p}" for p in pumped}
        assert http.get(f"{sandbox}/Group/nobody/$export").status_code == 404


def worklist(sandbox: str) -> Panel:
    settings = Settings()

    async def go() -> Panel:
        engine = Engine.build(settings, lambda: FIXED_NOW)
        try:
            return await Worklist(engine, settings).run(sandbox, None, DEMO_GROUP_ID,
                                                        FIXED_NOW)
        finally:
            await engine.aclose()

    return asyncio.run(go())


def test_the_worklist_on_the_sandbox_gives_each_story_its_pump_outcomes(sandbox: str) -> None:
    panel = worklist(sandbox)
    assert panel.source == f"Group/{DEMO_GROUP_ID} (bulk export)"
    rows = {r.patient: r for r in panel.rows}
    assert len(rows) == len(panel.rows), "one row per pump: no demo patient has two"
    checked = 0
    for s in (s for s in SCENARIOS if s.service == "itb-patient-view"):
        expected = {(e.blocks or e.rule): e.outcome for e in s.expected
                    if e.rule in PUMP_RULES or e.blocks in PUMP_RULES}
        row = rows.get(s.request["context"]["patientId"])
        if row is None:
            assert not expected, s.id
            continue
        got = {"itb-refill": row.refill.outcome if row.refill else None,
               "itb-battery": row.battery.outcome if row.battery else None}
        assert {k: v for k, v in got.items() if v} == expected, s.id
        checked += 1
    assert checked >= 40
