"""Booking checks on appointment-book (issue 17): is a proposed refill or pump replacement
booked in time?

The dates are the refill and battery rules' own (``refill.pumps``, ``battery.pumps``), so a
booking is judged against exactly the due date, empty date and end of service the patient-view
cards give. Dates are compared as calendar days (UTC), as every card shows them.

- Refill: after the latest safe day (the due date, the earliest of the low-reservoir alarm
  and the drug stability limit; today when that has passed) -> warning ``booked-late``; on or
  after the computed empty date -> critical ``booked-after-empty``.
- Replacement: after end of service -> critical ``booked-after-eos``; within
  ``booking.replacement_margin_days`` before it -> warning ``booked-late``.

A refill proposed after another one (proposed in the same call, or already booked in time) is
for a later fill, whose dates that refill sets and the chart cannot tell yet: no card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cds_service.config import BatterySettings, BookingSettings, RefillSettings
from cds_service.fhir.record import AppointmentFact
from cds_service.rules import battery as _battery
from cds_service.rules import refill as _refill
from cds_service.rules.chart import NOT_BEING_BOOKED, label, when
from cds_service.rules.dates import iso_date
from cds_service.rules.draft import Draft
from cds_service.rules.finding import (
    Evidence,
    EvidenceLabel,
    Finding,
    SourceKind,
    Tier,
    source,
    words,
)
from cds_service.rules.index import ChartIndex
from cds_service.rules.pump import is_refill_appointment, is_replacement_appointment

REFILL_OUTCOMES = ("booked-late", "booked-after-empty")
BATTERY_OUTCOMES = ("booked-late", "booked-after-eos")
REFILL_NOTES = ("already-due",)  # the due date has passed: the latest safe day is today
BATTERY_NOTES = ("end-of-service-near",)  # within the margin already: today


@dataclass(frozen=True, slots=True)
class BookingSections:
    """The settings the booking checks read: the refill and battery rules' (the dates) and
    the booking margin."""

    refill: RefillSettings
    battery: BatterySettings
    booking: BookingSettings


def booking(chart: ChartIndex, now: datetime, settings: BookingSections) -> list[Finding]:
    proposals = [a for a in chart.record.appointments if a.proposed and a.start is not None
                 and (a.status or "").lower() not in NOT_BEING_BOOKED]
    if not proposals or not chart.pumps:
        return []
    replacements = [a for a in proposals if is_replacement_appointment(chart.terms, a)]
    refills = [a for a in proposals
               if a not in replacements and is_refill_appointment(chart.terms, a)]
    pump_notes = () if chart.backup_oral_baclofen else _refill.PUMP_NOTES
    findings: list[Finding] = []
    if refills:
        for pr in _refill.pumps(chart, now, settings.refill):
            findings += _refills(pr, refills, chart, now, pump_notes)
    if replacements:
        for pb in _battery.pumps(chart, now, settings.battery):
            findings += _replacements(pb, replacements, chart, now, settings.booking, pump_notes)
    return findings


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _start(a: AppointmentFact) -> datetime:
    assert a.start is not None  # proposals without a start are not checked
    return a.start


def _refills(pr: _refill.PumpRefill, proposals: Sequence[AppointmentFact], chart: ChartIndex,
             now: datetime, pump_notes: tuple[str, ...]) -> list[Finding]:
    if pr.dates is None or pr.basis is None:
        # Nobody can say when this pump runs dry, so nobody can say the booking is in time.
        return [pr.finding] if pr.finding is not None else []
    due, empty = _day(pr.dates.due), _day(pr.dates.empty)
    latest = max(due, _day(now))
    # Refills before which another one is planned: the proposals of this call and a booking
    # already made in time.
    planned = [_day(_start(a)) for a in proposals]
    if pr.booked is not None:
        planned.append(_day(pr.booked[0]))
    out = []
    for a in proposals:
        start = _day(_start(a))
        if any(earlier < start for earlier in planned):
            continue  # a later fill: the refill before it resets the dates
        if start >= empty:
            outcome, tier = "booked-after-empty", Tier.CRITICAL
        elif start > latest:
            outcome, tier = "booked-late", Tier.WARNING
        else:
            continue
        notes = pump_notes if latest == due else (*pump_notes, "already-due")
        out.append(_finding(pr.basis, a, chart, latest, outcome, tier, pr.pump.ref, notes))
    return out


def _replacements(pb: _battery.PumpBattery, proposals: Sequence[AppointmentFact],
                  chart: ChartIndex, now: datetime, settings: BookingSettings,
                  pump_notes: tuple[str, ...]) -> list[Finding]:
    if pb.end_of_service is None or pb.basis is None:
        # No battery (constant flow): nothing to be late for; no implant date: say so.
        return [pb.finding] if pb.finding is not None else []
    eos = _day(pb.end_of_service)
    nominal = eos - timedelta(days=settings.replacement_margin_days)
    latest = max(nominal, _day(now))
    out = []
    for a in proposals:
        start = _day(_start(a))
        if start > eos:
            outcome, tier = "booked-after-eos", Tier.CRITICAL
        elif start > latest:
            outcome, tier = "booked-late", Tier.WARNING
        else:
            continue
        notes = pump_notes if latest == nominal else (*pump_notes, "end-of-service-near")
        out.append(_finding(pb.basis, a, chart, latest, outcome, tier, pb.pump.ref, notes,
                            margin_days=settings.replacement_margin_days))
    return out


def _finding(basis: Draft, a: AppointmentFact, chart: ChartIndex, latest: date,
             outcome: str, tier: Tier, device_ref: str, notes: tuple[str, ...],
             margin_days: int | None = None) -> Finding:
    draft = basis.copy()
    name = label(a.codes[0], "", chart.terms) if a.codes else ""
    draft.see(Evidence(EvidenceLabel.PROPOSED_APPOINTMENT, reference=a.ref,
                       date=when(a.start), words=words(name=name or (a.description or ""))))
    draft.count("appointmentDate", iso_date(_start(a)), source=a.ref)
    if margin_days is not None:
        draft.count("replacementMarginDays", margin_days, "days",
                    source(SourceKind.SETTING, "booking.replacement_margin_days"))
    draft.count("latestSafeDate", latest.isoformat(), source=source(SourceKind.COMPUTED))
    draft.note(*notes)
    # Moving the appointment only helps when there is an earlier day to move it to.
    return draft.finding(outcome, tier, device_ref=device_ref,
                         suggest=latest < _day(_start(a)), target_ref=a.ref)
