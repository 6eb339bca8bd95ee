"""Outcome of an ITB screening trial (clinical-rules.md section 3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from cds_service.config import Settings, TrialSettings
from cds_service.fhir.record import (
    Concept,
    ObservationFact,
    ObservationValue,
    PatientRecord,
    ProcedureFact,
    Quantity,
)
from cds_service.rules.chart import (
    active_conditions,
    is_intrathecal_baclofen,
    label,
    observations_of,
    procedure_done,
    quantity_of,
    when,
)
from cds_service.rules.dates import iso_date, iso_instant
from cds_service.rules.dose import dose_mcg, mass_mcg
from cds_service.rules.finding import Evidence, Finding, Number, Tier
from cds_service.rules.pump import implants
from cds_service.terminology import Match, Terminology

RULE_ID = "itb-trial-outcome"
RULE_VERSION = "1.0.0"
OUTCOMES = ("positive", "negative-next-step", "negative-final", "undocumented", "adverse")
NOTES = (
    "overdose-review-first",
    "equivocal", "trial-dose-unknown", "effect-duration-unknown", "origin-spinal",
    "origin-cerebral", "origin-unknown", "implant-referral-open", "repeat-trial-open",
    "result-positive", "result-negative", "result-undetermined",
)

_LABEL_WINDOWS = TrialSettings()  # the labeled defaults, for callers without settings
_SAME_TRIAL = timedelta(hours=12)
_MCG_IN_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(mcg|micrograms?|µg|ug)\b", re.IGNORECASE)
_MAS_TEXT = {"0": 0.0, "1": 1.0, "1+": 1.5, "2": 2.0, "3": 3.0, "4": 4.0}


@dataclass(frozen=True, slots=True)
class Trial:
    at: datetime
    refs: tuple[str, ...]
    dose_mcg: float | None
    evidence: tuple[Evidence, ...]


def _needs_baclofen_ok(p: ProcedureFact, record: PatientRecord, terms: Terminology) -> bool:
    words = " ".join([p.code.words(), *(c.words() for c in p.used_codes), *p.notes]).lower()
    if "baclofen" in words or any(terms.match("intrathecal-baclofen", c) for c in p.used_codes):
        return True
    return any(
        p.ref in m.part_of and is_intrathecal_baclofen(m, terms) for m in record.medications
    )


def trial_procedure_match(p: ProcedureFact, record: PatientRecord, terms: Terminology
                          ) -> Match | None:
    """The itb-trial-procedure match of a procedure, with the baclofen link the generic
    injection codes (CPT 62320-62327, 62311) need: an epidural steroid injection is no trial."""
    found = terms.match("itb-trial-procedure", p.code)
    if found is None:
        return None
    if "needs-baclofen" in found.tags and not _needs_baclofen_ok(p, record, terms):
        return None
    return found


def _procedure_dose(p: ProcedureFact) -> float | None:
    for value in (*p.notes, *(c.words() for c in p.used_codes), p.code.words()):
        found = _MCG_IN_TEXT.search(value or "")
        if found:
            return float(found.group(1))
    for _url, ext_value in p.extensions:
        if isinstance(ext_value, Quantity):
            mcg = mass_mcg(ext_value)
            if mcg is not None:
                return mcg
        if isinstance(ext_value, int | float) and not isinstance(ext_value, bool) and (
                0 < ext_value <= 500):
            return float(ext_value)
    return None


def _events(record: PatientRecord, now: datetime, settings: Settings, terms: Terminology
            ) -> list[tuple[datetime, str, float | None, Evidence]]:
    since = now - timedelta(days=settings.trial.lookback_days)
    events: list[tuple[datetime, str, float | None, Evidence]] = []
    for p in record.procedures:
        if not procedure_done(p) or p.performed is None or not since <= p.performed <= now:
            continue
        found = trial_procedure_match(p, record, terms)
        if found is None:
            continue
        dose = _procedure_dose(p)
        events.append((p.performed, p.ref, dose, Evidence(
            what=f"Screening trial: {label(p.code, 'procedure', terms)}", reference=p.ref,
            code=found.token, date=when(p.performed),
            value=f"{dose:g} mcg" if dose is not None else None)))
    for m in record.medications:
        if m.kind != "MedicationAdministration" or not is_intrathecal_baclofen(m, terms):
            continue
        if (m.status or "").lower() not in ("completed", "in-progress"):
            continue
        at = m.effective.start
        if at is None or not since <= at <= now:
            continue
        dose = next((d for d in (dose_mcg(x.dose) for x in m.dosages) if d is not None), None)
        events.append((at, m.ref, dose, Evidence(
            what=f"Intrathecal baclofen bolus: {label(m.medication, 'baclofen', terms)}",
            reference=m.ref, date=when(at), value=f"{dose:g} mcg" if dose is not None else None)))
    return sorted(events, key=lambda e: e[0])


def latest_trial(record: PatientRecord, now: datetime, settings: Settings, terms: Terminology
                 ) -> Trial | None:
    events = _events(record, now, settings, terms)
    if not events:
        return None
    last_at = events[-1][0]
    same = [e for e in events if last_at - e[0] <= _SAME_TRIAL]
    # An administration's own dose beats a dose read from a procedure note.
    doses = [e[2] for e in same if e[2] is not None]
    at = min(e[0] for e in same)
    return Trial(at, tuple(e[1] for e in same), doses[-1] if doses else None,
                 tuple(e[3] for e in same))


def _instant(moment: datetime | None) -> str | None:
    return iso_instant(moment) if moment is not None else None


def _linked(o: ObservationFact, trial: Trial) -> bool:
    return bool(set(o.part_of + o.derived_from + o.focus) & set(trial.refs))


def _in_baseline(moment: datetime, trial_at: datetime, t: TrialSettings) -> bool:
    return trial_at - timedelta(hours=t.baseline_hours) <= moment <= trial_at


def _in_post(moment: datetime, trial_at: datetime, t: TrialSettings) -> bool:
    return (trial_at + timedelta(hours=t.post_from_hours) <= moment
            <= trial_at + timedelta(hours=t.post_to_hours))


def _response(record: PatientRecord, trial: Trial, terms: Terminology, t: TrialSettings
              ) -> tuple[str, ObservationFact] | None:
    window_end = trial.at + timedelta(hours=t.response_window_hours)
    candidates = [
        o for o in observations_of(record, terms, "itb-trial-response")
        if _linked(o, trial) or (o.effective is not None and trial.at <= o.effective
                                 <= window_end)
    ]
    for o in reversed(candidates):
        if isinstance(o.value, bool):
            return ("positive" if o.value else "negative"), o
        if isinstance(o.value, Concept):
            found = terms.match("trial-response", o.value)
            if found is not None and found.group:
                return found.group, o
        if isinstance(o.value, str):
            found = terms.match_text("trial-response", o.value)
            if found is not None and found.group:
                return found.group, o
    return None


def mas_score(value: ObservationValue) -> float | None:
    """Modified Ashworth score; "1+" counts as 1.5."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if 0 <= value <= 4 else None
    if isinstance(value, Quantity):
        return value.value if value.value is not None and 0 <= value.value <= 4 else None
    texts: list[str] = []
    if isinstance(value, Concept):
        texts = [c.code or "" for c in value.codings] + [value.text or ""] + [
            c.display or "" for c in value.codings]
    elif isinstance(value, str):
        texts = [value]
    for text in texts:
        key = text.strip().replace(" ", "")
        if key in _MAS_TEXT:
            return _MAS_TEXT[key]
    return None


