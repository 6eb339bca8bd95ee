"""How much dearer is the selective parse than reading the JSON at all?

Builds an R4 chart of about 1,500 resources, mostly what the rules never read (vital-sign
Observations, Encounters, Claims, Immunizations) plus an ITB pump patient's ~40 relevant
resources, and times ``orjson.loads`` alone against ``orjson.loads`` + ``parse_record``.
Target: the parse costs at most 5x the load.

    .venv/bin/python -m bench.parse_bench [--repeat 30] [--profile]   (from the repo root)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from cds_service.config import Settings
from cds_service.fhir.client import bundle_entries
from cds_service.fhir.parse import parse_record
from cds_service.fhir.record import PatientRecord
from cds_service.terminology import Terminology

PATIENT = "Patient/bench-1"
LOCAL = "urn:itb-cds:codes"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
START = datetime(2022, 1, 3, 9, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _cc(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding], "text": display or code}


def _unrelated(n_vitals: int, n_encounters: int, n_claims: int, n_immunizations: int) -> list[Any]:
    out: list[Any] = []
    vitals = [
        ("8867-4", "Heart rate", "/min", 72),
        ("8310-5", "Body temperature", "Cel", 36.8),
        ("9279-1", "Respiratory rate", "/min", 16),
        ("29463-7", "Body weight", "kg", 31.5),
    ]
    for i in range(n_vitals):
        code, name, unit, value = vitals[i % len(vitals)]
        out.append(
            {
                "resourceType": "Observation",
                "id": f"vital-{i}",
                "status": "final",
                "category": [
                    _cc(
                        "http://terminology.hl7.org/CodeSystem/observation-category",
                        "vital-signs",
                        "Vital Signs",
                    )
                ],
                "code": _cc("http://loinc.org", code, name),
                "subject": {"reference": PATIENT},
                "encounter": {"reference": f"Encounter/enc-{i % 50}"},
                "effectiveDateTime": _iso(START + timedelta(hours=6 * i)),
                "issued": _iso(START + timedelta(hours=6 * i, minutes=5)),
                "valueQuantity": {
                    "value": value,
                    "unit": unit,
                    "system": "http://unitsofmeasure.org",
                    "code": unit,
                },
            }
        )
    for i in range(n_encounters):
        out.append(
            {
                "resourceType": "Encounter",
                "id": f"enc-{i}",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "type": [_cc("http://snomed.info/sct", "185349003", "Encounter for check up")],
                "subject": {"reference": PATIENT},
                "participant": [
                    {"individual": {"reference": "Practitioner/doc-1", "display": "Dr A"}}
                ],
                "period": {
                    "start": _iso(START + timedelta(days=3 * i)),
                    "end": _iso(START + timedelta(days=3 * i, hours=1)),
                },
                "serviceProvider": {"reference": "Organization/org-1"},
            }
        )
    for i in range(n_claims):
        out.append(
            {
                "resourceType": "Claim",
                "id": f"claim-{i}",
                "status": "active",
                "type": _cc("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
                "use": "claim",
                "patient": {"reference": PATIENT},
                "created": _iso(START + timedelta(days=5 * i)),
                "provider": {"reference": "Organization/org-1"},
                "priority": _cc("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
                "insurance": [
                    {"sequence": 1, "focal": True, "coverage": {"reference": "Coverage/cov-1"}}
                ],
                "item": [
                    {
                        "sequence": j + 1,
                        "productOrService": _cc("http://snomed.info/sct", "185349003", "Check up"),
                        "encounter": [{"reference": f"Encounter/enc-{i % 50}"}],
                        "net": {"value": 125.0 + j, "currency": "USD"},
                    }
                    for j in range(3)
                ],
                "total": {"value": 378.0, "currency": "USD"},
            }
        )
    for i in range(n_immunizations):
        out.append(
            {
                "resourceType": "Immunization",
                "id": f"imm-{i}",
                "status": "completed",
                "vaccineCode": _cc("http://hl7.org/fhir/sid/cvx", "140", "Influenza, seasonal"),
                "patient": {"reference": PATIENT},
                "occurrenceDateTime": _iso(START + timedelta(days=20 * i)),
                "primarySource": True,
                "lotNumber": f"LOT{i:05d}",
            }
        )
    return out


def _pump_patient() -> list[Any]:
    out: list[Any] = [
        {
            "resourceType": "Patient",
            "id": "bench-1",
            "gender": "female",
            "birthDate": "2011-04-17",
            "name": [{"family": "Bench", "given": ["Ida"]}],
        },
        {
            "resourceType": "Condition",
            "id": "cp",
            "subject": {"reference": PATIENT},
            "clinicalStatus": _cc(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active"
            ),
            "verificationStatus": _cc(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
            ),
            "code": _cc("http://snomed.info/sct", "128188000", "Cerebral palsy"),
            "onsetDateTime": "2012-01-15",
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "pcn",
            "patient": {"reference": PATIENT},
            "code": {"text": "Penicillin"},
            "criticality": "high",
        },
        {
            "resourceType": "Device",
            "id": "pump",
            "status": "active",
            "patient": {"reference": PATIENT},
            "type": _cc(LOCAL, "itb-pump"),
            "deviceName": [{"name": "SynchroMed II", "type": "model-name"}],
            "modelNumber": "8637-20",
            "manufacturer": "Medtronic",
        },
        {
            "resourceType": "Procedure",
            "id": "trial",
            "status": "completed",
            "subject": {"reference": PATIENT},
            "code": _cc(LOCAL, "itb-screening-trial"),
            "performedDateTime": _iso(START - timedelta(days=60)),
        },
        {
            "resourceType": "Procedure",
            "id": "implant",
            "status": "completed",
            "subject": {"reference": PATIENT},
            "code": _cc("http://www.ama-assn.org/go/cpt", "62362", "Pump implant"),
            "performedDateTime": _iso(START - timedelta(days=30)),
            "focalDevice": [{"manipulated": {"reference": "Device/pump"}}],
        },
        {
            "resourceType": "MedicationRequest",
            "id": "oral-baclofen",
            "status": "stopped",
            "intent": "order",
            "subject": {"reference": PATIENT},
            "medicationCodeableConcept": _cc(RXNORM, "197392", "baclofen 20 MG Oral Tablet"),
            "dosageInstruction": [
                {
                    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 20, "unit": "mg"}}],
                }
            ],
        },
        {
            "resourceType": "MedicationAdministration",
            "id": "trial-dose",
            "status": "completed",
            "subject": {"reference": PATIENT},
            "partOf": [{"reference": "Procedure/trial"}],
            "medicationCodeableConcept": {"text": "baclofen 50 mcg intrathecal"},
            "effectiveDateTime": _iso(START - timedelta(days=60)),
            "dosage": {"dose": {"value": 50, "unit": "mcg"}},
        },
    ]
    for i in range(8):  # eight refills, each with its programmer readings
        when = _iso(START + timedelta(days=90 * i))
        out.append(
            {
                "resourceType": "Procedure",
                "id": f"refill-{i}",
                "status": "completed",
                "subject": {"reference": PATIENT},
                "code": _cc("http://www.ama-assn.org/go/cpt", "95990", "Pump refill"),
                "performedDateTime": when,
            }
        )
        for code, value, unit in (
            ("pump-reservoir-volume", 20, "mL"),
            ("pump-drug-concentration", 2000, "mcg/mL"),
            ("pump-daily-dose", 400 + 10 * i, "mcg/d"),
        ):
            out.append(
                {
                    "resourceType": "Observation",
                    "id": f"{code}-{i}",
                    "status": "final",
                    "code": _cc(LOCAL, code),
                    "subject": {"reference": PATIENT},
                    "partOf": [{"reference": f"Procedure/refill-{i}"}],
                    "effectiveDateTime": when,
                    "valueQuantity": {"value": value, "unit": unit},
                }
            )
    return out


def build_payload() -> bytes:
    resources = _unrelated(n_vitals=1000, n_encounters=200, n_claims=130, n_immunizations=130)
    resources += _pump_patient()
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{i}", "resource": r, "search": {"mode": "match"}}
            for i, r in enumerate(resources)
        ],
    }
    return orjson.dumps(bundle)


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return min(samples), statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="profile the parse (pyinstrument)")
    args = parser.parse_args()

    payload = build_payload()
    accept = Terminology.load(Settings()).observation_filter

    def load() -> object:
        return orjson.loads(payload)

    def load_and_parse() -> PatientRecord:
        bundle = orjson.loads(payload)
        return parse_record({"everything": bundle_entries(bundle)}, None, accept)

    record = load_and_parse()  # warm-up, and a check that the bench measures real work
    kept = (
        len(record.medications)
        + len(record.observations)
        + len(record.procedures)
        + len(record.conditions)
        + len(record.devices)
        + len(record.allergies)
        + 1
    )
    entries = len(orjson.loads(payload)["entry"])
    print(
        f"payload: {entries} resources, {len(payload) / 1e6:.2f} MB; kept {kept}, "
        f"skipped {len(record.skipped)}"
    )
    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as profiler:
            for _ in range(args.repeat):
                load_and_parse()
        profiler.print()

    load_min, load_med = _timed(load, args.repeat)
    both_min, both_med = _timed(load_and_parse, args.repeat)
    for label, low, mid in (
        ("orjson.loads", load_min, load_med),
        ("orjson.loads + parse_record", both_min, both_med),
    ):
        print(f"{label:<28}: min {low * 1e3:7.2f} ms   median {mid * 1e3:7.2f} ms")
    print(
        f"{'ratio':<28}: min {both_min / load_min:5.2f}x     median {both_med / load_med:5.2f}x"
        "   (target <= 5x)"
    )


if __name__ == "__main__":
    main()
