"""Which ITB pumps the patient has now, their model and implant date (the chart index finds
them once per call; refill and battery read them there)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from cds_service.fhir.record import (
    AppointmentFact,
    Concept,
    DeviceFact,
    PatientRecord,
    ProcedureFact,
    ServiceRequestFact,
)
from cds_service.rules.chart import label, procedure_done, visit_ahead, when
from cds_service.rules.finding import Evidence, EvidenceLabel, words
from cds_service.terminology import PumpModel, Terminology


@dataclass(frozen=True, slots=True)
class Pump:
    ref: str  # the Device, else the implant Procedure
    device: DeviceFact | None
    implant: ProcedureFact | None
    model: PumpModel | None
    # Other active Device records of the same pump (an interface duplicate): one pump, one card.
    duplicates: tuple[str, ...] = ()

    @property
    def implanted(self) -> datetime | None:
        return self.implant.performed if self.implant is not None else None

    @property
    def device_refs(self) -> frozenset[str]:
        own = {self.device.ref} if self.device is not None else set()
        return frozenset(own | set(self.duplicates))


_PROCEDURE_SETS = ("itb-pump-implant", "itb-pump-refill", "itb-pump-removal",
                   "itb-trial-procedure")
# A refill whose text only says "pump refill" counts only when linked to the ITB pump.
NEEDS_PUMP_LINK = "needs-pump-link"


def _coded_as_other(p: ProcedureFact, terms: Terminology, value_set: str) -> bool:
    """The procedure's code puts it in another ITB procedure value set: text cannot move it."""
    return terms.match_code(value_set, p.code) is None and any(
        terms.match_code(other, p.code) is not None for other in _PROCEDURE_SETS
        if other != value_set)


def completed(record: PatientRecord, terms: Terminology, value_set: str
              ) -> list[ProcedureFact]:
    """Completed, dated procedures of an ITB procedure value set, earliest first."""
    done = [
        p for p in record.procedures
        if procedure_done(p) and p.performed is not None
        and terms.match(value_set, p.code) is not None
        and not _coded_as_other(p, terms, value_set)
    ]
    return sorted(done, key=lambda p: p.performed or datetime.min)


def implants(record: PatientRecord, terms: Terminology) -> list[ProcedureFact]:
    # A removal that mentions "pump" must not be read as an implant.
    return [p for p in completed(record, terms, "itb-pump-implant")
            if terms.match("itb-pump-removal", p.code) is None]


def needs_pump_link(p: ProcedureFact, terms: Terminology) -> bool:
    """A refill whose text only says "pump refill": it counts only when linked to the pump."""
    found = terms.match("itb-pump-refill", p.code)
    return found is not None and found.group == NEEDS_PUMP_LINK


def refill_booking_matches(terms: Terminology, concept: Concept | None,
                           *text: str | None) -> bool:
    """An appointment/request for an ITB refill (the bare "pump refill" wording is not)."""
    found = terms.match("itb-pump-refill", concept, *text)
    return found is not None and found.group != NEEDS_PUMP_LINK


def is_refill_appointment(terms: Terminology, a: AppointmentFact) -> bool:
    """An appointment (booked or proposed) for an ITB pump refill, by its codes or text."""
    return any(refill_booking_matches(terms, c) for c in a.codes) or refill_booking_matches(
        terms, None, a.description)


def is_refill_request(terms: Terminology, s: ServiceRequestFact) -> bool:
    """A service request for an ITB pump refill."""
    return refill_booking_matches(terms, s.code)


def is_replacement_appointment(terms: Terminology, a: AppointmentFact) -> bool:
    """An appointment (booked or proposed) for an ITB pump replacement."""
    return any(terms.match("itb-pump-replacement", c) for c in a.codes) or bool(
        terms.match_text("itb-pump-replacement", a.description))


def pump_devices(record: PatientRecord, terms: Terminology) -> list[DeviceFact]:
    out = []
    for d in record.devices:
        if (d.status or "").lower() == "entered-in-error":
            continue
        if terms.match("itb-pump-device", d.type, *d.names, d.model_number, d.manufacturer,
                       *d.notes) is not None:
            out.append(d)
    return out


def device_model(device: DeviceFact | None, terms: Terminology) -> PumpModel | None:
    if device is None:
        return None
    return terms.pump_model(device.model_number, *device.names, device.type.words(),
                            device.manufacturer, *device.notes)


def _implant_for(device: DeviceFact, implant_list: list[ProcedureFact],
                 other_devices: set[str]) -> ProcedureFact | None:
    linked = [p for p in implant_list if device.ref in p.focal_devices]
    if linked:
        return linked[-1]
    # Unlinked implants not attributed to another device: the latest one is this pump's.
    unlinked = [p for p in implant_list if not (set(p.focal_devices) & other_devices)]
    return unlinked[-1] if unlinked else None


def _removal(implanted: datetime | None, device_ref: str | None, removal_list: list[
        ProcedureFact], implant_list: list[ProcedureFact]) -> ProcedureFact | None:
    """The completed removal of this pump, if any."""
    for removal in removal_list:
        if device_ref is not None and device_ref in removal.focal_devices:
            return removal
        if removal.focal_devices and device_ref not in removal.focal_devices:
            continue  # the removal of another pump
        if implanted is not None and removal.performed is not None:
            if removal.performed >= implanted and not (
                removal.performed.date() == implanted.date()
            ):
                return removal
        elif implanted is None and removal.performed is not None and not any(
            p.performed is not None and p.performed >= removal.performed for p in implant_list
        ):
            return removal
    return None


