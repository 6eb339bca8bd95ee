"""The scenario fixtures are well-formed, cover the clinical contract, and travel in time.

(Whether the service returns each fixture's expected cards is tests/test_scenarios.py.)
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import (
    BUNDLE_SUFFIX,
    OUTCOME_INDICATORS,
    PREFETCH_KEYS,
    ExpectedCard,
    Scenario,
    bundle_path,
    load_bundle,
    load_scenario,
    load_scenarios,
    shift_date_string,
    shift_dates,
    shift_days,
    shifted_anchor,
    shifted_bundle,
    shifted_request,
)

FIXTURES = PROJECT_ROOT / "fixtures"
SCENARIO_PATHS = sorted(p for p in FIXTURES.rglob("*.json") if not p.name.endswith(BUNDLE_SUFFIX))
SCENARIOS = load_scenarios(FIXTURES)
BY_ID = {s.id: s for s in SCENARIOS}
ORDER_KEYS = frozenset(PREFETCH_KEYS) - {"observations", "appointments"}
BOOKING_KEYS = frozenset(PREFETCH_KEYS) - {"conditions", "allergies", "adverseEvents"}
HOOKS = {
    "itb-patient-view": "patient-view",
    "itb-order-select": "order-select",
    "itb-order-sign": "order-sign",
    "itb-appointment-book": "appointment-book",
}


def prefetch_entries(s: Scenario) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(key, index, resource) for every resource in the prefetch, the Patient included."""
    for key, value in s.request["prefetch"].items():
        if value is None:
            continue
        if key == "patient":
            yield key, 0, value
            continue
        for index, entry in enumerate(value.get("entry", [])):
            yield key, index, entry["resource"]


def canonical(resource: dict[str, Any]) -> str:
    return json.dumps(resource, sort_keys=True)


def is_malformed(s: Scenario, key: str, index: int) -> bool:
    return any(m.key == key and m.index == index for m in s.malformed)


# --------------------------------------------------------------------------- files


def test_there_are_at_least_44_scenarios_with_unique_ids() -> None:
    assert len(SCENARIOS) >= 44
    assert len(BY_ID) == len(SCENARIOS)


@pytest.mark.parametrize("path", SCENARIO_PATHS, ids=[p.stem for p in SCENARIO_PATHS])
def test_file_name_and_folder_match_id_and_family(path: Path) -> None:
    s = load_scenario(path)
    assert path.name == f"{s.id}.json"
    assert path.parent.name == s.family
    assert bundle_path(path).is_file()


def test_load_scenarios_skips_bundles(tmp_path: Path) -> None:
    source = SCENARIO_PATHS[0]
    (tmp_path / source.name).write_bytes(source.read_bytes())
    (tmp_path / bundle_path(source).name).write_bytes(bundle_path(source).read_bytes())
    assert [s.id for s in load_scenarios(tmp_path)] == [source.stem]


def test_fixtures_are_what_the_generator_writes() -> None:
    """Fixtures are generated, never hand-edited: rebuilding gives the committed bytes."""
    generator = load_generator()
    for build in generator.SCENARIOS:
        built = build()
        path = FIXTURES / built.family / f"{built.id}.json"
        doc = generator.scenario_document(built)
        assert path.read_text(encoding="utf-8") == generator.dump(doc), built.id
        bundle = generator.dump(generator.build_bundle(built, doc["request"]))
        assert bundle_path(path).read_text(encoding="utf-8") == bundle, built.id
    assert len(generator.SCENARIOS) == len(SCENARIOS)


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_fixtures", PROJECT_ROOT / "scripts" / "build_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve string annotations through sys.modules while the class is built.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("s", SCENARIOS, ids=list(BY_ID))
def test_request_is_a_complete_cds_hooks_call(s: Scenario) -> None:
    request = s.request
    assert request["hook"] == HOOKS[s.service]
    assert uuid.UUID(request["hookInstance"]).version == 5
    context = request["context"]
    assert context["userId"].startswith("Practitioner/")
    assert request["prefetch"]["patient"]["id"] == context["patientId"]
    expected_keys = {"itb-patient-view": frozenset(PREFETCH_KEYS),
                     "itb-appointment-book": BOOKING_KEYS}.get(s.service, ORDER_KEYS)
    assert set(request["prefetch"]) == expected_keys
    for key, value in request["prefetch"].items():
        if key != "patient" and value is not None:
            assert value["resourceType"] == "Bundle"
            assert value["type"] == "searchset"
    if s.service == "itb-appointment-book":
        proposed = context["appointments"]
        assert proposed["resourceType"] == "Bundle" and proposed["entry"]
        assert all(e["resource"]["resourceType"] == "Appointment" for e in proposed["entry"])
    elif s.service != "itb-patient-view":
        drafts = context["draftOrders"]
        assert drafts["resourceType"] == "Bundle"
        assert drafts["entry"]
    if s.service == "itb-order-select":
        drafted = {f"{e['resource']['resourceType']}/{e['resource']['id']}"
                   for e in context["draftOrders"]["entry"]}
        assert set(context["selections"]) <= drafted


