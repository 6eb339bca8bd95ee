"""ITB candidacy after failed oral therapy (rule book: itb-candidacy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.config import CandidacySettings, TrialSettings
from cds_service.fhir.record import MedicationFact
from cds_service.rules.chart import (
    MatchedCondition,
    allergy_counts,
    condition_evidence,
    label,
    medication_evidence,
    patient_age,
    when,
)
from cds_service.rules.dates import add_months, iso_date
from cds_service.rules.dose import daily_dose_mg, regimen_mg
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
from cds_service.rules.oral_failure import (
    Agent,
    agent_of_concept,
    candidacy_agent,
    failed_agents,
)
from cds_service.rules.trial import trial_result
from cds_service.rules.trial_events import Trial, trials_on_file

RULE_ID = "itb-candidacy"
RULE_VERSION = "1.1.0"
OUTCOMES = ("candidate", "contraindicated", "deferred")
NOTES = (
    "off-label-dystonia",
    "spinal-without-oral-baclofen",
    "tbi-onset-unknown",
    "age-unknown",
    "draft-above-maximum",
    "draft-included",
    "older-trial",
    "as-needed-left-out",
)

_OPEN_REQUEST = frozenset({"active", "draft", "on-hold"})


def _baclofen_allergy(chart: ChartIndex) -> Evidence | None:
    for a in chart.record.allergies:
        if not allergy_counts(a):
            continue
        if (a.clinical_status or "active").lower() in ("inactive", "resolved"):
            continue
        hypersensitive = (a.type or "").lower() == "allergy" or (
            a.criticality or "").lower() == "high"
        if hypersensitive and (agent_of_concept(a.code, chart.terms) == "baclofen" or (
                chart.terms.match("intrathecal-baclofen", a.code) is not None)):
            return Evidence(EvidenceLabel.BACLOFEN_ALLERGY, reference=a.ref,
                            date=when(a.recorded), value_label=EvidenceLabel.ALLERGY_KIND,
                            words=words(substance=label(a.code), type=a.type or "",
                                        criticality=a.criticality or ""))
    return None


@dataclass(frozen=True, slots=True)
class CandidacySections:
    """What candidacy reads: its own settings, and the trial's (which trial on file ends it)."""

    candidacy: CandidacySettings
    trial: TrialSettings


def _already_on_pathway(chart: ChartIndex) -> bool:
    """An open ITB evaluation request, or a trial with no date: the trial rule takes over."""
    for s in chart.record.service_requests:
        if (s.status or "").lower() in _OPEN_REQUEST and chart.terms.match(
                "itb-evaluation-request", s.code) is not None:
            return True
    return any(t.fact.performed is None for t in chart.trial_procedures) or any(
        m.effective.start is None for m in chart.itb_given)


def _trial_on_file(chart: ChartIndex, now: datetime, c: CandidacySettings, t: TrialSettings
                   ) -> tuple[bool, Trial | None]:
    """(whether a trial on file ends the card, the older trial to mention). A trial in the
    recent months ends it; so does a negative one at the highest labeled dose, whenever it
    was (the label: not a candidate); an older one is mentioned (rule book: itb-candidacy,
    decisions)."""
    recent_from = add_months(now, -c.trial_recent_months)
    older: Trial | None = None
    for trial in trials_on_file(chart, now, t):
        if trial.at >= recent_from or _negative_at_top(chart, trial, t):
            return True, None
        older = older or trial
    return False, older


def _negative_at_top(chart: ChartIndex, trial: Trial, t: TrialSettings) -> bool:
    """Negative at the highest labeled dose, by the trial rule's own reading (a recorded
    response, else the Ashworth or Penn scores). With no result on file (an order hook sends
    no observations) the trial is only mentioned."""
    return (trial.dose_mcg is not None and trial.dose_mcg >= max(t.labeled_steps_mcg)
            and trial_result(chart, trial, t) == "negative")


