"""Which oral antispasticity agents failed (rule book: itb-candidacy):
stopped for intolerance or no effect, taken at the maximum daily dose, or an intolerance or
adverse event on file."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from cds_service.fhir.record import AllergyFact, Concept, MedicationFact
from cds_service.rules.chart import (
    VOID_VERIFICATION,
    allergy_counts,
    label,
    medication_evidence,
    when,
)
from cds_service.rules.dose import (
    daily_dose_bounds_mg,
    daily_dose_mg,
    dose_conversion,
    reaches_maximum,
)
from cds_service.rules.finding import Evidence, EvidenceLabel, words
from cds_service.rules.index import ChartIndex, Med
from cds_service.terminology import Terminology

_STOPPED = frozenset({"stopped", "on-hold", "completed", "cancelled"})
_DOSE_STATUSES = frozenset({"active", "completed", "stopped", "on-hold", "intended"})
_NOT_ORDERS = frozenset({"plan", "proposal"})
_INACTIVE_ALLERGY = frozenset({"inactive", "resolved"})


@dataclass(slots=True)
class Agent:
    """One oral agent across the chart's orders and records, and how it failed (if it did)."""

    name: str
    facts: list[MedicationFact] = field(default_factory=list)
    failure: Evidence | None = None
    max_mg: float | None = None
    top_daily_mg: float | None = None
    uncomputable: list[MedicationFact] = field(default_factory=list)
    as_needed_left_out: bool = False

    def fail(self, evidence: Evidence) -> None:
        """The first failure found is the one the card shows."""
        self.failure = self.failure or evidence


def candidacy_agent(m: Med) -> str | None:
    """The oral antispasticity agent a medication is, for candidacy (void ones are none)."""
    if m.void or m.oral is None:
        return None
    return m.oral.group


def agent_of_concept(concept: object, terms: Terminology) -> str | None:
    if not isinstance(concept, Concept):
        return None
    found = terms.match("oral-antispasticity", concept)
    return found.group if found is not None else None


def failed_agents(chart: ChartIndex, age: int | None) -> dict[str, Agent]:
    """Every oral agent on file, keyed by name, each with its failure where one is found."""
    agents = _agents_of_medications(chart)
    for agent in agents.values():
        agent.max_mg = chart.terms.max_daily_dose_mg(agent.name, age)
        _judge_medications(agent, chart.terms)
    _intolerances(chart, agents)
    _adverse_events(chart, agents)
    return agents


def _agents_of_medications(chart: ChartIndex) -> dict[str, Agent]:
    agents: dict[str, Agent] = {}
    for m in chart.meds:
        name = candidacy_agent(m)
        if name is None:
            continue
        if name == "diazepam" and not _diazepam_for_spasticity(m.fact, chart):
            continue
        agents.setdefault(name, Agent(name)).facts.append(m.fact)
    return agents


def _diazepam_for_spasticity(m: MedicationFact, chart: ChartIndex) -> bool:
    # Diazepam is mostly given for anxiety, seizures or alcohol withdrawal: it counts only
    # when the prescription names a spasticity-origin condition as its reason.
    terms = chart.terms
    if any(terms.match("spasticity-origin", c) for c in m.reason_codes):
        return True
    by_ref = {c.ref: c for c in chart.record.conditions}
    for ref in m.reason_refs:
        cond = by_ref.get(ref)
        if cond is not None and (cond.verification_status or "") not in VOID_VERIFICATION and (
                terms.match("spasticity-origin", cond.code) is not None):
            return True
    return False


def _stop_reason(m: MedicationFact, terms: Terminology, value_set: str) -> str | None:
    # Codes first, the words as fallback (rule book: itb-candidacy, decisions): a reason
    # charted as a bare code is named on the card by the value set's display, never by the
    # code itself.
    for reason in m.status_reasons:
        found = terms.match(value_set, reason)
        if found is not None:
            return label(reason, found.display or value_set, terms)
    return None


def _judge_stop(agent: Agent, m: MedicationFact, status: str, terms: Terminology) -> None:
    reason = _stop_reason(m, terms, "intolerance-reason")
    if reason is not None and status != "cancelled":
        agent.fail(medication_evidence(m, EvidenceLabel.STOPPED, terms, reason=reason))
    reason = _stop_reason(m, terms, "ineffective-reason")
    if reason is not None:
        agent.fail(medication_evidence(m, EvidenceLabel.STOPPED, terms, reason=reason))


