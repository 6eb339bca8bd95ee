"""Pump refill due / overdue (clinical-rules.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cds_service.config import Settings
from cds_service.fhir.record import MedicationFact, ObservationFact, PatientRecord, ProcedureFact
from cds_service.rules.chart import (
    BOOKED_APPOINTMENT,
    CURRENT_MEDICATION,
    is_intrathecal_baclofen,
    label,
    observations_of,
    quantity_of,
    when,
)
from cds_service.rules.dataquality import missing_data
from cds_service.rules.dates import add_days, calendar_days_until, iso_date
from cds_service.rules.dose import daily_dose_mcg, mass_mcg, rate_mcg_per_day
from cds_service.rules.finding import Evidence, Finding, Number, Tier
from cds_service.rules.pump import (
    Pump,
    active_pumps,
    has_backup_oral_baclofen,
    refill_booking_matches,
    refills,
)
from cds_service.terminology import Terminology

RULE_ID = "itb-refill"
RULE_VERSION = "1.0.0"
OUTCOMES = ("empty", "overdue", "due-soon", "notice", "booked")
NOTES = (
    "volume-from-model", "reserve-default", "alarm-date-recorded", "implant-as-last-refill",
    "concentration-from-product", "dose-from-observation", "booked-but-critical",
    "stability-limit-first",
)
PUMP_NOTES = ("no-backup-oral-baclofen",)

_SAME_VISIT = timedelta(days=1)
_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RefillDates:
    alarm: datetime
    empty: datetime
    stability_limit: datetime
    due: datetime


def refill_dates(last: datetime, volume_ml: float, conc_mcg_ml: float, dose_mcg_day: float,
                 reserve_ml: float, max_interval_days: int,
                 recorded_alarm: datetime | None = None) -> RefillDates:
    """alarm = last + (V - R)·C/D days; empty = last + V·C/D; due = min(alarm, stability)."""
    usable = max(volume_ml - reserve_ml, 0.0)
    alarm = recorded_alarm or add_days(last, usable * conc_mcg_ml / dose_mcg_day)
    empty = add_days(last, volume_ml * conc_mcg_ml / dose_mcg_day)
    limit = add_days(last, max_interval_days)
    return RefillDates(alarm, empty, limit, min(alarm, limit))


def _near(o: ObservationFact, refs: set[str], at: datetime) -> bool:
    if set(o.part_of + o.derived_from + o.focus) & refs:
        return True
    return o.effective is not None and abs(o.effective - at) <= _SAME_VISIT


def _at_refill(obs: list[ObservationFact], refs: set[str], at: datetime
               ) -> ObservationFact | None:
    near = [o for o in obs if _near(o, refs, at) and quantity_of(o) is not None]
    return near[-1] if near else None


def _current_itb_orders(record: PatientRecord, terms: Terminology) -> list[MedicationFact]:
    orders = [
        m for m in record.medications
        if m.kind == "MedicationRequest" and not m.draft
        and (m.status or "").lower() in CURRENT_MEDICATION and is_intrathecal_baclofen(m, terms)
    ]
    # Undated orders sort first: a dated order is the better "latest".
    return sorted(orders, key=lambda m: (
        (m.authored or m.effective.start) is not None,
        (m.authored or m.effective.start or _EPOCH),
    ))


def _concentration_of_product(m: MedicationFact, terms: Terminology) -> float | None:
    strength = terms.product_strength(m.medication)
    if strength is not None and strength.per.lower() == "ml":
        return strength.mcg
    if m.strength is not None:
        num = mass_mcg(m.strength.numerator)
        den = m.strength.denominator
        if num is not None and den is not None and (den.code or den.unit or "").lower() == "ml":
            return num / (den.value or 1.0)
    return None


def _quantity_mcg_per_ml(o: ObservationFact) -> float | None:
    q = quantity_of(o)
    if q is None or q.value is None:
        return None
    unit = (q.code or q.unit or "mcg/mL").replace(" ", "").lower()
    if unit in ("mg/ml",):
        return q.value * 1000.0
    if unit in ("mcg/ml", "ug/ml", "µg/ml", "microgram/ml"):
        return q.value
    return None


def _dose_of_observation(o: ObservationFact) -> float | None:
    q = quantity_of(o)
    if q is None or q.value is None:
        return None
    if not (q.code or q.unit):
        return q.value  # the code says mcg/day
    return rate_mcg_per_day(q)


def _booking(record: PatientRecord, terms: Terminology, after: datetime, due: datetime,
             now: datetime) -> tuple[datetime, str] | None:
    found: list[tuple[datetime, str]] = []
    for a in record.appointments:
        if (a.status or "").lower() not in BOOKED_APPOINTMENT or a.start is None:
            continue
        if not (a.start >= after and a.start >= now - _SAME_VISIT and a.start <= due):
            continue
        if any(refill_booking_matches(terms, c) for c in a.codes) or refill_booking_matches(
                terms, None, a.description):
            found.append((a.start, a.ref))
    for s in record.service_requests:
        if (s.status or "").lower() != "active" or s.occurrence is None:
            continue
        if s.occurrence >= after and s.occurrence <= due and refill_booking_matches(
                terms, s.code):
            found.append((s.occurrence, s.ref))
    return min(found) if found else None


def _refill_for(pump: Pump, record: PatientRecord, terms: Terminology, now: datetime,
                multiple: bool) -> ProcedureFact | None:
    done = [p for p in refills(record, terms, pump.device_refs)
            if p.performed is not None and p.performed <= now]
    if pump.implanted is not None:
        done = [p for p in done if p.performed is not None and p.performed >= pump.implanted]
    if multiple and pump.device is not None:
        done = [p for p in done
                if not p.focal_devices or set(p.focal_devices) & pump.device_refs]
    return done[-1] if done else None


def refill(record: PatientRecord, now: datetime, settings: Settings, terms: Terminology
           ) -> list[Finding]:
    pumps = active_pumps(record, terms)
    findings: list[Finding] = []
    pump_notes = () if has_backup_oral_baclofen(record, terms) else PUMP_NOTES
    for pump in pumps:
        found = _one_pump(pump, record, now, settings, terms, len(pumps) > 1, pump_notes)
        if found is not None:
            findings.append(found)
    return findings


def _one_pump(pump: Pump, record: PatientRecord, now: datetime, settings: Settings,
              terms: Terminology, multiple: bool, pump_notes: tuple[str, ...]) -> Finding | None:
    notes: list[str] = []
    numbers: list[Number] = []
    evidence: list[Evidence] = []
    missing: list[str] = []
    if pump.device is not None:
        evidence.append(Evidence(what=f"Pump: {pump.model.name if pump.model else 'ITB pump'}",
                                 reference=pump.device.ref, value=pump.device.status))

    last_proc = _refill_for(pump, record, terms, now, multiple)
    last: datetime | None = None
    refs: set[str] = set()
    if last_proc is not None and last_proc.performed is not None:
        last = last_proc.performed
        refs = {last_proc.ref}
        evidence.append(Evidence(what=f"Last refill: {label(last_proc.code, 'refill', terms)}",
                                 reference=last_proc.ref, date=when(last)))
        numbers.append(Number("lastRefillDate", iso_date(last), source=last_proc.ref))
    elif pump.implant is not None and pump.implanted is not None:
        last = pump.implanted
        refs = {pump.implant.ref}
        notes.append("implant-as-last-refill")
        evidence.append(Evidence(what="Pump implant (filled at implant)",
                                 reference=pump.implant.ref, date=when(last)))
        numbers.append(Number("lastRefillDate", iso_date(last), source=pump.implant.ref))
    else:
        missing.append("date of the last pump refill (or of the implant)")

    volume: float | None = None
    conc: float | None = None
    if last is not None:
        v_obs = _at_refill(observations_of(record, terms, "pump-reservoir-volume"), refs, last)
        q = quantity_of(v_obs) if v_obs is not None else None
        if v_obs is not None and q is not None and q.value is not None and q.value > 0:
            volume = q.value
            numbers.append(Number("volumeMl", volume, "mL", v_obs.ref))
        elif pump.model is not None and pump.model.reservoir_ml:
            volume = pump.model.reservoir_ml
            notes.append("volume-from-model")
            numbers.append(Number("volumeMl", volume, "mL", f"model table: {pump.model.name}"))
        else:
            missing.append("reservoir volume put in at the last refill")

        c_obs = [o for o in observations_of(record, terms, "pump-drug-concentration")
                 if _quantity_mcg_per_ml(o) is not None and (
                     _near(o, refs, last) or (o.effective is not None and o.effective <= last))]
        if c_obs:
            conc = _quantity_mcg_per_ml(c_obs[-1])
            numbers.append(Number("concentrationMcgPerMl", conc or 0.0, "mcg/mL", c_obs[-1].ref))
    orders = _current_itb_orders(record, terms)
    if conc is None and last is not None:
        products = [m for m in record.medications if is_intrathecal_baclofen(m, terms)
                    and _concentration_of_product(m, terms) is not None
                    and (m.status or "") != "entered-in-error"]
        if products:
            chosen = products[-1] if not orders or orders[-1] not in products else orders[-1]
            conc = _concentration_of_product(chosen, terms)
            notes.append("concentration-from-product")
            numbers.append(Number("concentrationMcgPerMl", conc or 0.0, "mcg/mL", chosen.ref))
        else:
            missing.append("baclofen concentration in the pump (mcg/mL)")

    dose: float | None = None
    for order in reversed(orders):
        dose = daily_dose_mcg(order)
        if dose is not None and dose > 0:
            numbers.append(Number("dailyDoseMcgPerDay", round(dose, 3), "mcg/day", order.ref))
            break
        dose = None
    if dose is None:
        d_obs = [o for o in observations_of(record, terms, "pump-daily-dose")
                 if (_dose_of_observation(o) or 0) > 0]
        if d_obs:
            dose = _dose_of_observation(d_obs[-1])
            notes.append("dose-from-observation")
            numbers.append(Number("dailyDoseMcgPerDay", dose or 0.0, "mcg/day", d_obs[-1].ref))
        else:
            missing.append("programmed daily dose (mcg/day)")

    if missing or last is None or volume is None or conc is None or dose is None:
        return missing_data(RULE_ID, tuple(missing), evidence=tuple(evidence),
                            notes=tuple(notes) + pump_notes, device_ref=pump.ref,
                            numbers=tuple(numbers))

    r_obs = [o for o in observations_of(record, terms, "pump-reserve-volume")
             if quantity_of(o) is not None]
    reserve_q = quantity_of(r_obs[-1]) if r_obs else None
    if reserve_q is not None and reserve_q.value is not None:
        reserve = reserve_q.value
        numbers.append(Number("reserveMl", reserve, "mL", r_obs[-1].ref))
    else:
        reserve = settings.refill.reserve_ml
        notes.append("reserve-default")
        numbers.append(Number("reserveMl", reserve, "mL", "setting refill.reserve_ml"))

    recorded_alarm: datetime | None = None
    alarm_obs = [o for o in observations_of(record, terms, "pump-low-reservoir-alarm-date")
                 if isinstance(o.value, datetime) and o.value >= last
                 and (o.effective is None or o.effective >= last - _SAME_VISIT)]
    if alarm_obs:
        value = alarm_obs[-1].value
        assert isinstance(value, datetime)
        recorded_alarm = value
        notes.append("alarm-date-recorded")

    dates = refill_dates(last, volume, conc, dose, reserve, settings.refill.max_interval_days,
                         recorded_alarm)
    if dates.stability_limit < dates.alarm:
        notes.append("stability-limit-first")
    numbers += [
        Number("alarmDate", iso_date(dates.alarm),
               source=alarm_obs[-1].ref if alarm_obs else "computed (V - R)·C/D"),
        Number("emptyDate", iso_date(dates.empty), source="computed V·C/D"),
        Number("stabilityLimitDate", iso_date(dates.stability_limit),
               source="setting refill.max_interval_days"),
        Number("dueDate", iso_date(dates.due)),
        Number("daysUntilDue", calendar_days_until(dates.due, now), "d"),
    ]

    if now >= dates.empty:
        outcome, tier = "empty", Tier.CRITICAL
    elif now >= dates.due:
        outcome, tier = "overdue", Tier.CRITICAL
    elif dates.due - now <= timedelta(days=settings.refill.warn_days):
        outcome, tier = "due-soon", Tier.WARNING
    elif dates.due - now <= timedelta(days=settings.refill.notice_days):
        outcome, tier = "notice", Tier.INFO
    else:
        return None
    booking = _booking(record, terms, last, dates.due, now)
    suggest = True
    if booking is not None:
        numbers.append(Number("bookedDate", iso_date(booking[0]), source=booking[1]))
        if tier is Tier.CRITICAL:
            notes.append("booked-but-critical")
        else:
            outcome, tier, suggest = "booked", Tier.INFO, False
    return Finding(
        rule=RULE_ID, rule_version=RULE_VERSION, outcome=outcome, tier=tier,
        evidence=tuple(evidence), numbers=tuple(numbers),
        notes=tuple(dict.fromkeys(notes)) + pump_notes, device_ref=pump.ref, suggest=suggest,
    )

