"""/metrics with two workers: every scrape, whichever worker answers it, reports every call
so far (prometheus_client's multiprocess mode), split by status, the ones that never reach a
route (400, 404, 405, 415) included."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import load_scenario, shifted_request
from tests.workers import two_workers

SERVICE = "/cds-services/itb-patient-view"
FIXTURE = PROJECT_ROOT / "fixtures" / "refill" / "refill-overdue.json"


def samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    text = httpx.get(url + "/metrics", timeout=10).text  # a new connection: any worker
    return [(s.labels, s.value) for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name]


def service_calls_by_status(url: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for labels, value in samples(url, "itb_cds_calls_total"):
        if labels["endpoint"] == "service":
            counts[labels["status"]] += int(value)
    return counts


def no_prefetch() -> dict[str, object]:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "p1"}}


def test_every_scrape_counts_every_call_of_both_workers(tmp_path: Path) -> None:
    scenario = load_scenario(FIXTURE)
    card_call = shifted_request(scenario, datetime.now(UTC))
    json_type = {"content-type": "application/json"}
    calls = [
        (200, lambda u: httpx.post(u + SERVICE, json=card_call)),
        (400, lambda u: httpx.post(u + SERVICE, content=b"{", headers=json_type)),
        (404, lambda u: httpx.post(u + "/cds-services/no-such-service", json=card_call)),
        (412, lambda u: httpx.post(u + SERVICE, json=no_prefetch())),
        (415, lambda u: httpx.post(u + SERVICE, content=b"{}",
                                   headers={"content-type": "text/plain"})),
        (405, lambda u: httpx.get(u + SERVICE)),
    ] * 3
    with two_workers(tmp_path, "--log-level", "info") as service:
        expected: Counter[str] = Counter()
        for status, call in calls:
            assert call(service.url).status_code == status
            expected[str(status)] += 1
            assert service_calls_by_status(service.url) == expected

        for _ in range(10):  # answered by either worker: the same figures
            assert service_calls_by_status(service.url) == expected
        assert sum(expected.values()) == len(calls) == 18

        cards = {(labels["rule"], labels["indicator"]): value
                 for labels, value in samples(service.url, "itb_cds_cards_total")}
        assert cards == {("itb-refill", "critical"): 3.0}
        outcomes: Counter[str] = Counter()
        for labels, value in samples(service.url, "itb_cds_calls_total"):
            if labels["endpoint"] == "service":
                outcomes[labels["outcome"]] += int(value)
        assert outcomes == {"cards": 3, "required_data_missing": 3, "rejected": 12}
        [(_, spooled)] = samples(service.url, "itb_cds_audit_spool_records")
        assert spooled == 0
        answered_by = {r["pid"] for r in service.records() if r["logger"] == "itb_cds.call"}
    assert len(answered_by) == 2, "one worker answered every call: nothing was summed"
