"""Small builders for PatientRecord pieces, so a test reads as the chart it describes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cds_service.fhir.record import (
    Coding,
    Concept,
    ConditionFact,
    DeviceFact,
    Dosage,
    MedicationFact,
    ObservationFact,
    ObservationValue,
    PatientInfo,
    PatientRecord,
    Period,
    ProcedureFact,
    Quantity,
    Timing,
)
from cds_service.rules.index import ChartIndex
from cds_service.terminology import Terminology

LOCAL = "urn:itb-cds:codes"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
# The rule entries patient-view runs, in its order (the service registry names them).
PATIENT_VIEW = ("candidacy", "trial-outcome", "refill", "battery")


def at(text: str) -> datetime:
    """"2026-06-15" or "2026-06-15T10:00" as an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def coded(system: str, code: str, display: str | None = None, text: str | None = None
          ) -> Concept:
    return Concept((Coding(system, code, display),), text)


def patient(birth: str = "1980-01-01") -> PatientInfo:
    return PatientInfo("Patient/p1", date.fromisoformat(birth))


def condition(code: Concept, ref: str = "Condition/c1", onset: str | None = "2015-01-01",
              status: str = "active", verification: str = "confirmed") -> ConditionFact:
    return ConditionFact(ref, code, status, verification, at(onset) if onset else None)


CP = coded(SNOMED, "128188000", "Cerebral palsy")
MS = coded(ICD10, "G35", "Multiple sclerosis")
TBI = coded(SNOMED, "127295002", "Traumatic brain injury")


def timing_code(code: str) -> Timing:
    return Timing(code=Concept((Coding("http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
                                       code),)))


def oral(agent: str, mg: float, per_day: str = "TID", *, ref: str = "MedicationRequest/m1",
         status: str = "active", reason: str | None = None, kind: str = "MedicationRequest",
         draft: bool = False, reason_refs: tuple[str, ...] = ()) -> MedicationFact:
    return MedicationFact(
        ref=ref, kind=kind, status=status, medication=Concept(text=f"{agent} {mg:g} mg tablet"),
        status_reasons=(Concept(text=reason),) if reason else (), intent="order",
        dosages=(Dosage(route=coded(SNOMED, "26643006", "Oral route"),
                        timing=timing_code(per_day), dose=Quantity(mg, "mg", "mg")),),
        authored=at("2025-01-01"), draft=draft, reason_refs=reason_refs,
    )


def itb_order(mcg_per_day: float, ref: str = "MedicationRequest/itb") -> MedicationFact:
    return MedicationFact(
        ref=ref, kind="MedicationRequest", status="active",
        medication=coded(RXNORM, "1666613", "baclofen 2 MG/ML Injection"), intent="order",
        dosages=(Dosage(route=coded(SNOMED, "72607000", "Intrathecal"),
                        rate=Quantity(mcg_per_day, "mcg/day", "ug/d")),),
        authored=at("2025-01-01"),
    )


def procedure(system: str, code: str, performed: str, ref: str, *, status: str = "completed",
              display: str | None = None, devices: tuple[str, ...] = (),
              notes: tuple[str, ...] = ()) -> ProcedureFact:
    return ProcedureFact(ref, coded(system, code, display), status, at(performed),
                         focal_devices=devices, notes=notes)


def pump_device(ref: str = "Device/pump", model: str | None = "8637-20",
                name: str = "SynchroMed II", status: str = "active") -> DeviceFact:
    return DeviceFact(ref, status, Concept(text="Implantable intrathecal pump"), (name,), model)


def observation(code: str, value: ObservationValue, effective: str, ref: str,
                *, part_of: tuple[str, ...] = (), body_site: str | None = None
                ) -> ObservationFact:
    return ObservationFact(ref, coded(LOCAL, code), "final", at(effective), value,
                           Concept(text=body_site) if body_site else None, part_of=part_of)


def mL(value: float) -> Quantity:
    return Quantity(value, "mL", "mL")


def record(**parts: object) -> PatientRecord:
    parts.setdefault("patient", patient())
    return PatientRecord(**parts)  # type: ignore[arg-type]


def indexed(chart: PatientRecord, terms: Terminology) -> ChartIndex:
    """The chart as a rule reads it (evaluate builds this once per call)."""
    return ChartIndex.build(chart, terms)


__all__ = ["NOW", "Period", "record"]
