"""ITB candidacy after failed oral therapy (clinical-rules.md section 2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cds_service.config import Settings
from cds_service.fhir.record import Concept, MedicationFact, PatientRecord
from cds_service.rules.chart import (
    active_conditions,
    allergy_counts,
    condition_evidence,
    is_intrathecal_baclofen,
    label,
    medication_evidence,
    medication_is_void,
    oral_agent,
    patient_age,
    procedure_done,
    when,
)
from cds_service.rules.dataquality import missing_data
from cds_service.rules.dates import add_months, iso_date
from cds_service.rules.dose import daily_dose_bounds_mg, daily_dose_mg, reaches_maximum
from cds_service.rules.finding import Evidence, Finding, Number, Tier
from cds_service.rules.pump import pump_history
from cds_service.rules.trial import trial_procedure_match
from cds_service.terminology import Terminology

RULE_ID = "itb-candidacy"
RULE_VERSION = "1.0.0"
OUTCOMES = ("candidate", "contraindicated", "deferred")
NOTES = (
    "off-label-dystonia",
    "spinal-without-oral-baclofen",
    "tbi-onset-unknown",
    "age-unknown",
    "draft-above-maximum",
    "draft-included",
)

_STOPPED = frozenset({"stopped", "on-hold", "completed", "cancelled"})
_DOSE_STATUSES = frozenset({"active", "completed", "stopped", "on-hold", "intended"})
_OPEN_REQUEST = frozenset({"active", "draft", "on-hold"})
_NOT_ORDERS = frozenset({"plan", "proposal"})


@dataclass(slots=True)
class _Agent:
    name: str
    facts: list[MedicationFact] = field(default_factory=list)
    failure: Evidence | None = None
    max_mg: float | None = None
    top_daily_mg: float | None = None
    uncomputable: list[MedicationFact] = field(default_factory=list)


def _is_candidacy_med(m: MedicationFact, terms: Terminology) -> str | None:
    if medication_is_void(m):
        return None
    agent = oral_agent(m, terms)
    return agent.group if agent is not None else None


def _diazepam_for_spasticity(m: MedicationFact, record: PatientRecord, terms: Terminology
                             ) -> bool:
    # Diazepam is mostly given for anxiety, seizures or alcohol withdrawal: it counts only
    # when the prescription names a spasticity-origin condition as its reason.
    if any(terms.match("spasticity-origin", c) for c in m.reason_codes):
        return True
    by_ref = {c.ref: c for c in record.conditions}
    for ref in m.reason_refs:
        cond = by_ref.get(ref)
        if cond is not None and (cond.verification_status or "") not in (
            "entered-in-error", "refuted"
        ) and terms.match("spasticity-origin", cond.code) is not None:
            return True
    return False


def _stop_reason(m: MedicationFact, terms: Terminology, value_set: str) -> str | None:
    for reason in m.status_reasons:
        found = terms.match(value_set, reason)
        if found is not None:
            return label(reason, found.display or value_set)
    return None


def _agent_of_concept(concept: object, terms: Terminology) -> str | None:
    if not isinstance(concept, Concept):
        return None
    found = terms.match("oral-antispasticity", concept)
    return found.group if found is not None else None


def _from_range(agent: _Agent, m: MedicationFact) -> tuple[float, float] | None:
    """A doseRange decides only when the whole range is on one side of the maximum. Returns
    the end that decides (the low end at/above, the high end below) and the low end (what
    the order surely gives, for a sum over orders)."""
    bounds = daily_dose_bounds_mg(m)
    if bounds is None or agent.max_mg is None:
        return None
    verdict = reaches_maximum(bounds, agent.max_mg)
    if verdict is None:
        return None
    if verdict:
        assert bounds.low_mg is not None
        agent.failure = agent.failure or medication_evidence(
            m, f"dose range: at least {bounds.low_mg:g} mg/day (maximum {agent.max_mg:g} mg/day)")
        return bounds.low_mg, bounds.low_mg
    assert bounds.high_mg is not None
    return bounds.high_mg, bounds.low_mg or 0.0


def _failures(record: PatientRecord, now: datetime, settings: Settings, terms: Terminology,
              age: int | None) -> dict[str, _Agent]:
    agents: dict[str, _Agent] = {}
    for m in record.medications:
        name = _is_candidacy_med(m, terms)
        if name is None:
            continue
        if name == "diazepam" and not _diazepam_for_spasticity(m, record, terms):
            continue
        agents.setdefault(name, _Agent(name)).facts.append(m)

    for agent in agents.values():
        agent.max_mg = terms.max_daily_dose_mg(agent.name, age)
        active_sum = 0.0
        for m in agent.facts:
            status = (m.status or "").lower()
            if m.draft:
                # On order-select/sign the draft counts as current oral therapy: its dose can
                # show the maximum is reached; it cannot have been stopped for a reason yet.
                status = "active"
            elif status in _STOPPED:
                reason = _stop_reason(m, terms, "intolerance-reason")
                if reason is not None and status != "cancelled":
                    agent.failure = agent.failure or medication_evidence(
                        m, f"stopped: {reason}")
                reason = _stop_reason(m, terms, "ineffective-reason")
                if reason is not None:
                    agent.failure = agent.failure or medication_evidence(
                        m, f"stopped: {reason}")
            if status not in _DOSE_STATUSES or (
                    not m.draft and (m.intent or "").lower() in _NOT_ORDERS):
                continue
            if any(d.as_needed for d in m.dosages):
                continue  # an as-needed ceiling is not a dose taken
            daily = daily_dose_mg(m)
            floor = daily
            if daily is None:
                decided = _from_range(agent, m)
                if decided is None:
                    agent.uncomputable.append(m)
                    continue
                daily, floor = decided
            agent.top_daily_mg = max(agent.top_daily_mg or 0.0, daily)
            if status == "active" and m.kind == "MedicationRequest" and not m.draft:
                active_sum += floor or 0.0  # a range adds only what it surely gives
            if agent.max_mg is not None and daily >= agent.max_mg - 1e-9:
                agent.failure = agent.failure or medication_evidence(
                    m, f"{daily:g} mg/day (maximum {agent.max_mg:g} mg/day)")
        if active_sum > (agent.top_daily_mg or 0.0):
            agent.top_daily_mg = active_sum
            if agent.max_mg is not None and active_sum >= agent.max_mg - 1e-9:
                agent.failure = agent.failure or Evidence(
                    what=f"Oral {agent.name}: active orders together",
                    value=f"{active_sum:g} mg/day (maximum {agent.max_mg:g} mg/day)")

    for a in record.allergies:
        if not allergy_counts(a) or (a.type or "intolerance").lower() != "intolerance":
            continue
        name = _agent_of_concept(a.code, terms)
        if name is None:
            continue
        agent = agents.setdefault(name, _Agent(name))
        agent.failure = agent.failure or Evidence(
            what=f"Intolerance to {label(a.code, name)}", reference=a.ref,
            date=when(a.recorded), value="AllergyIntolerance (intolerance)")
    meds_by_ref = {m.ref: m for m in record.medications}
    for e in record.adverse_events:
        if (e.actuality or "actual").lower() == "potential":
            continue
        names = {_agent_of_concept(s, terms) for s in e.suspects}
        names |= {_agent_of_concept(meds_by_ref[r].medication, terms)
                  for r in e.suspect_refs if r in meds_by_ref}
        if not names - {None}:
            names.add(_agent_of_concept(e.event, terms))
        for name in names - {None}:
            assert name is not None
            agent = agents.setdefault(name, _Agent(name))
            agent.failure = agent.failure or Evidence(
                what=f"Adverse event with {name}: {label(e.event, 'adverse event')}",
                reference=e.ref, date=when(e.date))
    return agents


def _baclofen_allergy(record: PatientRecord, terms: Terminology) -> Evidence | None:
    for a in record.allergies:
        if not allergy_counts(a):
            continue
        if (a.clinical_status or "active").lower() in ("inactive", "resolved"):
            continue
        hypersensitive = (a.type or "").lower() == "allergy" or (
            a.criticality or "").lower() == "high"
        if hypersensitive and (_agent_of_concept(a.code, terms) == "baclofen" or terms.match(
                "intrathecal-baclofen", a.code) is not None):
            return Evidence(what=f"Allergy: {label(a.code, 'baclofen')}", reference=a.ref,
                            date=when(a.recorded),
                            value=f"type {a.type or '?'}, criticality {a.criticality or '?'}")
    return None


def _already_on_pathway(record: PatientRecord, terms: Terminology) -> bool:
    for s in record.service_requests:
        if (s.status or "").lower() in _OPEN_REQUEST and terms.match(
                "itb-evaluation-request", s.code) is not None:
            return True
    if any(procedure_done(p) and trial_procedure_match(p, record, terms) is not None
           for p in record.procedures):
        return True
    return any(
        m.kind == "MedicationAdministration" and (m.status or "").lower() in (
            "completed", "in-progress")
        and is_intrathecal_baclofen(m, terms) for m in record.medications
    )


def _draft_above_maximum(record: PatientRecord, terms: Terminology, age: int | None
                         ) -> tuple[list[Number], list[Evidence]]:
    numbers: list[Number] = []
    evidence: list[Evidence] = []
    for m in record.medications:
        if not m.draft:
            continue
        name = _is_candidacy_med(m, terms)
        if name is None:
            continue
        maximum = terms.max_daily_dose_mg(name, age)
        daily = daily_dose_mg(m)
        if maximum is None or daily is None:
            continue
        others = 0.0
        for o in record.medications:
            if (o.draft or o.kind != "MedicationRequest" or (o.status or "") != "active"
                    or _is_candidacy_med(o, terms) != name):
                continue
            others += daily_dose_mg(o) or 0.0
        if daily > maximum or daily + others > maximum:
            numbers += [
                Number("draftDailyDoseMg", round(daily, 3), "mg/day", m.ref),
                Number("draftAgent", name),
                Number("maxDailyDoseMg", maximum, "mg/day", "oral-max-doses table"),
            ]
            if others:
                numbers.append(Number("otherActiveDailyDoseMg", round(others, 3), "mg/day"))
            evidence.append(medication_evidence(m, f"draft order: {daily:g} mg/day"))
            break
    return numbers, evidence


def _draft_agents(record: PatientRecord, terms: Terminology) -> list[MedicationFact]:
    return [m for m in record.medications if m.draft and _is_candidacy_med(m, terms)]


def candidacy(record: PatientRecord, now: datetime, settings: Settings, terms: Terminology
              ) -> list[Finding]:
    origin = active_conditions(record, terms, "spasticity-origin")
    dystonia = active_conditions(record, terms, "dystonia")
    if not origin and not dystonia:
        return []
    age = patient_age(record, now)
    if age is not None and age < settings.candidacy.min_age_years:
        return []
    if pump_history(record, terms) or _already_on_pathway(record, terms):
        return []

    agents = _failures(record, now, settings, terms, age)
    failed = [a for a in agents.values() if a.failure is not None]
    if len(failed) < settings.candidacy.min_failed_agents:
        undecided = [a for a in agents.values() if a.failure is None and a.uncomputable]
        if len(failed) + len(undecided) >= settings.candidacy.min_failed_agents and undecided:
            return [missing_data(
                RULE_ID,
                tuple(f"daily dose of oral {a.name} ({m.ref}): dose and frequency"
                      for a in undecided for m in a.uncomputable[:1]),
                evidence=tuple(medication_evidence(m, "daily dose not computable")
                               for a in undecided for m in a.uncomputable[:1]),
            )]
        return []

    notes: list[str] = []
    numbers: list[Number] = [Number("failedAgents", len(failed))]
    if age is None:
        notes.append("age-unknown")
    else:
        numbers.append(Number("ageYears", age, "a"))
    evidence: list[Evidence] = [condition_evidence(c) for c in origin + dystonia]
    for a in failed:
        assert a.failure is not None
        evidence.append(a.failure)
        if a.top_daily_mg is not None:
            numbers.append(Number(f"{a.name}DailyDoseMg", round(a.top_daily_mg, 3), "mg/day"))
        if a.max_mg is not None:
            numbers.append(Number(f"{a.name}MaxDailyDoseMg", a.max_mg, "mg/day",
                                  "oral-max-doses table"))
    if not origin:
        notes.append("off-label-dystonia")
    spinal = [c for c in origin if c.match.group == "spinal"]
    if spinal and not any(a.name == "baclofen" for a in failed):
        notes.append("spinal-without-oral-baclofen")

    outcome, tier, suggest = "candidate", Tier.INFO, True
    allergy = _baclofen_allergy(record, terms)
    tbi = [c for c in origin if c.match.group == "tbi"]
    recent_tbi = [c for c in tbi if c.fact.onset is not None and now < add_months(
        c.fact.onset, settings.candidacy.tbi_wait_months)]
    if allergy is not None:
        outcome, tier, suggest = "contraindicated", Tier.WARNING, False
        evidence.append(allergy)
    elif recent_tbi:
        outcome, suggest = "deferred", False
        onset = max(c.fact.onset for c in recent_tbi if c.fact.onset is not None)
        numbers += [
            Number("tbiOnsetDate", iso_date(onset), source=recent_tbi[0].fact.ref),
            Number("eligibleFromDate",
                   iso_date(add_months(onset, settings.candidacy.tbi_wait_months)),
                   source="setting candidacy.tbi_wait_months"),
        ]
    if tbi and not recent_tbi and any(c.fact.onset is None for c in tbi):
        notes.append("tbi-onset-unknown")

    drafts = _draft_agents(record, terms)
    if drafts:
        notes.append("draft-included")
        evidence += [medication_evidence(m, "draft order") for m in drafts]
        d_numbers, d_evidence = _draft_above_maximum(record, terms, age)
        if d_numbers:
            notes.append("draft-above-maximum")
            numbers += d_numbers
            evidence += d_evidence

    reason_refs = tuple(c.fact.ref for c in origin + dystonia)
    return [Finding(
        rule=RULE_ID, rule_version=RULE_VERSION, outcome=outcome, tier=tier,
        evidence=tuple(evidence), numbers=tuple(numbers), notes=tuple(notes),
        reason_refs=reason_refs, suggest=suggest,
    )]


def candidacy_on_order(record: PatientRecord, now: datetime, settings: Settings,
                       terms: Terminology) -> list[Finding]:
    """order-select / order-sign: only when a draft order is an oral antispasticity agent."""
    if not _draft_agents(record, terms):
        return []
    return candidacy(record, now, settings, terms)

