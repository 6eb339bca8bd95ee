"""Realistic R4 charts as CDS Hooks patient-view requests with full prefetch, for benchmarks.

Four sizes, each for a patient with a pump and one without:

    small ~50 resources, typical ~300, large ~1,500, huge ~10,000

The clinically relevant part is built with the fixture builders of scripts/build_fixtures.py
(so it is the same R4 the scenario tests use); the rest is what a real chart is mostly made of
and what an EHR that ignored the observation code filter sends anyway: vital-sign Observations,
Encounters and Claims (both as search.mode "include" entries), plus unrelated problems,
prescriptions, immunizations and procedures.

    .venv/bin/python -m bench.charts [--out bench/.charts]   (from the repo root)

writes one ``<size>-<pump|nopump>.json`` per chart; the benchmarks call ``chart_request``
directly and never need the files.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
SIZES: dict[str, int] = {"small": 50, "typical": 300, "large": 1500, "huge": 10_000}
KINDS = ("pump", "nopump")

Json = dict[str, Any]


def _fixture_builders() -> ModuleType:
    """scripts/build_fixtures.py is a script, not a package: load it by path, once."""
    name = "itb_build_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "build_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def _clinical_core(fx: ModuleType, size: str, kind: str) -> Any:
    """The part the rules read: a pump patient whose refill alarm is 6 days out, or an MS
    patient whose oral baclofen was stopped for weakness (an ITB candidate)."""
    anchor = fx.A_JUN
    if kind == "pump":
        c = fx.pump_chart(f"bench-{size}-pump", anchor, age=44)
        dev = c.standard_pump(last_refill_days=-84)
        for n in range(1, 5):  # a year of earlier refills, each with its programmer readings
            c.refill(-84 - 90 * n, device=dev)
        return c
    c = fx.chart(f"bench-{size}-nopump", anchor, age=52, gender="male")
    c.condition("ms", onset_days=-4000)
    c.oral("baclofen20", 20, 4, status="stopped", reason_text="Muscle weakness, falls")
    c.oral("tizanidine", 4, 3, status="active", start_days=-90)
    return c


def _resource_count(c: Any) -> int:
    return 1 + sum(len(v) for v in c.entries.values()) + sum(len(v) for v in c.included.values())


def _pad_to(fx: ModuleType, c: Any, target: int) -> None:
    """Unrelated chart until ``target`` resources: per cycle of 20, 10 vital signs, 3
    encounters, 3 claims, 1 each of condition, prescription, immunization and procedure."""
    n = 0
    encounter: Json | None = None
    while _resource_count(c) < target:
        slot = n % 20
        days = -3 - (n // 20) * 9
        if slot in (0, 7, 14) or encounter is None:
            encounter = {
                "resourceType": "Encounter",
                "id": c.new_id("enc"),
                "status": "finished",
                "class": fx.coding(fx.ACT_CODE, "AMB", "ambulatory"),
                "type": [fx.concept(fx.coding(fx.SNOMED, "185349003", "Encounter for check up"),
                                    text="Outpatient visit")],
                "subject": c.subject,
                "participant": [{"individual": {"reference": "Practitioner/pract-gp",
                                                "display": "Dr A. General"}}],
                "period": {"start": fx.at(c.anchor, days), "end": fx.at(c.anchor, days, 0.5)},
                "serviceProvider": {"reference": "Organization/org-clinic"},
            }
            c.include("observations", encounter)
        elif slot in (1, 8, 15):
            c.include("procedures", _claim(fx, c, encounter, days))
        elif slot == 16:
            snomed, display, icd, icd_display = fx.UNRELATED_CONDITIONS[
                n % len(fx.UNRELATED_CONDITIONS)]
            c.condition("hypertension", onset_days=days - 60,
                        clinical=("active", "resolved", "inactive")[n % 3],
                        code=fx.concept(fx.coding(fx.SNOMED, snomed, display),
                                        fx.coding(fx.ICD10, icd, icd_display)))
        elif slot == 17:
            rx, name, strength, per_day = fx.UNRELATED_DRUGS[n % len(fx.UNRELATED_DRUGS)]
            amount, unit = strength.split(" ")
            c.add("medicationRequests", {
                "resourceType": "MedicationRequest",
                "id": c.new_id("mr-other"),
                "status": ("active", "completed", "stopped")[n % 3],
                "intent": "order",
                "medicationCodeableConcept": fx.concept(fx.coding(fx.RXNORM, rx, name),
                                                        text=f"{name} {strength}"),
                "subject": c.subject,
                "authoredOn": fx.at(c.anchor, days),
                "dosageInstruction": [{
                    "text": f"{strength} by mouth {per_day} times a day",
                    "route": fx.ORAL_ROUTE,
                    "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": fx.qty(float(amount), unit)}],
                }],
            })
        elif slot == 18:
            cvx, name = fx.VACCINES[n % len(fx.VACCINES)]
            c.include("medicationAdministrations", {
                "resourceType": "Immunization",
                "id": c.new_id("imm"),
                "status": "completed",
                "vaccineCode": fx.concept(fx.coding(fx.CVX, cvx, name)),
                "patient": c.subject,
                "occurrenceDateTime": fx.at(c.anchor, days),
                "primarySource": True,
                "lotNumber": f"LOT{n:06d}",
            })
        elif slot == 19:
            c.procedure(fx.concept(fx.coding(fx.SNOMED, "274804006", "Evaluation procedure"),
                                   text="Annual review"), days)
        else:
            code, name, unit, ucum, low, high = fx.VITALS[n % len(fx.VITALS)]
            value = round(low + (n * 7 % 10) * (high - low) / 10, 1)
            c.add("observations", {
                "resourceType": "Observation",
                "id": c.new_id("vs"),
                "status": "final",
                "category": [fx.concept(fx.coding(fx.OBS_CATEGORY, "vital-signs",
                                                  "Vital Signs"))],
                "code": fx.concept(fx.coding(fx.LOINC, code, name), text=name),
                "subject": c.subject,
                "encounter": fx.ref(encounter),
                "effectiveDateTime": fx.at(c.anchor, days, 0.1),
                "issued": fx.at(c.anchor, days, 0.2),
                "valueQuantity": fx.qty(value, unit, ucum),
            })
        n += 1


def _claim(fx: ModuleType, c: Any, encounter: Json, days: float) -> Json:
    return {
        "resourceType": "Claim",
        "id": c.new_id("claim"),
        "status": "active",
        "type": fx.concept(fx.coding("http://terminology.hl7.org/CodeSystem/claim-type",
                                     "professional", "Professional")),
        "use": "claim",
        "patient": c.subject,
        "created": fx.at(c.anchor, days, 1),
        "provider": {"reference": "Organization/org-clinic"},
        "priority": fx.concept(fx.coding(
            "http://terminology.hl7.org/CodeSystem/processpriority", "normal", "Normal")),
        "insurance": [{"sequence": 1, "focal": True,
                       "coverage": {"reference": "Coverage/cov-1"}}],
        "item": [
            {
                "sequence": j + 1,
                "productOrService": fx.concept(fx.coding(fx.SNOMED, "185349003", "Check up")),
                "encounter": [fx.ref(encounter)],
                "net": {"value": 125.0 + j, "currency": "USD"},
            }
            for j in range(3)
        ],
        "total": {"value": 378.0, "currency": "USD"},
    }


def chart_request(size: str, kind: str) -> Json:
    """A patient-view request with every prefetch key filled, ``SIZES[size]`` resources."""
    fx = _fixture_builders()
    c = _clinical_core(fx, size, kind)
    _pad_to(fx, c, SIZES[size])
    scenario = fx.Scenario(id=c.sid, family="bench", title=c.sid, story="", anchor=c.anchor,
                           expected=[], chart=c)
    request: Json = fx.build_request(scenario)
    return request


def resource_count(request: Json) -> int:
    prefetch = request["prefetch"]
    return sum(
        1 if key == "patient" else len((value or {}).get("entry", []))
        for key, value in prefetch.items()
        if value is not None
    )


def with_hook_instance(request: Json, hook_instance: str | None = None) -> Json:
    """A shallow copy with a fresh hookInstance (the audit log keys calls on it)."""
    return {**request, "hookInstance": hook_instance or str(uuid.uuid4())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / ".charts")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        for kind in KINDS:
            request = chart_request(size, kind)
            path = args.out / f"{size}-{kind}.json"
            path.write_bytes(orjson.dumps(request))
            print(f"{path}: {resource_count(request)} resources, "
                  f"{path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
