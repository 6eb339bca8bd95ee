"""Outcome of an ITB screening trial (rule book: itb-trial-outcome)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from cds_service.config import TrialSettings
from cds_service.rules.chart import (
    VOID_VERIFICATION,
    label,
    observation_counts,
    quantity_of,
    when,
)
from cds_service.rules.dates import iso_date, iso_instant
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
from cds_service.rules.trial_events import Trial, latest_trial
from cds_service.rules.trial_scores import (
    effect_hours,
    mas_pairs,
    penn_drop,
    recorded_response,
    score_text,
    site_label,
)

RULE_ID = "itb-trial-outcome"
RULE_VERSION = "1.1.0"
OUTCOMES = ("positive", "negative-next-step", "negative-final", "undocumented", "adverse")
NOTES = (
    "overdose-review-first",
    "equivocal", "trial-dose-unknown", "effect-duration-unknown", "origin-spinal",
    "origin-cerebral", "origin-unknown", "implant-referral-open", "repeat-trial-open",
    "result-positive", "result-negative", "result-undetermined",
)


def _instant(moment: datetime | None) -> str | None:
    return iso_instant(moment) if moment is not None else None


def trial_result(chart: ChartIndex, trial: Trial, t: TrialSettings) -> str | None:
    """A trial's result as this rule reads it (the recorded response, else Modified Ashworth,
    else Penn; equivocal reads as negative), or None when none is on file."""
    return _result(chart, trial, t, Draft(RULE_ID, RULE_VERSION))


def _result(chart: ChartIndex, trial: Trial, t: TrialSettings, draft: Draft) -> str | None:
    """"positive" / "negative" from, in order, a recorded response, the Modified Ashworth
    drop, the Penn drop; None when none is documented."""
    response = recorded_response(chart, trial, t)
    if response is not None:
        result, obs = response
        draft.see(Evidence(EvidenceLabel.TRIAL_RESPONSE, reference=obs.ref,
                           date=when(obs.effective), value=result))
        if result != "equivocal":
            return result
        draft.note("equivocal")
        return "negative"
    pairs = mas_pairs(chart.observations("modified-ashworth-scale"), trial.at, t, chart.terms)
    if pairs:
        mean, sites = sum(p.drop for p in pairs) / len(pairs), len(pairs)
        draft.count("masMeanDrop", round(mean, 3), source=source(SourceKind.COMPUTED))
        draft.count("masSites", sites)
        draft.count("masDropThreshold", t.mas_drop,
                    source=source(SourceKind.SETTING, "trial.mas_drop"))
        for pair in pairs:
            for o, said in ((pair.before, EvidenceLabel.MAS_BEFORE),
                            (pair.after, EvidenceLabel.MAS_AFTER)):
                draft.see(Evidence(said, reference=o.ref, date=_instant(o.effective),
                                   value=score_text(o), words=words(site=site_label(o))))
        return "positive" if mean >= t.mas_drop - 1e-9 else "negative"
    found = penn_drop(chart.observations("penn-spasm-frequency"), trial.at, t)
    if found is None:
        return None
    penn, penn_before, penn_after = found
    draft.count("pennDrop", penn, source=source(SourceKind.COMPUTED))
    for o, said in ((penn_before, EvidenceLabel.PENN_BEFORE),
                    (penn_after, EvidenceLabel.PENN_AFTER)):
        q = quantity_of(o)
        value = f"{q.value:g}" if q is not None and q.value is not None else str(o.value)
        draft.see(Evidence(said, reference=o.ref, date=_instant(o.effective), value=value))
    return "positive" if penn >= t.penn_drop else "negative"


def _overdose(chart: ChartIndex, trial: Trial, now: datetime, t: TrialSettings
              ) -> list[Evidence]:
    """Overdose signs coded (or written) in the overdose-signs value set, recorded within the
    window after the bolus (rule book: itb-trial-outcome, decisions)."""
    terms = chart.terms
    now = min(now, trial.at + timedelta(hours=t.overdose_window_hours))
    found: list[Evidence] = []
    for e in chart.record.adverse_events:
        if (e.actuality or "actual") == "potential" or e.date is None:
            continue
        if trial.at <= e.date <= now and terms.match("overdose-signs", e.event):
            found.append(Evidence(EvidenceLabel.OVERDOSE_EVENT, reference=e.ref,
                                  date=when(e.date), words=words(name=label(e.event, "", terms))))
    for c in chart.record.conditions:
        at = c.onset or c.recorded
        if at is None or (c.verification_status or "") in VOID_VERIFICATION:
            continue
        if trial.at <= at <= now and terms.match("overdose-signs", c.code):
            found.append(Evidence(EvidenceLabel.OVERDOSE_CONDITION, reference=c.ref,
                                  date=when(at), words=words(name=label(c.code, "", terms))))
    for o in chart.record.observations:
        # An Observation is a sign by its code (a vital sign's value is not judged here).
        if (o.effective is not None and observation_counts(o) and trial.at <= o.effective
                <= now and terms.match_code("overdose-signs", o.code)):
            found.append(Evidence(EvidenceLabel.OVERDOSE_OBSERVATION, reference=o.ref,
                                  date=when(o.effective),
                                  words=words(name=label(o.code, "", terms))))
    return found


def _origin(chart: ChartIndex) -> str:
    groups = {c.match.group for c in chart.origin}
    if "spinal" in groups:
        return "origin-spinal"
    if groups & {"cerebral", "tbi"}:
        return "origin-cerebral"
    return "origin-unknown"


def _open_request(chart: ChartIndex, code: str, after: datetime) -> bool:
    terms = chart.terms
    for s in chart.record.service_requests:
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


def _positive(chart: ChartIndex, trial: Trial, t: TrialSettings, draft: Draft) -> bool:
    """Numbers and notes of a positive trial: the label's starting pump dose. Returns whether
    to suggest the implant referral."""
    effect = effect_hours(chart, trial, t)
    draft.note(_origin(chart))
    if effect is not None:
        draft.count("effectDurationH", effect, "h")
    else:
        draft.note("effect-duration-unknown")
    dose = trial.dose_mcg
    if dose is not None and effect is None:
        draft.count("startingDoseTwiceMcgPerDay", 2 * dose, "mcg/day", source(SourceKind.LABEL))
        draft.count("startingDoseOnceMcgPerDay", dose, "mcg/day", source(SourceKind.LABEL))
    elif dose is not None and effect is not None:
        draft.count("startingDoseMcgPerDay", (2 if effect < t.long_effect_hours else 1) * dose,
                    "mcg/day", source(SourceKind.LABEL))
    if _open_request(chart, "itb-implant-referral", trial.at):
        draft.note("implant-referral-open")
        return False
    return True


def _negative(chart: ChartIndex, trial: Trial, t: TrialSettings, draft: Draft
              ) -> tuple[str, Tier, bool]:
    """Final at the highest labeled step; else the next step, no sooner than allowed."""
    steps = sorted(t.labeled_steps_mcg)
    if trial.dose_mcg is not None and trial.dose_mcg >= steps[-1]:
        return "negative-final", Tier.WARNING, False
    if trial.dose_mcg is not None:
        step = next(s for s in steps if s > trial.dose_mcg)
        draft.count("nextDoseMcg", step, "mcg", source(SourceKind.LABEL))
    earliest = trial.at + timedelta(hours=t.repeat_after_hours)
    draft.count("earliestRepeatDate", iso_date(earliest))
    if earliest.astimezone(UTC).time() != time():
        # A timed trial: "no sooner than 24 h after" is an instant, not a day.
        draft.count("earliestRepeatAt", iso_instant(earliest))
    if _open_request(chart, "itb-screening-trial", trial.at):
        draft.note("repeat-trial-open")
        return "negative-next-step", Tier.INFO, False
    return "negative-next-step", Tier.INFO, True


def trial_outcome(chart: ChartIndex, now: datetime, settings: TrialSettings) -> list[Finding]:
    trial = latest_trial(chart, now, settings)
    if trial is None:
        return []
    if any(p.performed is not None and p.performed > trial.at for p in chart.implants):
        return []
    draft = Draft(RULE_ID, RULE_VERSION)
    draft.see(*trial.evidence)
    draft.count("trialDate", iso_date(trial.at), source=trial.refs[0])
    if trial.dose_mcg is not None:
        draft.count("trialDoseMcg", trial.dose_mcg, "mcg", trial.refs[0])
    else:
        draft.note("trial-dose-unknown")

    result = _result(chart, trial, settings, draft)
    overdose = _overdose(chart, trial, now, settings)
    hours_since = (now - trial.at).total_seconds() / 3600.0
    documented = result is not None or hours_since >= settings.undocumented_after_hours
    if not documented and not overdose:
        return []  # the effect is still being watched

    outcome, tier, suggest = "undocumented", Tier.WARNING, False
    if result == "positive":
        outcome, tier = "positive", Tier.INFO
        suggest = _positive(chart, trial, settings, draft)
    elif result == "negative":
        outcome, tier, suggest = _negative(chart, trial, settings, draft)
    if overdose and suggest and outcome in ("positive", "negative-next-step"):
        # The overdose warning asks for a review before any further dose or implantation:
        # the outcome card must not offer that next step meanwhile.
        suggest = False
        draft.note("overdose-review-first")
    origin = tuple(c.fact.ref for c in chart.origin)
    findings: list[Finding] = []
    if documented:
        findings.append(draft.finding(outcome, tier, reason_refs=origin, suggest=suggest))
    if overdose:
        # A separate warning "whatever the outcome": the outcome card keeps its own meaning.
        findings.append(Finding(
            rule=RULE_ID, rule_version=RULE_VERSION, outcome="adverse", tier=Tier.WARNING,
            evidence=trial.evidence + tuple(overdose), numbers=tuple(draft.numbers),
            notes=(f"result-{result or 'undetermined'}",), reason_refs=origin, suggest=False,
        ))
    return findings
