"""From validated R4B models to the frozen facts of ``record.py``.

The models are fhir.resources instances (untyped for mypy), so every accessor here takes ``Any``
and returns a typed value; nothing past this module sees a model or a dict. The datatypes they
are made of are read by ``datatypes.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cds_service.fhir.datatypes import (
    administration_dosage,
    choice_period,
    concept,
    concepts,
    dosage,
    first_of,
    maybe_concept,
    notes,
    partial_date,
    period,
    quantity,
    ratio,
    ref,
    refs,
    simple_extensions,
    status_code,
    when,
)
from cds_service.fhir.record import (
    AdverseEventFact,
    AllergyFact,
    AppointmentFact,
    Concept,
    ConditionFact,
    DeviceFact,
    MedicationFact,
    ObservationFact,
    ObservationValue,
    PatientInfo,
    ProcedureFact,
    Ratio,
    Reaction,
    ServiceRequestFact,
)

# The code, form and strength of a Medication, once resolved.
MedicationInfo = tuple[Concept, Concept | None, Ratio | None]
# Resolves a medicationReference (already made local: "#id" or "Medication/id") for a resource.
MedicationLookup = Callable[[Any, str], MedicationInfo | None]


def patient(m: Any, ref_: str) -> PatientInfo:
    deceased = bool(m.deceasedBoolean) or m.deceasedDateTime is not None
    return PatientInfo(
        ref=ref_, birth_date=partial_date(m.birthDate), sex=m.gender, deceased=deceased
    )


def condition(m: Any, ref_: str) -> ConditionFact:
    abatement = m.abatementDateTime
    if abatement is None and m.abatementPeriod is not None:
        abatement = first_of(m.abatementPeriod.start, m.abatementPeriod.end)
    onset = m.onsetDateTime
    if onset is None and m.onsetPeriod is not None:
        onset = m.onsetPeriod.start
    return ConditionFact(
        ref=ref_,
        code=concept(m.code),
        clinical_status=status_code(m.clinicalStatus),
        verification_status=status_code(m.verificationStatus),
        onset=when(onset),
        recorded=when(m.recordedDate),
        abatement=when(abatement),
        categories=concepts(m.category),
    )


def _medication(m: Any, lookup: MedicationLookup) -> tuple[Concept, Concept | None, Ratio | None]:
    if m.medicationCodeableConcept is not None:
        return concept(m.medicationCodeableConcept), None, None
    reference = m.medicationReference
    if reference is not None and reference.reference:
        found = lookup(m, reference.reference)
        if found is not None:
            return found
    display = reference.display if reference is not None else None
    return Concept(text=display), None, None


def medication_info(m: Any) -> MedicationInfo:
    strength = None
    for ingredient in m.ingredient or ():
        if ingredient.strength is not None:
            strength = ratio(ingredient.strength)
            break
    return concept(m.code), maybe_concept(m.form), strength


def medication_request(
    m: Any, ref_: str, lookup: MedicationLookup, draft: bool = False
) -> MedicationFact:
    med, form, strength = _medication(m, lookup)
    validity = m.dispenseRequest.validityPeriod if m.dispenseRequest is not None else None
    return MedicationFact(
        ref=ref_,
        kind="MedicationRequest",
        status=m.status,
        medication=med,
        status_reasons=(concept(m.statusReason),) if m.statusReason is not None else (),
        intent=m.intent,
        dosages=tuple(dosage(d) for d in m.dosageInstruction or ()),
        form=form,
        strength=strength,
        authored=when(m.authoredOn),
        effective=choice_period(None, validity),
        reason_codes=concepts(m.reasonCode),
        reason_refs=refs(m.reasonReference),
        draft=draft,
    )


def medication_statement(m: Any, ref_: str, lookup: MedicationLookup) -> MedicationFact:
    med, form, strength = _medication(m, lookup)
    return MedicationFact(
        ref=ref_,
        kind="MedicationStatement",
        status=m.status,
        medication=med,
        status_reasons=concepts(m.statusReason),
        dosages=tuple(dosage(d) for d in m.dosage or ()),
        form=form,
        strength=strength,
        authored=when(m.dateAsserted),
        effective=choice_period(m.effectiveDateTime, m.effectivePeriod),
        reason_codes=concepts(m.reasonCode),
        reason_refs=refs(m.reasonReference),
        part_of=refs(m.partOf),
    )


def medication_administration(m: Any, ref_: str, lookup: MedicationLookup) -> MedicationFact:
    med, form, strength = _medication(m, lookup)
    return MedicationFact(
        ref=ref_,
        kind="MedicationAdministration",
        status=m.status,
        medication=med,
        status_reasons=concepts(m.statusReason),
        dosages=(administration_dosage(m.dosage),) if m.dosage is not None else (),
        form=form,
        strength=strength,
        effective=choice_period(m.effectiveDateTime, m.effectivePeriod),
        reason_codes=concepts(m.reasonCode),
        reason_refs=refs(m.reasonReference),
        part_of=refs(m.partOf),
    )


def allergy(m: Any, ref_: str) -> AllergyFact:
    return AllergyFact(
        ref=ref_,
        code=concept(m.code),
        type=m.type,
        criticality=m.criticality,
        clinical_status=status_code(m.clinicalStatus),
        verification_status=status_code(m.verificationStatus),
        category=tuple(m.category or ()),
        reactions=tuple(
            Reaction(
                manifestations=concepts(r.manifestation),
                substance=maybe_concept(r.substance),
                severity=r.severity,
            )
            for r in m.reaction or ()
        ),
        recorded=when(m.recordedDate),
    )


def adverse_event(
    m: Any, ref_: str, suspect_concept: Callable[[str], Concept | None]
) -> AdverseEventFact:
    suspect_refs: list[str] = []
    suspects: list[Concept] = []
    for entity in m.suspectEntity or ():
        instance = entity.instance
        if instance is None:
            continue
        if instance.reference:
            suspect_refs.append(instance.reference)
            found = suspect_concept(instance.reference)
            if found is not None:
                suspects.append(found)
                continue
        if instance.display:
            suspects.append(Concept(text=instance.display))
    return AdverseEventFact(
        ref=ref_,
        event=concept(m.event),
        suspects=tuple(suspects),
        suspect_refs=tuple(suspect_refs),
        date=when(m.date),
        actuality=m.actuality,
    )


def procedure(m: Any, ref_: str, raw: Mapping[str, Any]) -> ProcedureFact:
    performed = period(m.performedDateTime)
    if m.performedPeriod is not None:
        performed = period(m.performedPeriod.start, m.performedPeriod.end)
    return ProcedureFact(
        ref=ref_,
        code=concept(m.code),
        status=m.status,
        performed=performed.start,
        performed_end=performed.end,
        focal_devices=tuple(
            fd.manipulated.reference
            for fd in m.focalDevice or ()
            if fd.manipulated is not None and fd.manipulated.reference
        ),
        used_codes=concepts(m.usedCode),
        notes=notes(m.note),
        reason_codes=concepts(m.reasonCode),
        reason_refs=refs(m.reasonReference),
        part_of=refs(m.partOf),
        extensions=simple_extensions(raw),
    )


def observation_value(holder: Any) -> ObservationValue:
    """value[x] of an Observation or one of its components."""
    if holder.valueQuantity is not None:
        return quantity(holder.valueQuantity)
    if holder.valueCodeableConcept is not None:
        return concept(holder.valueCodeableConcept)
    for simple in (holder.valueBoolean, holder.valueInteger, holder.valueString):
        if simple is not None:
            return simple  # type: ignore[no-any-return]
    if holder.valueDateTime is not None:
        return when(holder.valueDateTime)
    if holder.valuePeriod is not None:
        return when(holder.valuePeriod.start)
    if holder.valueTime is not None:
        return str(holder.valueTime)
    return None


def observation(m: Any, ref_: str) -> ObservationFact:
    effective = first_of(
        m.effectiveDateTime,
        m.effectivePeriod.start if m.effectivePeriod is not None else None,
        m.effectiveInstant,
        m.issued,
    )
    return ObservationFact(
        ref=ref_,
        code=concept(m.code),
        status=m.status,
        effective=when(effective),
        value=observation_value(m),
        body_site=maybe_concept(m.bodySite),
        components=tuple((concept(c.code), observation_value(c)) for c in m.component or ()),
        part_of=refs(m.partOf),
        derived_from=refs(m.derivedFrom),
        focus=refs(m.focus),
        device=ref(m.device),
    )


def device(m: Any, ref_: str) -> DeviceFact:
    return DeviceFact(
        ref=ref_,
        status=m.status,
        type=concept(m.type),
        names=tuple(n.name for n in m.deviceName or () if n.name),
        model_number=m.modelNumber,
        manufacturer=m.manufacturer,
        manufacture_date=when(m.manufactureDate),
        notes=notes(m.note),
    )


def service_request(m: Any, ref_: str) -> ServiceRequestFact:
    occurrence = m.occurrenceDateTime
    if occurrence is None and m.occurrencePeriod is not None:
        occurrence = m.occurrencePeriod.start
    return ServiceRequestFact(
        ref=ref_,
        status=m.status,
        intent=m.intent,
        code=concept(m.code),
        occurrence=when(occurrence),
        authored=when(m.authoredOn),
        reason_codes=concepts(m.reasonCode),
        reason_refs=refs(m.reasonReference),
    )


def appointment(m: Any, ref_: str) -> AppointmentFact:
    codes = (
        concepts(m.serviceType)
        + ((concept(m.appointmentType),) if m.appointmentType is not None else ())
        + concepts(m.reasonCode)
        + concepts(m.specialty)
    )
    return AppointmentFact(
        ref=ref_,
        status=m.status,
        start=when(m.start),
        codes=codes,
        description=m.description,
        based_on=refs(m.basedOn),
    )
