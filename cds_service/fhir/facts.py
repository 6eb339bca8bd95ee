"""From validated R4B models to the frozen facts of ``record.py``.

The models are fhir.resources instances (untyped for mypy), so every accessor here takes ``Any``
and returns a typed value; nothing past this module sees a model or a dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from cds_service.fhir.record import (
    AdverseEventFact,
    AllergyFact,
    AppointmentFact,
    Coding,
    Concept,
    ConditionFact,
    DeviceFact,
    Dosage,
    MedicationFact,
    ObservationFact,
    ObservationValue,
    PatientInfo,
    Period,
    ProcedureFact,
    Quantity,
    Ratio,
    Reaction,
    ServiceRequestFact,
    Timing,
)

# The code, form and strength of a Medication, once resolved.
MedicationInfo = tuple[Concept, Concept | None, Ratio | None]
# Resolves a medicationReference (already made local: "#id" or "Medication/id") for a resource.
MedicationLookup = Callable[[Any, str], MedicationInfo | None]


# ------------------------------------------------------------------ datatypes


def when(value: Any) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware datetime (dates and partial dates: midnight
    UTC of their first day; a time without offset: UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        day = partial_date(value)
        return datetime.combine(day, time(), tzinfo=UTC) if day else None
    return None


def partial_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        parts = value[:10].split("-")
        try:
            numbers = [int(p) for p in parts] + [1] * (3 - len(parts))
            return date(numbers[0], numbers[1], numbers[2])
        except (ValueError, IndexError):
            return None
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    return None


def coding(c: Any) -> Coding:
    return Coding(system=c.system, code=c.code, display=c.display)


def concept(cc: Any) -> Concept:
    if cc is None:
        return Concept()
    return Concept(codings=tuple(coding(c) for c in cc.coding or ()), text=cc.text)


def maybe_concept(cc: Any) -> Concept | None:
    return None if cc is None else concept(cc)


def concepts(items: Iterable[Any] | None) -> tuple[Concept, ...]:
    return tuple(concept(cc) for cc in items or ())


# The FHIR code words of Condition/AllergyIntolerance clinicalStatus and verificationStatus:
# an EHR that sends only text ("Active") still means one of them.
STATUS_WORDS = frozenset({
    "active", "recurrence", "relapse", "inactive", "remission", "resolved",
    "unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error",
})


def status_code(cc: Any) -> str | None:
    """The code of a status CodeableConcept (clinicalStatus, verificationStatus); a text-only
    status is read when it is one of the FHIR code words (case-insensitive)."""
    if cc is None:
        return None
    for c in cc.coding or ():
        if c.code:
            return str(c.code)
    for text in (cc.text, *(c.display for c in cc.coding or ())):
        word = "-".join(str(text or "").strip().lower().split())
        if word in STATUS_WORDS:
            return word
    return None


def quantity(q: Any) -> Quantity | None:
    if q is None:
        return None
    return Quantity(value=number(q.value), unit=q.unit, code=q.code, system=q.system)


def ratio(r: Any) -> Ratio | None:
    if r is None:
        return None
    return Ratio(numerator=quantity(r.numerator), denominator=quantity(r.denominator))


def ref(reference: Any) -> str | None:
    return None if reference is None else reference.reference


def refs(items: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(r.reference for r in items or () if r is not None and r.reference)


def notes(items: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(n.text for n in items or () if n.text)


def rate_from_ratio(r: Ratio) -> Quantity | None:
    num, den = r.numerator, r.denominator
    if num is None or num.value is None:
        return None
    if den is None:
        return num
    if not den.value:
        return None
    num_unit, den_unit = num.unit or num.code, den.unit or den.code
    per = "/".join(u for u in (num_unit, den_unit) if u) or None
    per_code = "/".join(u for u in (num.code, den.code) if u) or None
    return Quantity(value=num.value / den.value, unit=per, code=per_code, system=num.system)


def timing(t: Any) -> Timing | None:
    if t is None:
        return None
    rep = t.repeat
    if rep is None:
        return Timing(code=maybe_concept(t.code))
    return Timing(
        frequency=rep.frequency,
        frequency_max=rep.frequencyMax,
        period=number(rep.period),
        period_max=number(rep.periodMax),
        period_unit=rep.periodUnit,
        code=maybe_concept(t.code),
        when=tuple(rep.when or ()),
        time_of_day=tuple(str(x) for x in rep.timeOfDay or ()),
    )


def dosage(d: Any) -> Dosage:
    dose = rate = None
    rate_ratio = None
    dose_low = dose_high = None
    first = d.doseAndRate[0] if d.doseAndRate else None
    if first is not None:
        dose = quantity(first.doseQuantity)
        if dose is None and first.doseRange is not None:
            dose_low, dose_high = quantity(first.doseRange.low), quantity(first.doseRange.high)
            if dose_low is not None and dose_low == dose_high:
                dose, dose_low, dose_high = dose_low, None, None
        rate = quantity(first.rateQuantity)
        rate_ratio = ratio(first.rateRatio)
        if rate is None and rate_ratio is not None:
            rate = rate_from_ratio(rate_ratio)
        if rate is None and first.rateRange is not None:
            rate = quantity(first.rateRange.high)
    return Dosage(
        text=d.text,
        route=maybe_concept(d.route),
        timing=timing(d.timing),
        dose=dose,
        rate=rate,
        rate_ratio=rate_ratio,
        as_needed=bool(d.asNeededBoolean) or d.asNeededCodeableConcept is not None,
        method=maybe_concept(d.method),
        dose_low=dose_low,
        dose_high=dose_high,
    )


def administration_dosage(d: Any) -> Dosage:
    rate_ratio = ratio(d.rateRatio)
    rate = quantity(d.rateQuantity)
    if rate is None and rate_ratio is not None:
        rate = rate_from_ratio(rate_ratio)
    return Dosage(
        text=d.text,
        route=maybe_concept(d.route),
        dose=quantity(d.dose),
        rate=rate,
        rate_ratio=rate_ratio,
        method=maybe_concept(d.method),
    )


def period(start: Any = None, end: Any = None) -> Period:
    return Period(start=when(start), end=when(end))


def choice_period(date_time: Any, fhir_period: Any) -> Period:
    if date_time is not None:
        return period(date_time)
    if fhir_period is not None:
        return period(fhir_period.start, fhir_period.end)
    return Period()


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def simple_extensions(raw: Mapping[str, Any]) -> tuple[tuple[str, object], ...]:
    out: list[tuple[str, object]] = []
    for ext in raw.get("extension") or ():
        if not isinstance(ext, dict) or not isinstance(ext.get("url"), str):
            continue
        for name, value in ext.items():
            if name.startswith("value") and isinstance(value, str | int | float | bool):
                out.append((ext["url"], value))
                break
    return tuple(out)


# ------------------------------------------------------------------ resources


def resource_ref(model: Any, fallback: str) -> str:
    return f"{model.get_resource_type()}/{model.id}" if model.id else fallback


def patient(m: Any, ref_: str) -> PatientInfo:
    deceased = bool(m.deceasedBoolean) or m.deceasedDateTime is not None
    return PatientInfo(
        ref=ref_, birth_date=partial_date(m.birthDate), sex=m.gender, deceased=deceased
    )


def condition(m: Any, ref_: str) -> ConditionFact:
    abatement = m.abatementDateTime
    if abatement is None and m.abatementPeriod is not None:
        abatement = _first(m.abatementPeriod.start, m.abatementPeriod.end)
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
    effective = _first(
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