@dataclass(frozen=True, slots=True)
class StaleDevice:
    """A pump Device still active after a completed removal of that pump: the removal wins
    (it is no pump), and the device list is out of date (rule book: itb-refill, decisions)."""

    device: DeviceFact
    removal: ProcedureFact


def pump_census(record: PatientRecord, terms: Terminology, implant_list: list[ProcedureFact],
                removal_list: list[ProcedureFact]) -> tuple[list[Pump], list[StaleDevice]]:
    """The active pumps, and the pump Devices still recorded active after their removal, in
    one walk over the device list.

    Active pumps: active pump devices; without any pump device record, an implant not
    removed since. A device that is not active, or an implant followed by a completed
    removal, is no pump.
    """
    devices = pump_devices(record, terms)
    if devices:
        refs = {d.ref for d in devices}
        pumps: list[Pump] = []
        stale: list[StaleDevice] = []
        for device in devices:
            if (device.status or "").lower() != "active":
                continue
            implant = _implant_for(device, implant_list, refs - {device.ref})
            implanted = implant.performed if implant is not None else None
            removal = _removal(implanted, device.ref, removal_list, implant_list)
            if removal is not None:
                stale.append(StaleDevice(device, removal))
            else:
                pumps.append(Pump(device.ref, device, implant, device_model(device, terms)))
        return _merge_duplicates(pumps), stale
    if not implant_list:
        return [], []
    last = implant_list[-1]
    if _removal(last.performed, None, removal_list, implant_list) is not None:
        return [], []
    model = terms.pump_model(last.code.words(), *(c.words() for c in last.used_codes),
                             *last.notes)
    return [Pump(last.ref, None, last, model)], []


def active_pumps(record: PatientRecord, terms: Terminology, implant_list: list[ProcedureFact],
                 removal_list: list[ProcedureFact]) -> list[Pump]:
    return pump_census(record, terms, implant_list, removal_list)[0]


def stale_device_evidence(stale: StaleDevice, terms: Terminology) -> tuple[Evidence, ...]:
    return (pump_evidence(stale.device, device_model(stale.device, terms)),
            Evidence(EvidenceLabel.PUMP_REMOVAL, reference=stale.removal.ref,
                     date=when(stale.removal.performed),
                     words=words(name=label(stale.removal.code, "", terms))))


def _same_pump(a: Pump, b: Pump) -> bool:
    """Two active Device records of one pump: same model number or same names, and not two
    implant episodes (each linked to its own implant procedure)."""
    if a.device is None or b.device is None:
        return False
    if a.implant is not None and b.implant is not None and a.implant.ref != b.implant.ref:
        return False
    model_a = (a.device.model_number or "").strip().lower()
    model_b = (b.device.model_number or "").strip().lower()
    if model_a and model_b:
        return model_a == model_b
    names_a = {n.strip().lower() for n in a.device.names if n.strip()}
    names_b = {n.strip().lower() for n in b.device.names if n.strip()}
    return bool(names_a) and names_a == names_b


def _merge_duplicates(pumps: list[Pump]) -> list[Pump]:
    # The record with an implant procedure (then the first) stands for the pump.
    ordered = sorted(pumps, key=lambda p: p.implant is None)
    merged: list[Pump] = []
    for pump in ordered:
        for i, kept in enumerate(merged):
            if _same_pump(kept, pump):
                merged[i] = replace(kept, duplicates=(*kept.duplicates, pump.ref),
                                    model=kept.model or pump.model)
                break
        else:
            merged.append(pump)
    order = {p.ref: i for i, p in enumerate(pumps)}
    return sorted(merged, key=lambda p: order[p.ref])


def pump_evidence(device: DeviceFact, model: PumpModel | None) -> Evidence:
    return Evidence(EvidenceLabel.PUMP, reference=device.ref, value=device.status,
                    words=words(model=model.name if model is not None else ""))


@dataclass(frozen=True, slots=True)
class Programmability:
    programmable: bool
    source: str  # "model table" | "implant procedure" | "assumed"


def programmability(pump: Pump, terms: Terminology) -> Programmability:
    if pump.model is not None:
        return Programmability(pump.model.programmable, "model table")
    if pump.implant is not None:
        found = terms.match("itb-pump-implant", pump.implant.code)
        if found is not None and found.group in ("programmable", "non-programmable"):
            return Programmability(found.group == "programmable", "implant procedure")
    return Programmability(True, "assumed")


def booked_refill(record: PatientRecord, terms: Terminology, after: datetime,
                  due: datetime | None, now: datetime) -> tuple[datetime, str] | None:
    """The earliest refill booked (an appointment that will happen, or an active order) after
    the last fill and on or before ``due`` (None: whenever): with it, the refill is taken
    care of."""
    found: list[tuple[datetime, str]] = []
    for a in record.appointments:
        if not visit_ahead(a, now) or a.start is None:
            continue
        if a.start >= after and (due is None or a.start <= due) and is_refill_appointment(
                terms, a):
            found.append((a.start, a.ref))
    for s in record.service_requests:
        if (s.status or "").lower() != "active" or s.occurrence is None:
            continue
        if s.occurrence >= after and (due is None or s.occurrence <= due) and (
                is_refill_request(terms, s)):
            found.append((s.occurrence, s.ref))
    return min(found) if found else None