def test_hook_instances_are_unique() -> None:
    instances = [s.request["hookInstance"] for s in SCENARIOS]
    assert len(set(instances)) == len(instances)


@pytest.mark.parametrize("s", SCENARIOS, ids=list(BY_ID))
def test_every_resource_is_valid_r4_except_the_marked_malformed_ones(s: Scenario) -> None:
    for key, index, resource in prefetch_entries(s):
        model = get_fhir_model_class(resource["resourceType"])
        if is_malformed(s, key, index):
            with pytest.raises(ValidationError):
                model.model_validate(resource)
        else:
            model.model_validate(resource)


@pytest.mark.parametrize("s", SCENARIOS, ids=list(BY_ID))
def test_every_matched_resource_belongs_to_the_patient(s: Scenario) -> None:
    patient = f"Patient/{s.request['context']['patientId']}"
    for key, index, resource in prefetch_entries(s):
        if key == "patient" or is_malformed(s, key, index):
            continue
        if resource["resourceType"] == "Medication":
            continue  # a product a medication use references: no patient of its own
        if resource["resourceType"] == "Appointment":
            actors = [p["actor"]["reference"] for p in resource["participant"]]
            assert patient in actors
            continue
        owner = resource.get("subject") or resource.get("patient")
        assert owner == {"reference": patient}, (key, resource["id"])


@pytest.mark.parametrize("path", SCENARIO_PATHS, ids=[p.stem for p in SCENARIO_PATHS])
def test_bundle_holds_the_same_resources_as_the_prefetch(path: Path) -> None:
    s = load_scenario(path)
    bundle = load_bundle(path)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "collection"
    in_bundle = Counter(canonical(e["resource"]) for e in bundle["entry"])
    in_prefetch = Counter(canonical(r) for _, _, r in prefetch_entries(s))
    assert in_bundle == in_prefetch
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"].endswith(f"/{resource['resourceType']}/{resource['id']}")


# --------------------------------------------------------------------------- expectations


def test_expected_cards_reject_unknown_codes_and_wrong_tiers() -> None:
    ExpectedCard(rule="itb-refill", outcome="overdue", indicator="critical")
    for bad in (
        {"rule": "itb-refill", "outcome": "late", "indicator": "critical"},
        {"rule": "itb-refill", "outcome": "overdue", "indicator": "warning"},
        {"rule": "itb-pump", "outcome": "overdue", "indicator": "critical"},
        {"rule": "itb-battery", "outcome": "plan", "indicator": "warning", "blocks": "itb-refill"},
        {"rule": "itb-data-quality", "outcome": "missing-data", "indicator": "info"},
    ):
        with pytest.raises(ValidationError):
            ExpectedCard.model_validate(bad)


def test_every_outcome_code_of_every_rule_is_expected_somewhere() -> None:
    seen = {(e.rule, e.outcome) for s in SCENARIOS for e in s.expected}
    wanted = {(rule, outcome) for rule, tiers in OUTCOME_INDICATORS.items() for outcome in tiers}
    assert wanted - seen == set()


def test_data_quality_is_expected_for_refill_battery_and_oral_dose() -> None:
    blocked = {e.blocks for s in SCENARIOS for e in s.expected if e.rule == "itb-data-quality"}
    assert {"itb-refill", "itb-battery", "itb-candidacy"} <= blocked