def _dose_row(m: MedicationFact, says: EvidenceLabel, daily: float, chart: ChartIndex
              ) -> Evidence:
    """An order as its dose arithmetic: "25 mg QID = 100 mg/day" (dose and times a day only
    when the order is written that way)."""
    regimen = regimen_mg(m, chart.terms)
    return medication_evidence(
        m, says, daily=f"{daily:g}",
        dose=f"{regimen.dose_mg:g}" if regimen is not None else "",
        per_day=f"{regimen.per_day:g}" if regimen is not None else "")


def _draft_above_maximum(chart: ChartIndex, age: int | None, draft: Draft) -> bool:
    """Whether a draft order would push its agent above the maximum daily dose, alone or
    with the active orders of that agent; if so the draft says the sum, term by term."""
    for m in chart.meds:
        name = candidacy_agent(m) if m.fact.draft else None
        if name is None:
            continue
        maximum = chart.terms.max_daily_dose_mg(name, age)
        daily = daily_dose_mg(m.fact, chart.terms)
        if maximum is None or daily is None:
            continue
        others = [(o.fact, daily_dose_mg(o.fact, chart.terms) or 0.0) for o in chart.meds
                  if not o.fact.draft and o.fact.kind == "MedicationRequest"
                  and (o.fact.status or "") == "active" and candidacy_agent(o) == name]
        other_daily = sum(d for _, d in others)
        if daily > maximum or daily + other_daily > maximum:
            draft.note("draft-above-maximum")
            draft.count("draftDailyDoseMg", round(daily, 3), "mg/day", m.fact.ref)
            draft.count("draftAgent", name)
            draft.count("maxDailyDoseMg", maximum, "mg/day",
                        source(SourceKind.TABLE, "oral-max-doses"))
            if other_daily:
                draft.count("otherActiveDailyDoseMg", round(other_daily, 3), "mg/day")
            draft.count("totalDailyDoseMg", round(daily + other_daily, 3), "mg/day",
                        source(SourceKind.COMPUTED))
            draft.see(_dose_row(m.fact, EvidenceLabel.DRAFT_ORDER_DOSE, daily, chart))
            draft.see(*(_dose_row(o, EvidenceLabel.ACTIVE_ORDER_DOSE, d, chart)
                        for o, d in others))
            return True
    return False


def _draft_agents(chart: ChartIndex) -> list[MedicationFact]:
    return [m.fact for m in chart.meds if m.fact.draft and candidacy_agent(m)]


def _undecided(agents: dict[str, Agent], failed: list[Agent], settings: CandidacySettings
               ) -> list[Finding]:
    """Too few failed agents, unless an agent whose dose cannot be computed could make up
    the number: then ask for that dose."""
    undecided = [a for a in agents.values() if a.failure is None and a.uncomputable]
    if not undecided or len(failed) + len(undecided) < settings.min_failed_agents:
        return []
    draft = Draft(RULE_ID, RULE_VERSION)
    for a in undecided:
        for m in a.uncomputable[:1]:
            draft.lack(MissingInput.ORAL_DAILY_DOSE, agent=a.name, ref=m.ref)
            draft.see(medication_evidence(m, EvidenceLabel.DOSE_NOT_COMPUTABLE))
    return [draft.missing_data()]


def _describe_failures(draft: Draft, chart: ChartIndex, failed: list[Agent], age: int | None
                       ) -> None:
    draft.count("failedAgents", len(failed))
    draft.count("failedAgentNames", ", ".join(a.name for a in failed))
    if age is None:
        draft.note("age-unknown")
    else:
        draft.count("ageYears", age, "a")
    draft.see(*(condition_evidence(c) for c in chart.origin + chart.dystonia))
    for a in failed:
        assert a.failure is not None
        draft.see(a.failure)
        if a.top_daily_mg is not None:
            draft.count(f"{a.name}DailyDoseMg", round(a.top_daily_mg, 3), "mg/day")
        if a.max_mg is not None:
            draft.count(f"{a.name}MaxDailyDoseMg", a.max_mg, "mg/day",
                        source(SourceKind.TABLE, "oral-max-doses"))
    if any(a.as_needed_left_out for a in failed):
        draft.note("as-needed-left-out")
    if not chart.origin:
        draft.note("off-label-dystonia")
    spinal = [c for c in chart.origin if c.match.group == "spinal"]
    if spinal and not any(a.name == "baclofen" for a in failed):
        draft.note("spinal-without-oral-baclofen")


