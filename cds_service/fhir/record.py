"""The normalised patient record: what the rules see of a chart.

The selective parser (``fhir/parse.py``) builds it from raw FHIR R4 JSON after validating each
kept resource with ``fhir.resources`` R4B; the rules (``rules/``) read it and nothing else.
Every fact keeps ``ref`` ("ResourceType/id") so a card can cite its evidence.
Datetimes are timezone-aware (a FHIR date without time becomes midnight UTC; a dateTime
without offset is read as UTC); a FHIR ``date`` stays a ``date`` only where FHIR says date
(birthDate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Coding:
    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True, slots=True)
class Concept:
    """A CodeableConcept: its codings plus its text (either may be empty)."""

    codings: tuple[Coding, ...] = ()
    text: str | None = None

    def words(self) -> str:
        """Lower-cased text and displays, for text-fallback matching."""
        parts = [self.text or ""] + [c.display or "" for c in self.codings]
        return " ".join(p for p in parts if p).lower()


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float | None
    unit: str | None = None  # the human unit as sent
    code: str | None = None  # the UCUM (or other) code
    system: str | None = None


@dataclass(frozen=True, slots=True)
class Ratio:
    numerator: Quantity | None
    denominator: Quantity | None


@dataclass(frozen=True, slots=True)
class Timing:
    """R4 Timing, reduced to what daily-dose arithmetic needs."""

    frequency: int | None = None
    frequency_max: int | None = None
    period: float | None = None
    period_max: float | None = None
    period_unit: str | None = None  # s | min | h | d | wk | mo | a
    code: Concept | None = None  # BID, TID, QID, QD, Q4H ...
    when: tuple[str, ...] = ()
    time_of_day: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dosage:
    """One R4 Dosage / dosageInstruction (first doseAndRate entry)."""

    text: str | None = None
    route: Concept | None = None
    timing: Timing | None = None
    dose: Quantity | None = None  # doseQuantity (a doseRange only when low == high)
    rate: Quantity | None = None  # rateQuantity, or rateRatio numerator per denominator
    rate_ratio: Ratio | None = None
    as_needed: bool = False
    method: Concept | None = None
    # doseRange low/high when the range is a real range (dose is then None): the daily dose
    # is not known, only its bounds.
    dose_low: Quantity | None = None
    dose_high: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class PatientInfo:
    ref: str
    birth_date: date | None = None
    sex: str | None = None  # administrative gender
    deceased: bool = False


@dataclass(frozen=True, slots=True)
class ConditionFact:
    ref: str
    code: Concept
    clinical_status: str | None = None  # active | recurrence | relapse | inactive | ...
    verification_status: str | None = None  # confirmed | entered-in-error | refuted | ...
    onset: datetime | None = None  # onsetDateTime, onsetPeriod.start, else None
    recorded: datetime | None = None
    abatement: datetime | None = None
    categories: tuple[Concept, ...] = ()


@dataclass(frozen=True, slots=True)
class MedicationFact:
    """A MedicationRequest, MedicationStatement or MedicationAdministration.

    ``medication`` is the medicationCodeableConcept, or the code of the referenced Medication
    (contained or present in the input) with its ``form`` and ingredient ``strength`` when
    that resource was available.
    """

    ref: str
    kind: str  # "MedicationRequest" | "MedicationStatement" | "MedicationAdministration"
    status: str | None
    medication: Concept
    status_reasons: tuple[Concept, ...] = ()  # statusReason (R4: one for MR, many for MS)
    intent: str | None = None  # MedicationRequest.intent
    dosages: tuple[Dosage, ...] = ()  # dosageInstruction / dosage / (MA) dosage as one entry
    form: Concept | None = None  # Medication.form
    strength: Ratio | None = None  # first Medication.ingredient.strength
    authored: datetime | None = None  # authoredOn / dateAsserted
    effective: Period = field(default_factory=Period)  # effective[x] / dispense validity
    reason_codes: tuple[Concept, ...] = ()
    reason_refs: tuple[str, ...] = ()  # "Condition/123"
    part_of: tuple[str, ...] = ()  # MedicationAdministration.partOf (e.g. "Procedure/9")
    draft: bool = False  # True when it came from context.draftOrders


@dataclass(frozen=True, slots=True)
class Reaction:
    manifestations: tuple[Concept, ...] = ()
    substance: Concept | None = None
    severity: str | None = None


@dataclass(frozen=True, slots=True)
class AllergyFact:
    ref: str
    code: Concept
    type: str | None = None  # allergy | intolerance
    criticality: str | None = None  # low | high | unable-to-assess
    clinical_status: str | None = None
    verification_status: str | None = None
    category: tuple[str, ...] = ()
    reactions: tuple[Reaction, ...] = ()
    recorded: datetime | None = None


@dataclass(frozen=True, slots=True)
class AdverseEventFact:
    ref: str
    event: Concept
    suspects: tuple[Concept, ...] = ()  # suspectEntity.instance resolved to a code when possible
    suspect_refs: tuple[str, ...] = ()
    date: datetime | None = None
    actuality: str | None = None  # actual | potential


@dataclass(frozen=True, slots=True)
class ProcedureFact:
    ref: str
    code: Concept
    status: str | None
    performed: datetime | None = None  # performedDateTime or performedPeriod.start
    performed_end: datetime | None = None
    focal_devices: tuple[str, ...] = ()  # focalDevice.manipulated refs, "Device/1"
    used_codes: tuple[Concept, ...] = ()
    notes: tuple[str, ...] = ()
    reason_codes: tuple[Concept, ...] = ()
    reason_refs: tuple[str, ...] = ()
    part_of: tuple[str, ...] = ()
    extensions: tuple[tuple[str, object], ...] = ()  # (url, value) of simple-valued extensions


ObservationValue = Quantity | Concept | bool | int | float | str | datetime | None


@dataclass(frozen=True, slots=True)
class ObservationFact:
    ref: str
    code: Concept
    status: str | None
    effective: datetime | None = None  # effectiveDateTime / effectivePeriod.start / issued
    value: ObservationValue = None
    body_site: Concept | None = None
    components: tuple[tuple[Concept, ObservationValue], ...] = ()
    part_of: tuple[str, ...] = ()
    derived_from: tuple[str, ...] = ()
    focus: tuple[str, ...] = ()
    device: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceFact:
    ref: str
    status: str | None  # active | inactive | entered-in-error | unknown
    type: Concept = field(default_factory=Concept)
    names: tuple[str, ...] = ()  # deviceName[].name
    model_number: str | None = None
    manufacturer: str | None = None
    manufacture_date: datetime | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceRequestFact:
    ref: str
    status: str | None
    intent: str | None
    code: Concept
    occurrence: datetime | None = None  # occurrenceDateTime / occurrencePeriod.start
    authored: datetime | None = None
    reason_codes: tuple[Concept, ...] = ()
    reason_refs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppointmentFact:
    ref: str
    status: str | None
    start: datetime | None
    codes: tuple[Concept, ...] = ()  # serviceType + appointmentType + reasonCode + specialty
    description: str | None = None
    based_on: tuple[str, ...] = ()
    proposed: bool = False  # True when it came from the hook's context (appointment-book)


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """An input entry that could not be used, and why (never fatal for the others)."""

    source: str  # prefetch key, "draftOrders" or the FHIR query it came from
    index: int | None
    resource_type: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RepairedEntry:
    """An input entry that was used after a harmless repair (an unknown field dropped, a
    dateTime without offset read as UTC, a Sandbox draft-order quirk fixed)."""

    source: str
    index: int | None
    resource_type: str | None
    repairs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PatientRecord:
    patient: PatientInfo | None
    conditions: tuple[ConditionFact, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    adverse_events: tuple[AdverseEventFact, ...] = ()
    procedures: tuple[ProcedureFact, ...] = ()
    observations: tuple[ObservationFact, ...] = ()
    devices: tuple[DeviceFact, ...] = ()
    service_requests: tuple[ServiceRequestFact, ...] = ()
    appointments: tuple[AppointmentFact, ...] = ()
    skipped: tuple[SkippedEntry, ...] = ()
    # Data the rules need that could not be obtained (prefetch key names), e.g. "devices".
    unavailable: tuple[str, ...] = ()
    repaired: tuple[RepairedEntry, ...] = ()