def test_coverage_of_services_traps_and_chart_shapes() -> None:
    services = Counter(s.service for s in SCENARIOS)
    assert services["itb-order-select"] >= 2
    assert services["itb-order-sign"] >= 2
    assert services["itb-appointment-book"] >= 8
    assert sum(1 for s in SCENARIOS if not s.expected) >= 15  # false-positive traps
    assert sum(1 for s in SCENARIOS if s.malformed) >= 1
    padded = [s for s in SCENARIOS if sum(1 for _ in prefetch_entries(s)) >= 300]
    assert len(padded) >= 3
    for s in padded:
        observations = s.request["prefetch"]["observations"]["entry"]
        loinc = [e for e in observations
                 if e["resource"].get("code", {}).get("coding", [{}])[0].get("system")
                 == "http://loinc.org"]
        assert len(loinc) >= 100, "unrelated vitals must arrive under 'observations'"
    sandbox = [s for s in SCENARIOS if "draftOrders" in s.request["context"]
               and "type" not in s.request["context"]["draftOrders"]]
    assert sandbox, "a Sandbox-style draftOrders Bundle without type"
    draft = sandbox[0].request["context"]["draftOrders"]["entry"][0]["resource"]
    assert "intent" not in draft
    assert isinstance(draft["category"], dict)


def test_malformed_markers_point_at_real_entries() -> None:
    for s in SCENARIOS:
        for marker in s.malformed:
            bundle = s.request["prefetch"][marker.key]
            assert 0 <= marker.index < len(bundle["entry"])


def test_anchors_are_in_2026_and_every_date_is_near_them() -> None:
    for s in SCENARIOS:
        assert s.anchor.year == 2026
        for text in date_strings(s.request):
            year = int(text[:4])
            assert s.anchor.year - 90 <= year <= s.anchor.year + 1, (s.id, text)


