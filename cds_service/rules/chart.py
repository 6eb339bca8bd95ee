"""Reading the patient record with the spec's status filters (rule book: "Conventions")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.fhir.record import (
    AllergyFact,
    AppointmentFact,
    Concept,
    ConditionFact,
    MedicationFact,
    ObservationFact,
    PatientRecord,
    ProcedureFact,
    Quantity,
)
from cds_service.rules.dates import age_years, calendar_days_until, iso_date
from cds_service.rules.finding import Evidence, EvidenceLabel, words
from cds_service.terminology import Match, Terminology

ACTIVE_CONDITION = frozenset({"active", "recurrence", "relapse"})
VOID_VERIFICATION = frozenset({"entered-in-error", "refuted"})
# MedicationRequest/Statement statuses that mean the patient is (still) meant to take it.
CURRENT_MEDICATION = frozenset({"active", "intended"})
VOID_OBSERVATION = frozenset({"entered-in-error", "cancelled"})
# Appointment statuses that mean the visit will happen (the refill and battery rules alike).
BOOKED_APPOINTMENT = frozenset({"booked", "arrived", "checked-in", "pending"})
_UNDER_WAY = frozenset({"arrived", "checked-in"})


def visit_ahead(a: AppointmentFact, now: datetime) -> bool:
    """A booked appointment whose visit is still to come (rule book: "Conventions", status
    filters): booked or pending and not yet started, or arrived / checked in today (the
    patient is in clinic). One whose start has passed without its procedure is no booking."""
    status = (a.status or "").lower()
    if status not in BOOKED_APPOINTMENT or a.start is None:
        return False
    return a.start >= now or (status in _UNDER_WAY and calendar_days_until(a.start, now) == 0)


# A proposed appointment with one of these statuses is not being booked (appointment-book).
NOT_BEING_BOOKED = frozenset({"cancelled", "entered-in-error", "noshow"})


def condition_is_active(c: ConditionFact) -> bool:
    return (
        (c.clinical_status or "").lower() in ACTIVE_CONDITION
        and (c.verification_status or "").lower() not in VOID_VERIFICATION
    )


def medication_is_void(m: MedicationFact) -> bool:
    return (m.status or "").lower() == "entered-in-error"


def procedure_done(p: ProcedureFact) -> bool:
    return (p.status or "").lower() == "completed"


def allergy_counts(a: AllergyFact) -> bool:
    return (a.verification_status or "").lower() not in VOID_VERIFICATION and (
        a.clinical_status or "active"
    ).lower() != "entered-in-error"


# Rule book: "Conventions", status filters: these count; entered-in-error and cancelled
# never do, nor does a result not yet given (registered) or of unknown status.
COUNTED_OBSERVATION = frozenset({"final", "amended", "corrected", "preliminary"})


def observation_counts(o: ObservationFact) -> bool:
    status = (o.status or "").lower()
    return status not in VOID_OBSERVATION and status in COUNTED_OBSERVATION


def patient_age(record: PatientRecord, now: datetime) -> int | None:
    if record.patient is None or record.patient.birth_date is None:
        return None
    return age_years(record.patient.birth_date, now)


@dataclass(frozen=True, slots=True)
class MatchedCondition:
    fact: ConditionFact
    match: Match


def active_conditions(record: PatientRecord, terms: Terminology, value_set: str
                      ) -> list[MatchedCondition]:
    out = []
    for c in record.conditions:
        if not condition_is_active(c):
            continue
        found = terms.match(value_set, c.code)
        if found is not None:
            out.append(MatchedCondition(c, found))
    return out


def label(concept: Concept | None, fallback: str = "", terms: Terminology | None = None
          ) -> str:
    """What a card calls a concept: its text, a display, the value sets' display of its code
    (a bare local code such as "itb-pump-refill" is not a label), else the fallback ("": the
    catalogue's label says what stands in)."""
    if concept is None:
        return fallback
    if concept.text:
        return concept.text
    for coding in concept.codings:
        if coding.display:
            return coding.display
    if terms is not None:
        for coding in concept.codings:
            found = terms.display_of(coding)
            if found is not None:
                return found
    for coding in concept.codings:
        if coding.code and (terms is None or not terms.is_local(coding, coding.code)):
            return coding.code
    return fallback


def when(moment: datetime | None) -> str | None:
    return iso_date(moment) if moment is not None else None


def condition_evidence(m: MatchedCondition) -> Evidence:
    return Evidence(
        EvidenceLabel.CONDITION,
        reference=m.fact.ref,
        code=m.match.token,
        date=when(m.fact.onset or m.fact.recorded),
        value=m.fact.clinical_status,
        words=words(name=label(m.fact.code)),
    )


# ------------------------------------------------------------------ medications


def is_intrathecal(fact: MedicationFact, terms: Terminology) -> bool:
    if terms.match("intrathecal-baclofen", fact.medication) is not None:
        return True
    for dosage in fact.dosages:
        if terms.match("intrathecal-route", dosage.route, dosage.text) is not None:
            return True
    return terms.match("intrathecal-route", fact.form) is not None


def is_intrathecal_baclofen(fact: MedicationFact, terms: Terminology) -> bool:
    if terms.match("intrathecal-baclofen", fact.medication) is not None:
        return True
    agent = terms.match("oral-antispasticity", fact.medication)
    return agent is not None and agent.group == "baclofen" and is_intrathecal(fact, terms)


def oral_agent(fact: MedicationFact, terms: Terminology) -> Match | None:
    """The oral antispasticity agent this medication is, or None (other drug, other route)."""
    agent = terms.match("oral-antispasticity", fact.medication)
    if agent is None or is_intrathecal(fact, terms):
        return None
    routes = [d.route for d in fact.dosages if d.route is not None and (
        d.route.codings or d.route.text)]
    if routes:
        return agent if any(terms.match("oral-route", r) for r in routes) else None
    if "oral" in agent.tags:
        return agent
    oral_signals: list[Concept | None] = [fact.form, fact.medication, *(
        d.method for d in fact.dosages)]
    if any(terms.match("oral-route", c) is not None for c in oral_signals if c is not None):
        return agent
    if any(terms.match_text("oral-route", d.text) for d in fact.dosages):
        return agent
    return None


def medication_evidence(fact: MedicationFact, says: EvidenceLabel | None = None,
                        terms: Terminology | None = None, **value_words: str) -> Evidence:
    """A medication row; ``says`` (with its words) is the value, in the catalogue's words.
    With ``terms``, a product charted by code alone is named by the value sets' display."""
    return Evidence(
        EvidenceLabel.MEDICATION,
        reference=fact.ref,
        date=when(fact.effective.start or fact.authored),
        value_label=says,
        words=words(name=label(fact.medication, "", terms), kind=fact.kind,
                    status=fact.status or "", **value_words),
    )


# ------------------------------------------------------------------ observations


def quantity_of(o: ObservationFact) -> Quantity | None:
    if isinstance(o.value, Quantity):
        return o.value
    if isinstance(o.value, bool):
        return None
    if isinstance(o.value, int | float):
        return Quantity(float(o.value))
    return None

