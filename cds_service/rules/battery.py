"""Battery / replacement due for programmable pumps (rule book: itb-battery)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.config import BatterySettings
from cds_service.rules.chart import label, visit_ahead, when
from cds_service.rules.dates import add_months, add_years, calendar_days_until, iso_date
from cds_service.rules.draft import Draft
from cds_service.rules.finding import (
    Evidence,
    EvidenceLabel,
    Finding,
    MissingInput,
    SourceKind,
    Tier,
    source,
    words,
)
from cds_service.rules.index import ChartIndex
from cds_service.rules.pump import (
    Pump,
    is_replacement_appointment,
    programmability,
    pump_evidence,
)

RULE_ID = "itb-battery"
RULE_VERSION = "1.1.0"
OUTCOMES = ("end-of-service", "eri", "plan", "notice", "booked")
NOTES = ("programmable-assumed", "service-life-assumed", "booked-but-critical",
         "eri-caps-eos", "booked-not-in-time")
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


def _eri(chart: ChartIndex, implanted: datetime | None, now: datetime
         ) -> tuple[datetime, str] | None:
    for o in reversed(chart.observations("pump-eri")):
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


@dataclass(frozen=True, slots=True)
class _Booking:
    at: datetime | None  # None: a request with no date yet
    ref: str

    def in_time(self, eos: datetime) -> bool:
        """Only a replacement booked before end of service lowers the card (rule book:
        itb-battery, decisions)."""
        return self.at is not None and self.at < eos


def _booked(chart: ChartIndex, implanted: datetime | None, eos: datetime, now: datetime
            ) -> _Booking | None:
    """The replacement booked for this pump: one in time if any, else a late or undated one
    (which the card mentions without being lowered)."""
    terms = chart.terms

    def later(at: datetime | None) -> bool:
        return at is None or implanted is None or at > implanted

    found: list[_Booking] = []
    for s in chart.record.service_requests:
        if (s.status or "").lower() in ("active", "on-hold") and terms.match(
                "itb-pump-replacement", s.code) and later(s.occurrence or s.authored):
            found.append(_Booking(s.occurrence, s.ref))
    for p in chart.record.procedures:
        if (p.status or "").lower() in _PLANNED_PROCEDURE and terms.match(
                "itb-pump-replacement", p.code) and later(p.performed):
            found.append(_Booking(p.performed, p.ref))
    for a in chart.record.appointments:
        if visit_ahead(a, now) and later(a.start) and is_replacement_appointment(terms, a):
            found.append(_Booking(a.start, a.ref))
    return next((b for b in found if b.in_time(eos)), found[0] if found else None)


@dataclass(frozen=True, slots=True)
class PumpBattery:
    """What the battery rule makes of one pump: the card's finding (None: nothing due, or no
    battery), and the end of service with what it rests on (None when there is no battery or
    the implant date is missing: the finding then names it)."""

    pump: Pump
    finding: Finding | None
    end_of_service: datetime | None = None
    basis: Draft | None = None


def battery(chart: ChartIndex, now: datetime, settings: BatterySettings) -> list[Finding]:
    return [p.finding for p in pumps(chart, now, settings) if p.finding is not None]


def pumps(chart: ChartIndex, now: datetime, settings: BatterySettings) -> list[PumpBattery]:
    """Every active pump, as the battery rule sees it (the booking check and the worklist read
    the end of service of pumps that get no card as well)."""
    pump_notes = () if chart.backup_oral_baclofen else PUMP_NOTES
    return [_one_pump(pump, chart, now, settings, pump_notes) for pump in chart.pumps]


def _one_pump(pump: Pump, chart: ChartIndex, now: datetime, settings: BatterySettings,
              pump_notes: tuple[str, ...]) -> PumpBattery:
    prog = programmability(pump, chart.terms)
    if not prog.programmable:
        return PumpBattery(pump, None)  # constant-flow pumps have no battery
    draft = Draft(RULE_ID, RULE_VERSION)
    if prog.source == "assumed":
        draft.note("programmable-assumed")
    if pump.device is not None:
        draft.see(pump_evidence(pump.device, pump.model))
    implanted = pump.implanted
    if implanted is None or pump.implant is None:
        draft.lack(MissingInput.IMPLANT_DATE)
        draft.note(*pump_notes)
        return PumpBattery(pump, draft.missing_data(device_ref=pump.ref))
    draft.see(Evidence(EvidenceLabel.IMPLANT, reference=pump.implant.ref, date=when(implanted),
                       words=words(name=label(pump.implant.code, "", chart.terms))))
    eos, eri_recorded = _end_of_service(pump, implanted, chart, now, settings, draft)
    basis = draft.copy()

    graded = _grade(eos, now, settings, eri_recorded=eri_recorded)
    if graded is None:
        return PumpBattery(pump, None, eos, basis)
    outcome, tier = graded
    suggest = True
    booking = _booked(chart, implanted, eos, now)
    if booking is not None:
        if booking.at is not None:
            draft.count("bookedDate", iso_date(booking.at), source=booking.ref)
        draft.see(Evidence(EvidenceLabel.REPLACEMENT_BOOKED, reference=booking.ref,
                           date=when(booking.at)))
        if tier is Tier.CRITICAL:
            draft.note("booked-but-critical")
        elif booking.in_time(eos):
            outcome, tier, suggest = "booked", Tier.INFO, False
        else:
            draft.note("booked-not-in-time")
    draft.note(*pump_notes)
    return PumpBattery(pump, draft.finding(outcome, tier, device_ref=pump.ref, suggest=suggest),
                       eos, basis)


def _end_of_service(pump: Pump, implanted: datetime, chart: ChartIndex, now: datetime,
                    settings: BatterySettings, draft: Draft) -> tuple[datetime, bool]:
    """Implant + the model's service life (or the assumed one), capped by a recorded ERI;
    and whether an ERI is recorded."""
    if pump.model is not None and pump.model.service_life_years:
        life = pump.model.service_life_years
        life_source = source(SourceKind.MODEL, pump.model.name)
    else:
        life = chart.terms.unknown_programmable_service_life_years
        life_source = source(SourceKind.ASSUMED)
        draft.note("service-life-assumed")
    eri = _eri(chart, implanted, now)
    eos = end_of_service(implanted, life, eri[0] if eri else None, settings.eri_to_eos_days)
    assert pump.implant is not None
    draft.count("implantDate", iso_date(implanted), source=pump.implant.ref)
    draft.count("serviceLifeYears", life, "a", life_source)
    draft.count("endOfServiceDate", iso_date(eos), source=source(SourceKind.COMPUTED))
    draft.count("daysUntilEndOfService", calendar_days_until(eos, now), "d")
    if eri is not None:
        draft.count("eriDate", iso_date(eri[0]), source=eri[1])
        draft.count("eriToEosDays", settings.eri_to_eos_days, "days",
                    source(SourceKind.SETTING, "battery.eri_to_eos_days"))
        draft.see(Evidence(EvidenceLabel.ERI, reference=eri[1], date=when(eri[0]),
                           value_label=EvidenceLabel.REACHED))
        if eos < add_years(implanted, life):
            draft.note("eri-caps-eos")
    return eos, eri is not None


def _grade(eos: datetime, now: datetime, settings: BatterySettings, *, eri_recorded: bool
           ) -> tuple[str, Tier] | None:
    if eri_recorded:
        return "eri", Tier.CRITICAL
    if now >= eos:
        return "end-of-service", Tier.CRITICAL
    if eos <= add_months(now, settings.warn_months):
        return "plan", Tier.WARNING
    if eos <= add_months(now, settings.notice_months):
        return "notice", Tier.INFO
    return None