def date_strings(value: Any, key: str | None = None) -> Iterator[str]:
    """Every string that shifting would move (the shifter's own notion of a date)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from date_strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from date_strings(v, key)
    elif isinstance(value, str) and shift_dates(value, 1, key) != value:
        yield value


# --------------------------------------------------------------------------- date shifting


@pytest.mark.parametrize(
    ("original", "days", "shifted"),
    [
        ("2026-06-15", 10, "2026-06-25"),
        ("2026-06-15", -15, "2026-05-31"),
        ("2026-01-31", 1, "2026-02-01"),
        ("2026-12-31", 1, "2027-01-01"),
        ("2028-02-28", 1, "2028-02-29"),  # leap year
        ("2027-02-28", 1, "2027-03-01"),  # not a leap year
        ("2028-02-29", 365, "2029-02-28"),
        ("2024-03-01", -1, "2024-02-29"),
        ("2026-06-15T09:00:00Z", 3, "2026-06-18T09:00:00Z"),
        ("2026-06-15T23:59:59+02:00", 1, "2026-06-16T23:59:59+02:00"),
        ("2026-06-15T00:30:00-05:00", -1, "2026-06-14T00:30:00-05:00"),
        ("2026-06-15T09:00:00.123456Z", 20, "2026-07-05T09:00:00.123456Z"),
        ("2026-06-15T09:00:00.5+00:00", 366, "2027-06-16T09:00:00.5+00:00"),
        ("2026-06-15T09:00", 1, "2026-06-16T09:00"),
        ("2026-06", 10, "2026-06"),  # a partial date moves from mid-month
        ("2026-06", 20, "2026-07"),
        ("2026-01", -20, "2025-12"),
        ("2019", 100, "2019"),
        ("2019", 200, "2020"),
        ("2019", -200, "2018"),
        ("2019", 365 * 7 + 2, "2026"),
    ],
)
def test_shift_date_string_moves_each_fhir_format_and_keeps_it(
    original: str, days: int, shifted: str
) -> None:
    assert shift_date_string(original, days) == shifted
    assert shift_date_string(original, 0) == original


@pytest.mark.parametrize(
    "text",
    ["1+", "8637-20", "2026-13-01", "2026-02-30", "on 2026-06-15", "2026-06-15 09:00",
     "Patient/2019", "20260615", "12:30", "", "abcd", "2026-06-15T25:00:00Z"],
)
def test_shift_date_string_leaves_non_dates_alone(text: str) -> None:
    assert shift_date_string(text, 30) == text


def test_shift_dates_leaves_ids_codes_and_references_alone() -> None:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": "2019",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "1292", "display": "2019"}],
            "text": "2026-06-15",
        },
        "identifier": [{"system": "urn:example", "value": "2026-06-15"}],
        "subject": {"reference": "Patient/2026-06-15"},
        "authoredOn": "2026-06-15T09:00:00Z",
        "dosageInstruction": [{"timing": {"event": ["2026-06-15", "2026-06-16"]},
                               "doseAndRate": [{"doseQuantity": {"value": 2019}}]}],
        "extension": [{"url": "http://example.org/2026-06-15", "valueDate": "2026-06"}],
    }
    moved = shift_dates(resource, 31)
    assert moved["authoredOn"] == "2026-07-16T09:00:00Z"
    assert moved["dosageInstruction"][0]["timing"]["event"] == ["2026-07-16", "2026-07-17"]
    assert moved["extension"][0]["valueDate"] == "2026-07"
    untouched: list[tuple[str | int, ...]] = [
        ("id",), ("subject", "reference"), ("medicationCodeableConcept",), ("identifier",),
        ("extension", 0, "url"),
    ]
    for path in untouched:
        assert dig(moved, path) == dig(resource, path)
    assert moved["dosageInstruction"][0]["doseAndRate"] == resource["dosageInstruction"][0][
        "doseAndRate"
    ]


def dig(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def test_shift_days_counts_calendar_days_in_utc() -> None:
    anchor = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
    assert shift_days(anchor, anchor) == 0
    assert shift_days(anchor, datetime(2026, 6, 15, 23, 59, tzinfo=UTC)) == 0
    assert shift_days(anchor, datetime(2026, 6, 16, 0, 1, tzinfo=UTC)) == 1
    assert shift_days(anchor, datetime(2026, 6, 14, 23, 0, tzinfo=UTC)) == -1
    assert shift_days(anchor, datetime(2028, 6, 15, 1, 0, tzinfo=UTC)) == 731  # 2028 is leap


def test_shifted_anchor_keeps_the_anchor_time_of_day() -> None:
    s = BY_ID["trial-trap-in-progress"]
    now = s.anchor + timedelta(days=400, hours=5)
    assert shifted_anchor(s, now) == s.anchor + timedelta(days=400)


@pytest.mark.parametrize("days", [0, 1, 29, 365, 366, 1000, -45])
def test_shifted_request_moves_every_date_by_the_same_days_and_nothing_else(days: int) -> None:
    s = BY_ID["refill-booked-appointment"]
    before = json.dumps(s.request, sort_keys=True)
    now = s.anchor + timedelta(days=days, hours=3)
    moved = shifted_request(s, now)
    assert json.dumps(s.request, sort_keys=True) == before, "the scenario must not change"
    pairs = list(paired_strings(s.request, moved))
    dated = [(a, b) for a, b in pairs if a != b]
    assert len(dated) == (len(list(date_strings(s.request))) if days else 0)
    for a, b in dated:
        assert len(a) == len(b)
        assert date.fromisoformat(b[:10]) - date.fromisoformat(a[:10]) == timedelta(days=days)
        assert a[10:] == b[10:]
    assert moved["hookInstance"] == s.request["hookInstance"]


def paired_strings(a: Any, b: Any) -> Iterator[tuple[str, str]]:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            yield from paired_strings(a[k], b[k])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            yield from paired_strings(x, y)
    elif isinstance(a, str):
        assert isinstance(b, str)
        yield a, b
    else:
        assert a == b


def test_shifted_request_keeps_the_intervals_that_decide_the_cards() -> None:
    """Birth date, last refill and the booked appointment keep their distance to 'now'."""
    s = BY_ID["refill-booked-appointment"]
    now = datetime(2029, 2, 28, 20, 0, tzinfo=UTC)
    moved = shifted_request(s, now)
    new_anchor = shifted_anchor(s, now)

    def gap(request: dict[str, Any], anchor: datetime, key: str, field: str) -> float:
        entry = request["prefetch"][key]["entry"][-1]["resource"][field]
        moment = datetime.fromisoformat(entry.replace("Z", "+00:00"))
        return (moment - anchor) / timedelta(days=1)

    assert gap(moved, new_anchor, "appointments", "start") == gap(
        s.request, s.anchor, "appointments", "start"
    )
    assert gap(moved, new_anchor, "observations", "effectiveDateTime") == gap(
        s.request, s.anchor, "observations", "effectiveDateTime"
    )


def test_shifted_bundle_moves_the_bundle_like_the_request() -> None:
    path = FIXTURES / "refill" / "refill-overdue.json"
    s = load_scenario(path)
    now = s.anchor + timedelta(days=100)
    moved = shifted_bundle(s, load_bundle(path), now)
    request_resources = {canonical(r) for _, _, r in prefetch_entries(
        s.model_copy(update={"request": shifted_request(s, now)}))}
    assert {canonical(e["resource"]) for e in moved["entry"]} == request_resources
    assert moved["timestamp"] == "2026-09-23T09:00:00Z"