def _site(o: ObservationFact) -> str:
    if o.body_site is None:
        return "unspecified"
    for c in o.body_site.codings:
        if c.code:
            return f"{c.system}|{c.code}"
    return (o.body_site.text or "unspecified").strip().lower()


@dataclass(frozen=True, slots=True)
class SitePair:
    """One body site's Modified Ashworth score before (baseline) and after the trial."""

    site: str
    before: ObservationFact
    after: ObservationFact
    drop: float


def mas_pairs(observations: list[ObservationFact], trial_at: datetime,
              t: TrialSettings = _LABEL_WINDOWS) -> list[SitePair]:
    """Per body site: the latest score in the baseline window, the lowest in the post window."""
    baseline: dict[str, tuple[datetime, float, ObservationFact]] = {}
    post: dict[str, tuple[float, ObservationFact]] = {}
    for o in observations:
        score = mas_score(o.value)
        if score is None or o.effective is None:
            continue
        site = _site(o)
        if _in_baseline(o.effective, trial_at, t):
            if site not in baseline or o.effective >= baseline[site][0]:
                baseline[site] = (o.effective, score, o)
        elif _in_post(o.effective, trial_at, t):
            if site not in post or score < post[site][0]:
                post[site] = (score, o)
    return [SitePair(s, baseline[s][2], post[s][1], baseline[s][1] - post[s][0])
            for s in baseline if s in post]


def mas_mean_drop(observations: list[ObservationFact], trial_at: datetime,
                  t: TrialSettings = _LABEL_WINDOWS) -> tuple[float, int] | None:
    """Mean drop over body sites with both a baseline and a post score."""
    pairs = mas_pairs(observations, trial_at, t)
    if not pairs:
        return None
    return sum(p.drop for p in pairs) / len(pairs), len(pairs)


def _score_text(o: ObservationFact) -> str | None:
    score = mas_score(o.value)
    if score is None:
        return None
    return "1+" if score == 1.5 else f"{score:g}"