def _judge_medications(agent: Agent, terms: Terminology) -> None:
    """Stopped for a reason, or a daily dose at the maximum (one order, or the active orders
    together); a dose that cannot be computed is kept to ask for it."""
    active_sum = 0.0
    for m in agent.facts:
        status = (m.status or "").lower()
        if m.draft:
            # On order-select/sign the draft counts as current oral therapy: its dose can
            # show the maximum is reached; it cannot have been stopped for a reason yet.
            status = "active"
        elif status in _STOPPED:
            _judge_stop(agent, m, status, terms)
        if status not in _DOSE_STATUSES or (
                not m.draft and (m.intent or "").lower() in _NOT_ORDERS):
            continue
        if m.kind == "MedicationAdministration":
            # One dose given is evidence of that dose, not a regimen: it has no frequency
            # to ask for and no daily dose to judge (rule book: itb-candidacy, decisions).
            continue
        scheduled = tuple(d for d in m.dosages if not d.as_needed)
        if len(scheduled) < len(m.dosages):
            # As-needed doses are left out of the total, and noted; the scheduled lines of
            # the same order still count (rule book: itb-candidacy, decisions).
            agent.as_needed_left_out = True
            if not scheduled:
                continue
            m = replace(m, dosages=scheduled)
        decided = _daily(agent, m, terms)
        if decided is None:
            agent.uncomputable.append(m)
            continue
        daily, floor = decided
        agent.top_daily_mg = max(agent.top_daily_mg or 0.0, daily)
        if status == "active" and m.kind == "MedicationRequest" and not m.draft:
            active_sum += floor or 0.0  # a range adds only what it surely gives
        if agent.max_mg is not None and daily >= agent.max_mg - 1e-9:
            agent.fail(medication_evidence(
                m, EvidenceLabel.AT_MAXIMUM, terms, daily=f"{daily:g}",
                maximum=f"{agent.max_mg:g}", converted=_converted(m, terms)))
    if active_sum > (agent.top_daily_mg or 0.0):
        agent.top_daily_mg = active_sum
        if agent.max_mg is not None and active_sum >= agent.max_mg - 1e-9:
            agent.fail(Evidence(EvidenceLabel.ORAL_ORDERS_TOGETHER,
                                value_label=EvidenceLabel.AT_MAXIMUM,
                                words=words(agent=agent.name, daily=f"{active_sum:g}",
                                            maximum=f"{agent.max_mg:g}")))


def _converted(m: MedicationFact, terms: Terminology) -> str:
    """"10 mL x 1 mg/mL = 10 mg" when the dose was charted as a volume or a count."""
    conversion = dose_conversion(m, terms)
    return conversion.shown() if conversion is not None else ""


def _daily(agent: Agent, m: MedicationFact, terms: Terminology) -> tuple[float, float] | None:
    """The daily dose that decides, and what the order surely gives; None: not computable."""
    daily = daily_dose_mg(m, terms)
    if daily is not None:
        return daily, daily
    return _from_range(agent, m, terms)


def _from_range(agent: Agent, m: MedicationFact, terms: Terminology
                ) -> tuple[float, float] | None:
    """A doseRange decides only when the whole range is on one side of the maximum. Returns
    the end that decides (the low end at/above, the high end below) and the low end (what
    the order surely gives, for a sum over orders)."""
    bounds = daily_dose_bounds_mg(m, terms)
    if bounds is None or agent.max_mg is None:
        return None
    verdict = reaches_maximum(bounds, agent.max_mg)
    if verdict is None:
        return None
    if verdict:
        assert bounds.low_mg is not None
        agent.fail(medication_evidence(m, EvidenceLabel.RANGE_AT_MAXIMUM,
                                       low=f"{bounds.low_mg:g}", maximum=f"{agent.max_mg:g}"))
        return bounds.low_mg, bounds.low_mg
    assert bounds.high_mg is not None
    return bounds.high_mg, bounds.low_mg or 0.0


def _side_effect(a: AllergyFact, terms: Terminology) -> str | None:
    """The first reaction that is a side effect (coded first, words as fallback), named."""
    for reaction in a.reactions:
        for m in reaction.manifestations:
            found = terms.match("intolerance-reason", m)
            if found is not None:
                return label(m, found.display or "", terms)
    return None


def _intolerances(chart: ChartIndex, agents: dict[str, Agent]) -> None:
    """An intolerance record of an oral agent (rule book: itb-candidacy, decisions). A record
    typed "allergy" counts too when its reaction is a side effect (drowsiness, weakness...):
    many charts file side effects as allergies, and the reaction says what happened."""
    for a in chart.record.allergies:
        if not allergy_counts(a):
            continue
        if (a.clinical_status or "active").lower() in _INACTIVE_ALLERGY:
            continue  # rule book: "Conventions", status filters
        name = agent_of_concept(a.code, chart.terms)
        if name is None:
            continue  # not an oral antispasticity agent: its reactions are not read
        reaction = _side_effect(a, chart.terms)
        if (a.type or "intolerance").lower() != "intolerance" and reaction is None:
            continue
        agents.setdefault(name, Agent(name)).fail(Evidence(
            EvidenceLabel.INTOLERANCE, reference=a.ref, date=when(a.recorded),
            value_label=EvidenceLabel.INTOLERANCE_RECORD,
            words=words(substance=label(a.code, name), reaction=reaction or "")))


def _adverse_events(chart: ChartIndex, agents: dict[str, Agent]) -> None:
    terms = chart.terms
    meds_by_ref = {m.ref: m for m in chart.record.medications}
    for e in chart.record.adverse_events:
        if (e.actuality or "actual").lower() == "potential":
            continue
        names = {agent_of_concept(s, terms) for s in e.suspects}
        names |= {agent_of_concept(meds_by_ref[r].medication, terms)
                  for r in e.suspect_refs if r in meds_by_ref}
        if not names - {None}:
            names.add(agent_of_concept(e.event, terms))
        for name in names - {None}:
            assert name is not None
            agents.setdefault(name, Agent(name)).fail(Evidence(
                EvidenceLabel.ADVERSE_EVENT_WITH, reference=e.ref, date=when(e.date),
                words=words(agent=name, event=label(e.event))))
