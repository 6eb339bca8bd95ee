"""Pump refill due / overdue (rule book: itb-refill)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cds_service.config import RefillSettings
from cds_service.fhir.record import MedicationFact, ObservationFact, ProcedureFact, Quantity
from cds_service.rules import dataquality
from cds_service.rules.chart import label, quantity_of, when
from cds_service.rules.dates import add_days, calendar_days_until, iso_date
from cds_service.rules.dose import daily_dose_mcg, rate_mcg_per_day
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
    booked_refill,
    pump_evidence,
    stale_device_evidence,
)
from cds_service.rules.strength import (
    PER_ML,
    charted_volume_ml,
    concentration_mcg_per_ml,
    strength_of,
)
from cds_service.terminology import Units

RULE_ID = "itb-refill"
RULE_VERSION = "1.1.0"
OUTCOMES = ("empty", "overdue", "due-soon", "notice", "booked")
NOTES = (
    "volume-from-model", "reserve-default", "alarm-date-recorded", "implant-as-last-refill",
    "concentration-from-product", "dose-from-observation", "booked-but-critical",
    "stability-limit-first",
)
PUMP_NOTES = ("no-backup-oral-baclofen",)


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


@dataclass(frozen=True, slots=True)
class _LastFill:
    """When the pump was last filled: the last refill, else the implant."""

    at: datetime
    refs: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Inputs:
    last: _LastFill
    volume_ml: float
    conc_mcg_ml: float
    dose_mcg_day: float


@dataclass(frozen=True, slots=True)
class PumpRefill:
    """One pump as the refill rule sees it: the card's finding (None: nothing due), the dates
    and, in ``basis``, every number and source behind them (None: an input is missing)."""

    pump: Pump
    finding: Finding | None
    dates: RefillDates | None = None
    basis: Draft | None = None
    booked: tuple[datetime, str] | None = None  # a refill booked on or before the due date


def refill(chart: ChartIndex, now: datetime, settings: RefillSettings) -> list[Finding]:
    found = [p.finding for p in pumps(chart, now, settings) if p.finding is not None]
    return found + [dataquality.stale_device(stale_device_evidence(s, chart.terms))
                    for s in chart.stale_devices]


def pumps(chart: ChartIndex, now: datetime, settings: RefillSettings) -> list[PumpRefill]:
    """Every active pump, as the refill rule sees it (the booking check and the worklist read
    the dates of pumps that get no card as well)."""
    pump_notes = () if chart.backup_oral_baclofen else PUMP_NOTES
    return [_one_pump(pump, chart, now, settings, len(chart.pumps) > 1, pump_notes)
            for pump in chart.pumps]


def _one_pump(pump: Pump, chart: ChartIndex, now: datetime, settings: RefillSettings,
              multiple: bool, pump_notes: tuple[str, ...]) -> PumpRefill:
    draft = Draft(RULE_ID, RULE_VERSION)
    if pump.device is not None:
        draft.see(pump_evidence(pump.device, pump.model))
    inputs = _inputs(pump, chart, now, settings, multiple, draft)
    if inputs is None:
        draft.note(*pump_notes)
        return PumpRefill(pump, draft.missing_data(device_ref=pump.ref))
    last = inputs.last.at
    reserve = _reserve(chart, settings, draft)
    alarm_obs = _recorded_alarm(chart, last, settings)
    recorded_alarm: datetime | None = None
    if alarm_obs is not None:
        assert isinstance(alarm_obs.value, datetime)
        recorded_alarm = alarm_obs.value
        draft.note("alarm-date-recorded")
    dates = refill_dates(last, inputs.volume_ml, inputs.conc_mcg_ml, inputs.dose_mcg_day,
                         reserve, settings.max_interval_days, recorded_alarm)
    if dates.stability_limit < dates.alarm:
        draft.note("stability-limit-first")
    _count_dates(draft, dates, inputs, reserve, alarm_obs, settings)
    draft.count("daysUntilDue", calendar_days_until(dates.due, now), "d")
    basis = draft.copy()
    graded = _grade(dates, now, settings)
    # Past due, any refill still to come is worth saying (it lowers nothing).
    critical = graded is not None and graded[1] is Tier.CRITICAL
    booking = booked_refill(chart.record, chart.terms, last, None if critical else dates.due,
                            now)
    if graded is None:
        return PumpRefill(pump, None, dates, basis, booking)
    outcome, tier = graded
    suggest = True
    if booking is not None:
        draft.see(Evidence(EvidenceLabel.REFILL_BOOKED, reference=booking[1],
                           date=when(booking[0])))
        draft.count("bookedDate", iso_date(booking[0]), source=booking[1])
        if tier is Tier.CRITICAL:
            draft.note("booked-but-critical")
        else:
            outcome, tier, suggest = "booked", Tier.INFO, False
    draft.note(*pump_notes)
    finding = draft.finding(outcome, tier, device_ref=pump.ref, suggest=suggest)
    return PumpRefill(pump, finding, dates, basis, booking)


def _count_dates(draft: Draft, dates: RefillDates, inputs: _Inputs, reserve: float,
                 alarm_obs: ObservationFact | None, settings: RefillSettings) -> None:
    """The dates and how long each supply lasts: the card shows the arithmetic with them."""
    computed = source(SourceKind.COMPUTED)
    supply = inputs.conc_mcg_ml / inputs.dose_mcg_day
    if alarm_obs is None:
        draft.count("alarmAfterDays", round(max(inputs.volume_ml - reserve, 0.0) * supply, 1),
                    "days", computed)
        draft.count("alarmDate", iso_date(dates.alarm), source=computed)
    else:
        draft.see(Evidence(EvidenceLabel.ALARM_DATE, reference=alarm_obs.ref,
                           date=when(alarm_obs.effective), value=iso_date(dates.alarm)))
        draft.count("alarmDate", iso_date(dates.alarm), source=alarm_obs.ref)
    draft.count("emptyAfterDays", round(inputs.volume_ml * supply, 1), "days", computed)
    draft.count("emptyDate", iso_date(dates.empty), source=computed)
    draft.count("stabilityDays", settings.max_interval_days, "days",
                source(SourceKind.SETTING, "refill.max_interval_days"))
    draft.count("stabilityLimitDate", iso_date(dates.stability_limit), source=computed)
    draft.count("dueDate", iso_date(dates.due), source=computed)


def _grade(dates: RefillDates, now: datetime, settings: RefillSettings
           ) -> tuple[str, Tier] | None:
    if now >= dates.empty:
        return "empty", Tier.CRITICAL
    if now >= dates.due:
        return "overdue", Tier.CRITICAL
    if dates.due - now <= timedelta(days=settings.warn_days):
        return "due-soon", Tier.WARNING
    if dates.due - now <= timedelta(days=settings.notice_days):
        return "notice", Tier.INFO
    return None


# ------------------------------------------------------------------ V, C and D


def _inputs(pump: Pump, chart: ChartIndex, now: datetime, settings: RefillSettings,
            multiple: bool, draft: Draft) -> _Inputs | None:
    """The last fill, V, C and D, each with its source; None when one is missing (the draft
    then names every missing one)."""
    last = _last_fill(pump, chart, now, multiple, draft)
    volume: float | None = None
    conc: float | None = None
    if last is not None:
        volume = _volume(pump, chart, last, settings, draft)
        conc = _observed_concentration(chart, last, settings, draft)
        if conc is None:
            conc = _product_concentration(chart, draft)
    dose = _daily_dose(chart, draft)
    if draft.missing or last is None or volume is None or conc is None or dose is None:
        return None
    return _Inputs(last, volume, conc, dose)


def _last_fill(pump: Pump, chart: ChartIndex, now: datetime, multiple: bool, draft: Draft
               ) -> _LastFill | None:
    last_proc = _refill_for(pump, chart, now, multiple)
    if last_proc is not None and last_proc.performed is not None:
        at = last_proc.performed
        draft.see(Evidence(EvidenceLabel.LAST_REFILL, reference=last_proc.ref, date=when(at),
                           words=words(name=label(last_proc.code, "", chart.terms))))
        draft.count("lastRefillDate", iso_date(at), source=last_proc.ref)
        return _LastFill(at, frozenset({last_proc.ref}))
    if pump.implant is not None and pump.implanted is not None:
        at = pump.implanted
        draft.note("implant-as-last-refill")
        draft.see(Evidence(EvidenceLabel.IMPLANT_AS_LAST_REFILL, reference=pump.implant.ref,
                           date=when(at)))
        draft.count("lastRefillDate", iso_date(at), source=pump.implant.ref)
        return _LastFill(at, frozenset({pump.implant.ref}))
    draft.lack(MissingInput.LAST_REFILL_DATE)
    return None


def _refill_for(pump: Pump, chart: ChartIndex, now: datetime, multiple: bool
                ) -> ProcedureFact | None:
    done = [p for p in chart.refills_for(pump.device_refs)
            if p.performed is not None and p.performed <= now]
    if pump.implanted is not None:
        done = [p for p in done if p.performed is not None and p.performed >= pump.implanted]
    if multiple and pump.device is not None:
        done = [p for p in done
                if not p.focal_devices or set(p.focal_devices) & pump.device_refs]
    return done[-1] if done else None


def _near(o: ObservationFact, last: _LastFill, settings: RefillSettings) -> bool:
    if set(o.part_of + o.derived_from + o.focus) & last.refs:
        return True
    # The same calendar day, +- 1 day: a reading charted the next evening still belongs.
    return o.effective is not None and abs(
        calendar_days_until(o.effective, last.at)) <= settings.same_visit_days


_Reading = Callable[[Quantity | None, Units], float | None]


def _latest(observations: Iterable[ObservationFact], read: _Reading, units: Units,
            keep: Callable[[ObservationFact, float], bool] = lambda _o, _v: True
            ) -> tuple[ObservationFact, float] | None:
    """The latest observation whose quantity ``read`` turns into a number that ``keep``
    accepts, with that number (each read once)."""
    found: tuple[ObservationFact, float] | None = None
    for o in observations:
        value = read(quantity_of(o), units)
        if value is not None and keep(o, value):
            found = (o, value)
    return found


def _volume(pump: Pump, chart: ChartIndex, last: _LastFill, settings: RefillSettings,
            draft: Draft) -> float | None:
    near = _latest(chart.observations("pump-reservoir-volume"), charted_volume_ml,
                   chart.terms.units, lambda o, ml: ml != 0 and _near(o, last, settings))
    if near is not None and near[1] > 0:
        draft.see(_observed(EvidenceLabel.RESERVOIR_VOLUME, near[0]))
        draft.count("volumeMl", near[1], "mL", near[0].ref)
        return near[1]
    if pump.model is not None and pump.model.reservoir_ml:
        draft.note("volume-from-model")
        draft.count("volumeMl", pump.model.reservoir_ml, "mL",
                    source(SourceKind.MODEL, pump.model.name))
        return pump.model.reservoir_ml
    draft.lack(MissingInput.REFILL_VOLUME)
    return None


def _observed(what: EvidenceLabel, o: ObservationFact) -> Evidence:
    """The observation a number was read from (the number's source cites it)."""
    q = quantity_of(o)
    value = f"{q.value:g} {q.unit or q.code or ''}".strip() if q and q.value is not None else None
    return Evidence(what, reference=o.ref, date=when(o.effective), value=value)


def _observed_concentration(chart: ChartIndex, last: _LastFill, settings: RefillSettings,
                            draft: Draft) -> float | None:
    found = _latest(chart.observations("pump-drug-concentration"), concentration_mcg_per_ml,
                    chart.terms.units, lambda o, _: _near(o, last, settings) or (
                        o.effective is not None and o.effective <= last.at))
    if found is None:
        return None
    draft.see(_observed(EvidenceLabel.CONCENTRATION, found[0]))
    draft.count("concentrationMcgPerMl", found[1], "mcg/mL", found[0].ref)
    return found[1]


def _concentration_of_product(m: MedicationFact, chart: ChartIndex) -> float | None:
    strength = strength_of(m, chart.terms)
    return strength.mcg if strength is not None and strength.per == PER_ML else None


def _product_concentration(chart: ChartIndex, draft: Draft) -> float | None:
    """The strength of the intrathecal baclofen product: the current order's, else the latest
    product on file."""
    products = [m.fact for m in chart.meds if m.itb
                and _concentration_of_product(m.fact, chart) is not None
                and (m.fact.status or "") != "entered-in-error"]
    if not products:
        draft.lack(MissingInput.PUMP_CONCENTRATION)
        return None
    orders = chart.itb_orders
    chosen = products[-1] if not orders or orders[-1] not in products else orders[-1]
    conc = _concentration_of_product(chosen, chart)
    draft.note("concentration-from-product")
    draft.see(_itb_order(chosen, chart))
    draft.count("concentrationMcgPerMl", conc or 0.0, "mcg/mL", chosen.ref)
    return conc


def _itb_order(m: MedicationFact, chart: ChartIndex) -> Evidence:
    return Evidence(EvidenceLabel.ITB_ORDER, reference=m.ref,
                    date=when(m.effective.start or m.authored),
                    words=words(name=label(m.medication, "", chart.terms), kind=m.kind))


def _daily_dose(chart: ChartIndex, draft: Draft) -> float | None:
    """D: the latest current order with a readable dose, else the recorded pump daily dose."""
    for order in reversed(chart.itb_orders):
        dose = daily_dose_mcg(order, chart.terms)
        if dose is not None and dose > 0:
            if order.ref not in {e.reference for e in draft.evidence}:
                draft.see(_itb_order(order, chart))
            draft.count("dailyDoseMcgPerDay", round(dose, 3), "mcg/day", order.ref)
            return dose
    recorded = _latest(chart.observations("pump-daily-dose"), _recorded_rate, chart.terms.units,
                       lambda _, mcg: mcg > 0)
    if recorded is None:
        draft.lack(MissingInput.PUMP_DAILY_DOSE)
        return None
    draft.note("dose-from-observation")
    draft.see(_observed(EvidenceLabel.PUMP_DOSE_RECORD, recorded[0]))
    draft.count("dailyDoseMcgPerDay", recorded[1], "mcg/day", recorded[0].ref)
    return recorded[1]


def _recorded_rate(q: Quantity | None, units: Units) -> float | None:
    """The programmer's daily dose: the local code's unit (mcg/day) when none is given."""
    return rate_mcg_per_day(q, units, unitless_is_mcg_per_day=True)


# ------------------------------------------------------------------ R, the alarm, a booking


def _reserve(chart: ChartIndex, settings: RefillSettings, draft: Draft) -> float:
    programmed = _latest(chart.observations("pump-reserve-volume"), charted_volume_ml,
                         chart.terms.units)
    if programmed is not None:
        draft.see(_observed(EvidenceLabel.RESERVE_VOLUME, programmed[0]))
        draft.count("reserveMl", programmed[1], "mL", programmed[0].ref)
        return programmed[1]
    draft.note("reserve-default")
    draft.count("reserveMl", settings.reserve_ml, "mL",
                source(SourceKind.SETTING, "refill.reserve_ml"))
    return settings.reserve_ml


def _recorded_alarm(chart: ChartIndex, last: datetime, settings: RefillSettings
                    ) -> ObservationFact | None:
    """The low-reservoir alarm date the programmer printed at (or after) the last fill."""
    visit = timedelta(days=settings.same_visit_days)
    found = [o for o in chart.observations("pump-low-reservoir-alarm-date")
             if isinstance(o.value, datetime) and o.value >= last
             and (o.effective is None or o.effective >= last - visit)]
    return found[-1] if found else None