def _site_label(o: ObservationFact) -> str:
    return label(o.body_site, "site not recorded")


def _penn_drop(observations: list[ObservationFact], trial_at: datetime, t: TrialSettings
               ) -> tuple[float, ObservationFact, ObservationFact] | None:
    before = [o for o in observations
              if o.effective is not None and _in_baseline(o.effective, trial_at, t)]
    after = [o for o in observations
             if o.effective is not None and _in_post(o.effective, trial_at, t)]

    def score(o: ObservationFact) -> float | None:
        q = quantity_of(o)
        if q is not None and q.value is not None:
            return q.value
        if isinstance(o.value, str) and o.value.strip().isdigit():
            return float(o.value.strip())
        return None

    base = [(v, o) for v, o in ((score(o), o) for o in sorted(
        before, key=lambda x: x.effective or trial_at)) if v is not None]
    post = [(v, o) for v, o in ((score(o), o) for o in after) if v is not None]
    if not base or not post:
        return None
    lowest = min(post, key=lambda x: x[0])
    return base[-1][0] - lowest[0], base[-1][1], lowest[1]


def _overdose(record: PatientRecord, trial: Trial, now: datetime, terms: Terminology
              ) -> list[Evidence]:
    found: list[Evidence] = []
    for e in record.adverse_events:
        if (e.actuality or "actual") == "potential" or e.date is None:
            continue
        if trial.at <= e.date <= now and terms.match("overdose-signs", e.event):
            found.append(Evidence(what=label(e.event, "adverse event", terms), reference=e.ref,
                                  date=when(e.date)))
    for c in record.conditions:
        at = c.onset or c.recorded
        if at is None or (c.verification_status or "") in ("entered-in-error", "refuted"):
            continue
        if trial.at <= at <= now and terms.match("overdose-signs", c.code):
            found.append(Evidence(what=label(c.code, "condition", terms), reference=c.ref,
                                  date=when(at)))
    return found


def _effect_hours(record: PatientRecord, trial: Trial, terms: Terminology, t: TrialSettings
                  ) -> float | None:
    window_end = trial.at + timedelta(hours=t.effect_record_window_hours)
    for o in reversed(observations_of(record, terms, "itb-trial-effect-duration")):
        if _linked(o, trial) or (o.effective is not None and trial.at <= o.effective
                                 <= window_end):
            q = quantity_of(o)
            if q is not None and q.value is not None:
                unit = (q.code or q.unit or "h").lower()
                return q.value / 60.0 if unit in ("min", "minutes") else q.value
    return None


def _origin(record: PatientRecord, terms: Terminology) -> str:
    groups = {c.match.group for c in active_conditions(record, terms, "spasticity-origin")}
    if "spinal" in groups:
        return "origin-spinal"
    if groups & {"cerebral", "tbi"}:
        return "origin-cerebral"
    return "origin-unknown"


def _open_request(record: PatientRecord, terms: Terminology, code: str, after: datetime
                  ) -> bool:
    for s in record.service_requests:
        if (s.status or "").lower() not in ("active", "draft", "on-hold"):
            continue
        if terms.has_local(s.code, code):
            return True
        if code == "itb-implant-referral" and terms.match("itb-pump-implant", s.code):
            return True
        if code == "itb-screening-trial" and (s.authored or after) >= after and terms.match(
                "itb-trial-procedure", s.code):
            return True
    return False


