"""The chart as the rules read it, indexed once per call.

Every medication, observation and ITB procedure is classified through the terminology once,
and what several rules ask (the active pumps, the current ITB orders, the observations of one
kind, the spasticity conditions) is computed once, so four rules and several pumps do not
each classify the whole chart again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cds_service.fhir.record import MedicationFact, ObservationFact, PatientRecord, ProcedureFact
from cds_service.rules.chart import (
    CURRENT_MEDICATION,
    MatchedCondition,
    active_conditions,
    is_intrathecal,
    is_intrathecal_baclofen,
    medication_is_void,
    observation_counts,
    oral_agent,
    procedure_done,
)
from cds_service.rules.pump import (
    Pump,
    StaleDevice,
    completed,
    implants,
    needs_pump_link,
    pump_census,
)
from cds_service.terminology import Match, Terminology

_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
# Administrations of intrathecal baclofen that were given (a screening bolus).
_GIVEN = ("completed", "in-progress")


@dataclass(frozen=True, slots=True)
class Med:
    """A medication and what the terminology says it is."""

    fact: MedicationFact
    intrathecal: bool
    itb: bool  # intrathecal baclofen
    oral: Match | None  # the oral antispasticity agent; None: another drug or route

    @property
    def void(self) -> bool:
        return medication_is_void(self.fact)


@dataclass(frozen=True, slots=True)
class TrialProcedure:
    """A completed procedure of itb-trial-procedure (with its baclofen link where needed)."""

    fact: ProcedureFact
    match: Match


@dataclass(frozen=True, slots=True)
class ChartIndex:
    record: PatientRecord
    terms: Terminology
    meds: tuple[Med, ...]
    origin: tuple[MatchedCondition, ...]  # active spasticity-origin conditions
    dystonia: tuple[MatchedCondition, ...]  # active dystonia conditions
    implants: tuple[ProcedureFact, ...]  # completed ITB pump implants, earliest first
    removals: tuple[ProcedureFact, ...]
    trial_procedures: tuple[TrialProcedure, ...]
    itb_given: tuple[MedicationFact, ...]  # intrathecal baclofen administrations given
    itb_orders: tuple[MedicationFact, ...]  # current intrathecal baclofen orders, latest last
    pumps: tuple[Pump, ...]  # the active ITB pumps
    stale_devices: tuple[StaleDevice, ...]  # pump Devices still active after their removal
    pump_history: bool  # any sign of ITB via a pump: candidacy keeps quiet
    backup_oral_baclofen: bool  # an active oral baclofen order to fall back on
    refills: tuple[tuple[ProcedureFact, bool], ...]  # completed refills, needs a pump link
    observations_by_kind: Mapping[str, tuple[ObservationFact, ...]]

    @classmethod
    def for_rules(cls, record: PatientRecord, terms: Terminology) -> ChartIndex | None:
        """The index every rule reads, or None when no rule speaks (a deceased patient): the
        cards and the worklist decide this in one place."""
        if record.patient is not None and record.patient.deceased:
            return None
        return cls.build(record, terms)

    @classmethod
    def build(cls, record: PatientRecord, terms: Terminology) -> ChartIndex:
        meds = tuple(Med(m, is_intrathecal(m, terms), is_intrathecal_baclofen(m, terms),
                         oral_agent(m, terms)) for m in record.medications)
        implant_list = implants(record, terms)
        removal_list = completed(record, terms, "itb-pump-removal")
        pumps, stale = ([], []) if _other_intrathecal_therapy_only(meds) else pump_census(
            record, terms, implant_list, removal_list)
        return cls(
            record=record,
            terms=terms,
            meds=meds,
            origin=tuple(active_conditions(record, terms, "spasticity-origin")),
            dystonia=tuple(active_conditions(record, terms, "dystonia")),
            implants=tuple(implant_list),
            removals=tuple(removal_list),
            trial_procedures=_trial_procedures(record, terms, meds),
            itb_given=tuple(m.fact for m in meds if m.itb and m.fact.kind == (
                "MedicationAdministration") and (m.fact.status or "").lower() in _GIVEN),
            itb_orders=_current_itb_orders(meds),
            pumps=tuple(pumps),
            stale_devices=tuple(stale),
            pump_history=bool(pumps) or any(
                m.itb and m.fact.kind != "MedicationAdministration" and not m.fact.draft
                and (m.fact.status or "").lower() in CURRENT_MEDICATION for m in meds),
            backup_oral_baclofen=any(
                not m.void and not m.fact.draft and (m.fact.status or "").lower() == "active"
                and m.oral is not None and m.oral.group == "baclofen" for m in meds),
            refills=tuple((p, needs_pump_link(p, terms))
                           for p in completed(record, terms, "itb-pump-refill")),
            observations_by_kind=_observations_by_kind(record, terms),
        )

    def observations(self, kind: str) -> tuple[ObservationFact, ...]:
        """Observations of one local observation code that count, undated last."""
        return self.observations_by_kind.get(kind, ())

    def refills_for(self, pump_refs: frozenset[str]) -> list[ProcedureFact]:
        """Completed ITB refills; one named only "pump refill" needs a focalDevice in
        pump_refs."""
        return [p for p, needs_link in self.refills
                if not needs_link or set(p.focal_devices) & pump_refs]


def _other_intrathecal_therapy_only(meds: tuple[Med, ...]) -> bool:
    """Intrathecal drugs on file and none is baclofen: the pump is, e.g., a morphine pain pump."""
    intrathecal = [m for m in meds if not m.void and m.intrathecal]
    return bool(intrathecal) and not any(m.itb for m in intrathecal)


def _current_itb_orders(meds: tuple[Med, ...]) -> tuple[MedicationFact, ...]:
    orders = [
        m.fact for m in meds
        if m.fact.kind == "MedicationRequest" and not m.fact.draft
        and (m.fact.status or "").lower() in CURRENT_MEDICATION and m.itb
    ]
    # Undated orders sort first: a dated order is the better "latest".
    return tuple(sorted(orders, key=lambda m: (
        (m.authored or m.effective.start) is not None,
        (m.authored or m.effective.start or _EPOCH),
    )))


def _trial_procedures(record: PatientRecord, terms: Terminology, meds: tuple[Med, ...]
                      ) -> tuple[TrialProcedure, ...]:
    """The generic injection codes (CPT 62320-62327, 62311) need a link to baclofen: an
    epidural steroid injection is no trial."""
    out = []
    for p in record.procedures:
        if not procedure_done(p):
            continue
        found = terms.match("itb-trial-procedure", p.code)
        if found is None:
            continue
        if "needs-baclofen" in found.tags and not _names_baclofen(p, terms, meds):
            continue
        out.append(TrialProcedure(p, found))
    return tuple(out)


def _names_baclofen(p: ProcedureFact, terms: Terminology, meds: tuple[Med, ...]) -> bool:
    words = " ".join([p.code.words(), *(c.words() for c in p.used_codes), *p.notes]).lower()
    if "baclofen" in words or any(terms.match("intrathecal-baclofen", c) for c in p.used_codes):
        return True
    return any(p.ref in m.fact.part_of and m.itb for m in meds)


def _observations_by_kind(record: PatientRecord, terms: Terminology
                          ) -> dict[str, tuple[ObservationFact, ...]]:
    found: dict[str, list[ObservationFact]] = {}
    for o in record.observations:
        if not observation_counts(o):
            continue
        kind = terms.observation_kind(o.code)
        if kind is not None:
            found.setdefault(kind, []).append(o)
    return {kind: tuple(sorted(obs, key=lambda o: (o.effective is None,
                                                   o.effective or datetime.min)))
            for kind, obs in found.items()}
