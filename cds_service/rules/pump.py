"""Which ITB pumps the patient has now, their model and implant date (shared by rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.fhir.record import DeviceFact, PatientRecord, ProcedureFact
from cds_service.rules.chart import (
    CURRENT_MEDICATION,
    is_intrathecal_baclofen,
    medication_is_void,
    oral_agent,
    procedure_done,
)
from cds_service.terminology import PumpModel, Terminology


@dataclass(frozen=True, slots=True)
class Pump:
    ref: str  # the Device, else the implant Procedure
    device: DeviceFact | None
    implant: ProcedureFact | None
    model: PumpModel | None

    @property
    def implanted(self) -> datetime | None:
        return self.implant.performed if self.implant is not None else None


def _procedures(record: PatientRecord, terms: Terminology, value_set: str
                ) -> list[ProcedureFact]:
    done = [
        p for p in record.procedures
        if procedure_done(p) and p.performed is not None
        and terms.match(value_set, p.code) is not None
    ]
    return sorted(done, key=lambda p: p.performed or datetime.min)


def implants(record: PatientRecord, terms: Terminology) -> list[ProcedureFact]:
    # A removal that mentions "pump" must not be read as an implant.
    return [p for p in _procedures(record, terms, "itb-pump-implant")
            if terms.match("itb-pump-removal", p.code) is None]


def removals(record: PatientRecord, terms: Terminology) -> list[ProcedureFact]:
    return _procedures(record, terms, "itb-pump-removal")


def refills(record: PatientRecord, terms: Terminology) -> list[ProcedureFact]:
    return _procedures(record, terms, "itb-pump-refill")


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


def _removed(implanted: datetime | None, device_ref: str | None, removal_list: list[
        ProcedureFact], implant_list: list[ProcedureFact]) -> bool:
    for removal in removal_list:
        if device_ref is not None and device_ref in removal.focal_devices:
            return True
        if removal.focal_devices and device_ref not in removal.focal_devices:
            continue  # the removal of another pump
        if implanted is not None and removal.performed is not None:
            if removal.performed >= implanted and not (
                removal.performed.date() == implanted.date()
            ):
                return True
        elif implanted is None and removal.performed is not None and not any(
            p.performed is not None and p.performed >= removal.performed for p in implant_list
        ):
            return True
    return False


def active_pumps(record: PatientRecord, terms: Terminology) -> list[Pump]:
    """Active pump devices; without any pump device record, an implant not removed since.

    A device that is not active, or an implant followed by a completed removal, is no pump.
    """
    implant_list = implants(record, terms)
    removal_list = removals(record, terms)
    devices = pump_devices(record, terms)
    if devices:
        refs = {d.ref for d in devices}
        pumps = []
        for device in devices:
            if (device.status or "").lower() != "active":
                continue
            implant = _implant_for(device, implant_list, refs - {device.ref})
            implanted = implant.performed if implant is not None else None
            if _removed(implanted, device.ref, removal_list, implant_list):
                continue
            model = device_model(device, terms)
            pumps.append(Pump(device.ref, device, implant, model))
        return pumps
    if not implant_list:
        return []
    last = implant_list[-1]
    if _removed(last.performed, None, removal_list, implant_list):
        return []
    model = terms.pump_model(last.code.words(), *(c.words() for c in last.used_codes),
                             *last.notes)
    return [Pump(last.ref, None, last, model)]


def pump_history(record: PatientRecord, terms: Terminology) -> bool:
    """Any sign the patient has (or had) ITB via a pump: used to keep candidacy quiet."""
    if active_pumps(record, terms):
        return True
    return any(
        is_intrathecal_baclofen(m, terms)
        and m.kind != "MedicationAdministration"
        and (m.status or "").lower() in CURRENT_MEDICATION
        and not m.draft
        for m in record.medications
    )


def has_backup_oral_baclofen(record: PatientRecord, terms: Terminology) -> bool:
    for m in record.medications:
        if medication_is_void(m) or m.draft or (m.status or "").lower() != "active":
            continue
        agent = oral_agent(m, terms)
        if agent is not None and agent.group == "baclofen":
            return True
    return False


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