def trial_outcome(record: PatientRecord, now: datetime, settings: Settings, terms: Terminology
                  ) -> list[Finding]:
    trial = latest_trial(record, now, settings, terms)
    if trial is None:
        return []
    if any(p.performed is not None and p.performed > trial.at for p in implants(record, terms)):
        return []
    evidence = list(trial.evidence)
    numbers: list[Number] = [Number("trialDate", iso_date(trial.at), source=trial.refs[0])]
    notes: list[str] = []
    if trial.dose_mcg is not None:
        numbers.append(Number("trialDoseMcg", trial.dose_mcg, "mcg", trial.refs[0]))
    else:
        notes.append("trial-dose-unknown")

    result: str | None = None
    response = _response(record, trial, terms, settings.trial)
    if response is not None:
        result, obs = response
        evidence.append(Evidence(what="Trial response", reference=obs.ref,
                                 date=when(obs.effective), value=result))
        if result == "equivocal":
            notes.append("equivocal")
            result = "negative"
    if result is None:
        mas = observations_of(record, terms, "modified-ashworth-scale")
        pairs = mas_pairs(mas, trial.at, settings.trial)
        if pairs:
            mean, sites = sum(p.drop for p in pairs) / len(pairs), len(pairs)
            result = "positive" if mean >= settings.trial.mas_drop - 1e-9 else "negative"
            numbers += [Number("masMeanDrop", round(mean, 3), source="Modified Ashworth"),
                        Number("masSites", sites), Number("masDropThreshold",
                                                          settings.trial.mas_drop,
                                                          source="setting trial.mas_drop")]
            for pair in pairs:
                for o, when_ in ((pair.before, "before"), (pair.after, "after")):
                    evidence.append(Evidence(
                        what=f"Modified Ashworth, {_site_label(o)}, {when_} the trial",
                        reference=o.ref, date=_instant(o.effective), value=_score_text(o)))
    if result is None:
        found = _penn_drop(observations_of(record, terms, "penn-spasm-frequency"), trial.at,
                           settings.trial)
        if found is not None:
            penn, penn_before, penn_after = found
            result = "positive" if penn >= settings.trial.penn_drop else "negative"
            numbers.append(Number("pennDrop", penn, source="Penn spasm frequency"))
            for o, when_ in ((penn_before, "before"), (penn_after, "after")):
                q = quantity_of(o)
                value = f"{q.value:g}" if q is not None and q.value is not None else str(o.value)
                evidence.append(Evidence(what=f"Penn spasm frequency, {when_} the trial",
                                         reference=o.ref, date=_instant(o.effective),
                                         value=value))

    overdose = _overdose(record, trial, now, terms)
    hours_since = (now - trial.at).total_seconds() / 3600.0
    if result is None and not overdose and hours_since < settings.trial.undocumented_after_hours:
        return []  # the effect is still being watched

    outcome, tier, suggest = "undocumented", Tier.WARNING, False
    if result == "positive":
        outcome, tier, suggest = "positive", Tier.INFO, True
        effect = _effect_hours(record, trial, terms, settings.trial)
        notes.append(_origin(record, terms))
        if effect is not None:
            numbers.append(Number("effectDurationH", effect, "h"))
        else:
            notes.append("effect-duration-unknown")
        if trial.dose_mcg is not None:
            twice = Number("startingDoseTwiceMcgPerDay", 2 * trial.dose_mcg, "mcg/day", "label")
            once = Number("startingDoseOnceMcgPerDay", trial.dose_mcg, "mcg/day", "label")
            if effect is None:
                numbers += [twice, once]
            else:
                numbers.append(Number("startingDoseMcgPerDay",
                                      (2 if effect < settings.trial.long_effect_hours else 1)
                                      * trial.dose_mcg,
                                      "mcg/day", "label"))
        if _open_request(record, terms, "itb-implant-referral", trial.at):
            notes.append("implant-referral-open")
            suggest = False
    elif result == "negative":
        steps = sorted(settings.trial.labeled_steps_mcg)
        if trial.dose_mcg is not None and trial.dose_mcg >= steps[-1]:
            outcome, tier, suggest = "negative-final", Tier.WARNING, False
        else:
            outcome, tier, suggest = "negative-next-step", Tier.INFO, True
            if trial.dose_mcg is not None:
                step = next(s for s in steps if s > trial.dose_mcg)
                numbers.append(Number("nextDoseMcg", step, "mcg", "label"))
            earliest = trial.at + timedelta(hours=settings.trial.repeat_after_hours)
            numbers.append(Number("earliestRepeatDate", iso_date(earliest)))
            if earliest.astimezone(UTC).time() != time():
                # A timed trial: "no sooner than 24 h after" is an instant, not a day.
                numbers.append(Number("earliestRepeatAt", iso_instant(earliest)))
            if _open_request(record, terms, "itb-screening-trial", trial.at):
                notes.append("repeat-trial-open")
                suggest = False
    if overdose and suggest and outcome in ("positive", "negative-next-step"):
        # The overdose warning asks for a review before any further dose or implantation:
        # the outcome card must not offer that next step meanwhile.
        suggest = False
        notes.append("overdose-review-first")
    origin = tuple(c.fact.ref for c in active_conditions(record, terms, "spasticity-origin"))
    findings: list[Finding] = []
    if result is not None or hours_since >= settings.trial.undocumented_after_hours:
        findings.append(Finding(
            rule=RULE_ID, rule_version=RULE_VERSION, outcome=outcome, tier=tier,
            evidence=tuple(evidence), numbers=tuple(numbers),
            notes=tuple(dict.fromkeys(notes)), reason_refs=origin, suggest=suggest,
        ))
    if overdose:
        # A separate warning "whatever the outcome": the outcome card keeps its own meaning.
        findings.append(Finding(
            rule=RULE_ID, rule_version=RULE_VERSION, outcome="adverse", tier=Tier.WARNING,
            evidence=tuple(trial.evidence) + tuple(overdose), numbers=tuple(numbers),
            notes=(f"result-{result or 'undetermined'}",), reason_refs=origin, suggest=False,
        ))
    return findings