def _modifiers(draft: Draft, chart: ChartIndex, now: datetime, settings: CandidacySettings
               ) -> tuple[str, Tier, bool]:
    """A baclofen allergy contraindicates; a brain injury under a year old defers."""
    outcome, tier, suggest = "candidate", Tier.INFO, True
    allergy = _baclofen_allergy(chart)
    tbi = [c for c in chart.origin if c.match.group == "tbi"]
    recent_tbi = [c for c in tbi if c.fact.onset is not None and now < add_months(
        c.fact.onset, settings.tbi_wait_months)]
    if allergy is not None:
        outcome, tier, suggest = "contraindicated", Tier.WARNING, False
        draft.see(allergy)
    elif recent_tbi:
        outcome, suggest = "deferred", False
        _defer(draft, recent_tbi, settings)
    if tbi and not recent_tbi and any(c.fact.onset is None for c in tbi):
        draft.note("tbi-onset-unknown")
    return outcome, tier, suggest


def _defer(draft: Draft, recent_tbi: list[MatchedCondition], settings: CandidacySettings
           ) -> None:
    onset = max(c.fact.onset for c in recent_tbi if c.fact.onset is not None)
    draft.count("tbiOnsetDate", iso_date(onset), source=recent_tbi[0].fact.ref)
    draft.count("eligibleFromDate", iso_date(add_months(onset, settings.tbi_wait_months)),
                source=source(SourceKind.SETTING, "candidacy.tbi_wait_months"))


def candidacy(chart: ChartIndex, now: datetime, settings: CandidacySettings,
              trial_settings: TrialSettings | None = None) -> list[Finding]:
    if not chart.origin and not chart.dystonia:
        return []
    age = patient_age(chart.record, now)
    if age is not None and age < settings.min_age_years:
        return []
    if chart.pump_history or _already_on_pathway(chart):
        return []
    ended, older_trial = _trial_on_file(chart, now, settings, trial_settings or TrialSettings())
    if ended:
        return []

    agents = failed_agents(chart, age)
    failed = [a for a in agents.values() if a.failure is not None]
    if len(failed) < settings.min_failed_agents:
        return _undecided(agents, failed, settings)

    draft = Draft(RULE_ID, RULE_VERSION)
    _describe_failures(draft, chart, failed, age)
    if older_trial is not None:
        draft.note("older-trial")
        draft.count("earlierTrialDate", iso_date(older_trial.at), source=older_trial.refs[0])
        draft.see(*older_trial.evidence)
    outcome, tier, suggest = _modifiers(draft, chart, now, settings)
    drafts = _draft_agents(chart)
    if drafts:
        draft.note("draft-included")
        cited = {e.reference for e in draft.evidence}
        draft.see(*(medication_evidence(m, EvidenceLabel.DRAFT_ORDER) for m in drafts
                    if m.ref not in cited))
        # An order that would take the agent above its maximum is a dosing problem to fix
        # before signing, so the card says it as a warning, whatever else it says (rule book:
        # itb-candidacy, decision order-above-maximum).
        if _draft_above_maximum(chart, age, draft) and tier is Tier.INFO:
            tier = Tier.WARNING
    reason_refs = tuple(c.fact.ref for c in chart.origin + chart.dystonia)
    return [draft.finding(outcome, tier, reason_refs=reason_refs, suggest=suggest)]


def candidacy_on_order(chart: ChartIndex, now: datetime, settings: CandidacySettings,
                       trial_settings: TrialSettings | None = None) -> list[Finding]:
    """order-select / order-sign: only when a draft order is an oral antispasticity agent."""
    if not _draft_agents(chart):
        return []
    return candidacy(chart, now, settings, trial_settings)


def candidacy_entry(chart: ChartIndex, now: datetime, settings: CandidacySections
                    ) -> list[Finding]:
    return candidacy(chart, now, settings.candidacy, settings.trial)


def candidacy_on_order_entry(chart: ChartIndex, now: datetime, settings: CandidacySections
                             ) -> list[Finding]:
    return candidacy_on_order(chart, now, settings.candidacy, settings.trial)
