"""Which screening trial the outcome rule judges (rule book: itb-trial-outcome): the latest
completed trial procedure or intrathecal baclofen bolus in the look-back, and its dose."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cds_service.config import TrialSettings
from cds_service.fhir.record import MedicationFact, ProcedureFact
from cds_service.rules.chart import label, when
from cds_service.rules.finding import Evidence, EvidenceLabel, words
from cds_service.rules.index import ChartIndex
from cds_service.rules.strength import (
    convert,
    dose_mcg,
    stated_dose_mcg,
    strength_of,
    written_dose_mcg,
)
from cds_service.terminology import Terminology, Units


@dataclass(frozen=True, slots=True)
class Trial:
    at: datetime
    refs: tuple[str, ...]
    dose_mcg: float | None
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class _Event:
    """One charted piece of a trial: the procedure, or the bolus given."""

    at: datetime
    ref: str
    dose_mcg: float | None
    evidence: Evidence


def _dose_text(dose: float | None) -> str | None:
    return f"{dose:g} mcg" if dose is not None else None


def _procedure_dose(p: ProcedureFact, units: Units, settings: TrialSettings) -> float | None:
    for text in (*p.notes, *(c.words() for c in p.used_codes), p.code.words()):
        mcg = written_dose_mcg(text, units)
        if mcg is not None:
            return mcg
    for _url, ext_value in p.extensions:
        mcg = stated_dose_mcg(ext_value, units, settings.bare_dose_max_mcg)
        if mcg is not None:
            return mcg
    return None


def _bolus_dose(m: MedicationFact, terms: Terminology) -> tuple[float | None, str | None]:
    """The bolus in mcg and how the card shows it: "2 mL x 50 mcg/mL = 100 mcg" when it was
    charted as a volume of the screening ampoule (rule book: itb-trial-outcome, decisions)."""
    strength = strength_of(m, terms)
    strength = strength.in_micrograms() if strength is not None else None
    for dosage in m.dosages:
        dose = dose_mcg(dosage.dose, terms.units, strength)
        if dose is not None:
            conversion = convert(dosage.dose, terms.units, strength)
            return dose, conversion.shown() if conversion is not None else _dose_text(dose)
    return None, None


def _events(chart: ChartIndex, now: datetime, settings: TrialSettings,
            since: datetime | None = None) -> list[_Event]:
    since = since or now - timedelta(days=settings.lookback_days)
    units = chart.terms.units
    events: list[_Event] = []
    for trial in chart.trial_procedures:
        p = trial.fact
        if p.performed is None or not since <= p.performed <= now:
            continue
        dose = _procedure_dose(p, units, settings)
        events.append(_Event(p.performed, p.ref, dose, Evidence(
            EvidenceLabel.TRIAL_PROCEDURE, reference=p.ref, code=trial.match.token,
            date=when(p.performed), value=_dose_text(dose),
            words=words(name=label(p.code, "", chart.terms)))))
    for m in chart.itb_given:
        at = m.effective.start
        if at is None or not since <= at <= now:
            continue
        dose, shown = _bolus_dose(m, chart.terms)
        events.append(_Event(at, m.ref, dose, Evidence(
            EvidenceLabel.TRIAL_BOLUS, reference=m.ref, date=when(at), value=shown,
            words=words(name=label(m.medication, "", chart.terms)))))
    return sorted(events, key=lambda e: e.at)


def latest_trial(chart: ChartIndex, now: datetime, settings: TrialSettings) -> Trial | None:
    """The latest trial in the look-back; what was charted within settings.same_trial_hours
    of it (the procedure and its bolus) is the same trial."""
    events = _events(chart, now, settings)
    return _trial_of(events, settings) if events else None


def trials_on_file(chart: ChartIndex, now: datetime, settings: TrialSettings) -> list[Trial]:
    """Every dated trial charted up to now, whatever its age, latest first (rule book:
    itb-candidacy, decisions: candidacy weighs them all)."""
    events = _events(chart, now, settings, since=datetime.min.replace(tzinfo=UTC))
    trials: list[Trial] = []
    while events:
        trial = _trial_of(events, settings)
        trials.append(trial)
        events = [e for e in events if e.at < trial.at]
    return trials


def _trial_of(events: list[_Event], settings: TrialSettings) -> Trial:
    """The trial of the latest event: what was charted close before it is the same trial."""
    last_at = events[-1].at
    same = [e for e in events if last_at - e.at <= timedelta(hours=settings.same_trial_hours)]
    # An administration's own dose beats a dose read from a procedure note.
    doses = [e.dose_mcg for e in same if e.dose_mcg is not None]
    at = min(e.at for e in same)
    return Trial(at, tuple(e.ref for e in same), doses[-1] if doses else None,
                 tuple(e.evidence for e in same))
