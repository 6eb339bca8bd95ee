"""The worklist over a 150-patient panel on a loopback FHIR server: every pump patient listed
exactly once, with the outcomes the clinical arithmetic gives (bench/panel.py works them out
from the contract) and the very dates and tiers the patient-view cards give; nobody without an
active ITB pump (a morphine pain pump, a removed pump, an insulin pump) listed. The same
answer whichever way the panel is read. (bench/worklist_bench.py runs 2,000 patients.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bench.panel import ANCHOR, GROUP_ID, Planned
from bench.panel_server import PanelStore, serving
from cds_service.worklist import Panel, WorklistRow
from tests.conftest import LiveServer, free_port, make_settings
from tests.worklist.conftest import TOKEN, run_worklist

TRAPS = ("morphine-pump", "removed-pump", "insulin-pump")


def outcomes(row: WorklistRow) -> tuple[str | None, str | None]:
    return (row.refill.outcome if row.refill else None,
            row.battery.outcome if row.battery else "none")


def check_panel(panel: Panel, planned: list[Planned]) -> None:
    pumps = {p.patient_id: p for p in planned if p.kind == "pump"}
    listed = [r.patient for r in panel.rows]
    assert sorted(listed) == sorted(pumps), "each pump patient once, nobody else"
    for row in panel.rows:
        assert outcomes(row) == pumps[row.patient].expected, row.patient
        assert row.device is not None and row.device.startswith("Device/")
    assert {p.kind for p in planned} >= {"noise", "pump", *TRAPS}


def test_the_export_lists_every_pump_once_with_its_clinical_outcomes(
        exported: Panel, planned: list[Planned], store: PanelStore) -> None:
    check_panel(exported, planned)
    assert exported.source == f"Group/{GROUP_ID} (bulk export)"
    assert exported.population == len(planned) and exported.unreadable == 0
    # Every tier of both rules is on the panel.
    refill = {r.refill.outcome for r in exported.rows if r.refill}
    battery = {r.battery.outcome for r in exported.rows if r.battery}
    assert refill == {None, "notice", "due-soon", "overdue", "empty", "booked", "missing-data"}
    assert battery == {None, "notice", "plan", "end-of-service"}
    assert any(r.battery is None for r in exported.rows)  # the constant-flow pump
    assert store.authorizations == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize("group", [GROUP_ID, None], ids=["group-searches", "device-search"])
def test_plain_searches_give_the_same_rows(panel_url: str, group: str | None,
                                           exported: Panel, planned: list[Planned]) -> None:
    panel = run_worklist(panel_url, group, bulk_export=False, screen_batch=40)
    check_panel(panel, planned)
    assert panel.rows == exported.rows
    assert "searches" in panel.source if group else "search" in panel.source


def test_an_export_that_fails_falls_back_to_searches(store: PanelStore, exported: Panel
                                                     ) -> None:
    with serving(store, export="broken") as url:
        panel = run_worklist(url, GROUP_ID)
    assert panel.source == f"Group/{GROUP_ID} (searches)"
    assert panel.rows == exported.rows


def test_urgency_order_critical_first_then_by_due_date(exported: Panel) -> None:
    ranks = [row.urgency() for row in exported.rows]
    assert ranks == sorted(ranks)
    first_non_critical = next(i for i, r in enumerate(exported.rows)
                              if "critical" not in r.tiers())
    assert all("critical" in r.tiers() for r in exported.rows[:first_non_critical])
    assert first_non_critical >= 3


@pytest.fixture(scope="module")
def service(panel_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[httpx.Client]:
    from cds_service.app import create_app

    port = free_port()
    settings = make_settings(tmp_path_factory.mktemp("worklist-cards"),
                             public_base_url=f"http://127.0.0.1:{port}",
                             fhir_budget_seconds=20.0, fhir_timeout_seconds=20.0)
    with LiveServer(create_app(settings, clock=lambda: ANCHOR), port) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def cards_of(http: httpx.Client, panel_url: str, patient_id: str) -> list[dict[str, Any]]:
    """The patient-view cards of one patient, the service fetching the chart itself."""
    request = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
               "fhirServer": panel_url,
               "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer",
                                     "expires_in": 300, "scope": "patient/*.read",
                                     "subject": "itb-cds-test"},
               "context": {"userId": "Practitioner/nurse", "patientId": patient_id}}
    response = http.post("/cds-services/itb-patient-view", json=request)
    assert response.status_code == 200, response.text
    return [c["extension"]["itb-cds.finding"] | {"indicator": c["indicator"]}
            for c in response.json()["cards"]]


CARD_DATES = {"itb-refill": {"dueDate": "dueDate", "alarmDate": "alarmDate",
                             "emptyDate": "emptyDate", "lastRefillDate": "lastRefillDate",
                             "bookedDate": "booked"},
              "itb-battery": {"endOfServiceDate": "eosDate"}}


def test_rows_carry_the_dates_and_tiers_of_the_patient_view_cards(
        service: httpx.Client, panel_url: str, exported: Panel) -> None:
    compared = 0
    for row in exported.rows:
        cards = cards_of(service, panel_url, row.patient)
        by_rule = {c.get("blocks") or c["rule"]: c for c in cards
                   if c["rule"] in ("itb-refill", "itb-battery", "itb-data-quality")}
        for rule, status in (("itb-refill", row.refill), ("itb-battery", row.battery)):
            card = by_rule.get(rule)
            if status is None or status.outcome is None:
                assert card is None, (row.patient, rule)
                continue
            assert card is not None, (row.patient, rule)
            assert card["outcome"] == status.outcome and card["indicator"] == status.tier
            assert card.get("device") == row.device
            for key, field in CARD_DATES[rule].items():
                if getattr(status, field) is not None or key in card["dates"]:
                    assert card["dates"].get(key) == getattr(status, field), (row.patient, key)
                    compared += 1
            if card["rule"] == "itb-data-quality":
                assert [g for g in row.gaps if g.about == rule], row.patient
    assert compared > len(exported.rows)  # dates were compared, not skipped
