"""Battery / replacement due for programmable pumps (clinical-rules.md section 5)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cds_service.config import Settings
from cds_service.fhir.record import PatientRecord
from cds_service.rules.chart import BOOKED_APPOINTMENT, label, observations_of, when
from cds_service.rules.dataquality import missing_data
from cds_service.rules.dates import add_months, add_years, calendar_days_until, iso_date
from cds_service.rules.finding import Evidence, Finding, Number, Tier
from cds_service.rules.pump import (
    Pump,
    active_pumps,
    has_backup_oral_baclofen,
    programmability,
)
from cds_service.terminology import Terminology

RULE_ID = "itb-battery"
RULE_VERSION = "1.0.0"
OUTCOMES = ("end-of-service", "eri", "plan", "notice", "booked")
NOTES = ("programmable-assumed", "service-life-assumed", "booked-but-critical",
         "eri-caps-eos")
PUMP_NOTES = ("no-backup-oral-baclofen",)

_PLANNED_PROCEDURE = frozenset({"preparation", "in-progress"})


def end_of_service(implanted: datetime, service_life_years: float,
                   eri: datetime | None, eri_to_eos_days: int) -> datetime:
    """EOS = implant + service life, and no later than ERI + settings.battery.eri_to_eos_days
    when ERI is recorded."""
    eos = add_years(implanted, service_life_years)
    if eri is not None:
        eos = min(eos, eri + timedelta(days=eri_to_eos_days))
    return eos


def _eri(record: PatientRecord, terms: Terminology, implanted: datetime | None, now: datetime
         ) -> tuple[datetime, str] | None:
    for o in reversed(observations_of(record, terms, "pump-eri")):
        at: datetime | None = None
        if isinstance(o.value, datetime):
            at = o.value
        elif o.value is True or (isinstance(o.value, str) and o.value.lower() == "true"):
            at = o.effective or now
        if at is None:
            continue
        if implanted is not None and at < implanted:
            continue  # the previous pump's indicator
        return at, o.ref
    return None


def _booked(record: PatientRecord, terms: Terminology, implanted: datetime | None
            ) -> tuple[datetime | None, str] | None:
    def later(at: datetime | None) -> bool:
        return at is None or implanted is None or at > implanted

    for s in record.service_requests:
        if (s.status or "").lower() in ("active", "on-hold") and terms.match(
                "itb-pump-replacement", s.code) and later(s.occurrence or s.authored):
            return s.occurrence, s.ref
    for p in record.procedures:
        if (p.status or "").lower() in _PLANNED_PROCEDURE and terms.match(
                "itb-pump-replacement", p.code) and later(p.performed):
            return p.performed, p.ref
    for a in record.appointments:
        if (a.status or "").lower() in BOOKED_APPOINTMENT and later(a.start) and (
            any(terms.match("itb-pump-replacement", c) for c in a.codes)
            or terms.match_text("itb-pump-replacement", a.description)
        ):
            return a.start, a.ref
    return None


def battery(record: PatientRecord, now: datetime, settings: Settings, terms: Terminology
            ) -> list[Finding]:
    pump_notes = () if has_backup_oral_baclofen(record, terms) else PUMP_NOTES
    findings: list[Finding] = []
    for pump in active_pumps(record, terms):
        found = _one_pump(pump, record, now, settings, terms, pump_notes)
        if found is not None:
            findings.append(found)
    return findings


def _one_pump(pump: Pump, record: PatientRecord, now: datetime, settings: Settings,
              terms: Terminology, pump_notes: tuple[str, ...]) -> Finding | None:
    prog = programmability(pump, terms)
    if not prog.programmable:
        return None  # constant-flow pumps have no battery
    notes: list[str] = []
    if prog.source == "assumed":
        notes.append("programmable-assumed")
    evidence: list[Evidence] = []
    if pump.device is not None:
        evidence.append(Evidence(what=f"Pump: {pump.model.name if pump.model else 'ITB pump'}",
                                 reference=pump.device.ref, value=pump.device.status))
    implanted = pump.implanted
    if implanted is None or pump.implant is None:
        return missing_data(RULE_ID, ("implant date of the pump (the implant procedure)",),
                            evidence=tuple(evidence), notes=tuple(notes) + pump_notes,
                            device_ref=pump.ref)
    evidence.append(Evidence(what=f"Implant: {label(pump.implant.code, 'pump implant', terms)}",
                             reference=pump.implant.ref, date=when(implanted)))
    if pump.model is not None and pump.model.service_life_years:
        life = pump.model.service_life_years
        life_source = f"model table: {pump.model.name}"
    else:
        life = terms.unknown_programmable_service_life_years
        life_source = "assumed (model unknown)"
        notes.append("service-life-assumed")
    eri = _eri(record, terms, implanted, now)
    eos = end_of_service(implanted, life, eri[0] if eri else None,
                         settings.battery.eri_to_eos_days)
    numbers = [
        Number("implantDate", iso_date(implanted), source=pump.implant.ref),
        Number("serviceLifeYears", life, "a", life_source),
        Number("endOfServiceDate", iso_date(eos)),
        Number("daysUntilEndOfService", calendar_days_until(eos, now), "d"),
    ]
    if eri is not None:
        numbers.append(Number("eriDate", iso_date(eri[0]), source=eri[1]))
        evidence.append(Evidence(what="Elective replacement indicator", reference=eri[1],
                                 date=when(eri[0]), value="reached"))
        if eos < add_years(implanted, life):
            notes.append("eri-caps-eos")

    if eri is not None:
        outcome, tier = "eri", Tier.CRITICAL
    elif now >= eos:
        outcome, tier = "end-of-service", Tier.CRITICAL
    elif eos <= add_months(now, settings.battery.warn_months):
        outcome, tier = "plan", Tier.WARNING
    elif eos <= add_months(now, settings.battery.notice_months):
        outcome, tier = "notice", Tier.INFO
    else:
        return None
    suggest = True
    booking = _booked(record, terms, implanted)
    if booking is not None:
        if booking[0] is not None:
            numbers.append(Number("bookedDate", iso_date(booking[0]), source=booking[1]))
        evidence.append(Evidence(what="Replacement booked", reference=booking[1],
                                 date=when(booking[0])))
        if tier is Tier.CRITICAL:
            notes.append("booked-but-critical")
        else:
            outcome, tier, suggest = "booked", Tier.INFO, False
    return Finding(
        rule=RULE_ID, rule_version=RULE_VERSION, outcome=outcome, tier=tier,
        evidence=tuple(evidence), numbers=tuple(numbers),
        notes=tuple(notes) + pump_notes, device_ref=pump.ref, suggest=suggest,
    )
