"""The selective parser: raw FHIR JSON in, a frozen PatientRecord out.

One pass over the raw dicts keeps only the resource types (and Observation codes) the rules
read, and only those are validated with their fhir.resources R4B model: a chart is mostly vital
signs, encounters and claims, and validating those would cost far more than reading the JSON.
A bad entry is reported and skipped; it never fails the call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.fhir import facts
from cds_service.fhir.client import bundle_entries
from cds_service.fhir.memo import Remembered, ValidationMemo
from cds_service.fhir.record import (
    AppointmentFact,
    Concept,
    MedicationFact,
    PatientInfo,
    PatientRecord,
    RepairedEntry,
    SkippedEntry,
)
from cds_service.fhir.repair import Validated, validate

# screen(resource_type, raw, medications_by_ref): False drops a stored resource unvalidated.
Screen = Callable[[str, Mapping[str, Any], Mapping[str, Mapping[str, Any]]], bool]

DRAFT_ORDERS = "draftOrders"

MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Condition": Condition,
    "MedicationRequest": MedicationRequest,
    "MedicationStatement": MedicationStatement,
    "MedicationAdministration": MedicationAdministration,
    "Medication": Medication,
    "AllergyIntolerance": AllergyIntolerance,
    "AdverseEvent": AdverseEvent,
    "Procedure": Procedure,
    "Observation": Observation,
    "Device": Device,
    "ServiceRequest": ServiceRequest,
    "Appointment": Appointment,
}

# What each kept type becomes: its fact is read from the resource alone, so it is built once
# per distinct content and remembered. A medication use that names a Medication elsewhere in
# the chart gets that Medication's code, form and strength when the record is assembled.
_OWN_FACT: dict[str, Callable[[Any, str, Mapping[str, Any]], Any]] = {
    "Patient": lambda m, ref, _raw: facts.patient(m, ref),
    "Condition": lambda m, ref, _raw: facts.condition(m, ref),
    "Medication": lambda m, _ref, _raw: facts.medication_info(m),
    "MedicationRequest": lambda m, ref, _raw: facts.medication_request(m, ref, _contained),
    "MedicationStatement": lambda m, ref, _raw: facts.medication_statement(m, ref, _contained),
    "MedicationAdministration": lambda m, ref, _raw: facts.medication_administration(
        m, ref, _contained),
    "AllergyIntolerance": lambda m, ref, _raw: facts.allergy(m, ref),
    "Procedure": facts.procedure,
    "Observation": lambda m, ref, _raw: facts.observation(m, ref),
    "Device": lambda m, ref, _raw: facts.device(m, ref),
    "ServiceRequest": lambda m, ref, _raw: facts.service_request(m, ref),
    "Appointment": lambda m, ref, _raw: facts.appointment(m, ref),
}
# AdverseEvent is not above: its suspects are looked up among the chart's medications, so its
# validated model is remembered and its fact built per call.
_MEDICATION_USES = ("MedicationRequest", "MedicationStatement", "MedicationAdministration")


def _contained(model: Any, reference: str) -> facts.MedicationInfo | None:
    """A Medication contained in the resource itself; one elsewhere is resolved in _build."""
    local = local_reference(reference)
    if local.startswith("#"):
        for contained in model.contained or ():
            if contained.get_resource_type() == "Medication" and contained.id == local[1:]:
                return facts.medication_info(contained)
    return None


def _external_medication(resource_type: str, model: Any) -> str | None:
    """"Medication/x" when a medication use names a Medication outside itself."""
    if resource_type not in _MEDICATION_USES or model.medicationCodeableConcept is not None:
        return None
    reference = model.medicationReference
    target = reference.reference if reference is not None else None
    if target and not target.startswith("#"):
        return local_reference(target)
    return None


# What the CDS Hooks Sandbox leaves out of its draft orders; an unsigned order is a draft order.
_DRAFT_DEFAULTS: dict[str, dict[str, object]] = {
    "MedicationRequest": {"status": "draft", "intent": "order"},
    "ServiceRequest": {"status": "draft", "intent": "order"},
    # appointment-book sends the appointments being booked: proposed until the EHR books them.
    "Appointment": {"status": "proposed"},
}


@dataclass(frozen=True, slots=True)
class _Kept:
    resource_type: str
    ref: str
    fact: Any | None  # for _OWN_FACT types
    model: Any | None  # for the others
    medication_ref: str | None  # a medication use's Medication outside itself


@dataclass
class _Collector:
    """One pass over a call's raw entries: what was kept (validated, as facts), skipped and
    repaired. ``screen`` and ``memo`` as in ``parse_record``."""

    observation_filter: Callable[[Mapping[str, Any]], bool]
    screen: Screen | None
    memo: ValidationMemo | None
    medications: Mapping[str, Mapping[str, Any]]
    skipped: list[SkippedEntry] = dataclasses.field(default_factory=list)
    repaired: list[RepairedEntry] = dataclasses.field(default_factory=list)
    kept: dict[str, _Kept] = dataclasses.field(default_factory=dict)

    def _wanted(self, resource_type: str, raw: Mapping[str, Any], draft: bool) -> bool:
        if resource_type == "Observation":
            code = raw.get("code")
            return isinstance(code, dict) and self.observation_filter(code)
        return draft or self.screen is None or self.screen(resource_type, raw, self.medications)

    def keep(self, source: str, index: int | None, raw: object,
             lenient: Mapping[str, object] | None = None) -> None:
        if not isinstance(raw, dict):
            self.skipped.append(SkippedEntry(source, index, None, "entry is not a FHIR resource"))
            return
        resource_type = raw.get("resourceType")
        if not isinstance(resource_type, str):
            self.skipped.append(SkippedEntry(source, index, None, "entry has no resourceType"))
            return
        model_cls = MODELS.get(resource_type)
        if model_cls is None:
            return  # a type no rule reads: dropped unvalidated, by design
        draft = lenient is not None
        if not self._wanted(resource_type, raw, draft):
            return
        rid = raw.get("id")
        ref = f"{resource_type}/{rid}" if isinstance(rid, str) and rid else None
        if ref is not None and ref in self.kept:
            return  # the same resource under a second key
        # An entry without id cannot be cited by reference; name it by where it came from.
        ref = ref or f"{resource_type}/#{source}[{index}]"
        memo = self.memo
        key = memo.key(ref, raw) if memo is not None and not draft else None
        found = memo.get(key) if memo is not None and key is not None else None
        if found is None:
            defaults = None
            if lenient is not None:
                defaults = {**_DRAFT_DEFAULTS.get(resource_type, {}), **lenient}
            found = _outcome(resource_type, ref, raw, validate(model_cls, raw, defaults))
            if memo is not None and key is not None:
                memo.put(key, found)
        if found.error is not None:
            self.skipped.append(SkippedEntry(source, index, resource_type, found.error))
            return
        if found.repairs:
            self.repaired.append(RepairedEntry(source, index, resource_type, found.repairs))
        fact = found.fact
        if draft and isinstance(fact, MedicationFact) and fact.kind == "MedicationRequest":
            fact = dataclasses.replace(fact, draft=True)
        elif draft and isinstance(fact, AppointmentFact):
            fact = dataclasses.replace(fact, proposed=True)
        self.kept[ref] = _Kept(resource_type, ref, fact, found.model, found.medication_ref)


def parse_record(
    resources_by_key: Mapping[str, Sequence[object]],
    draft_orders: object | None,
    observation_filter: Callable[[Mapping[str, Any]], bool],
    screen: Screen | None = None,
    memo: ValidationMemo | None = None,
    draft_source: str = DRAFT_ORDERS,
) -> PatientRecord:
    """``screen(resource_type, raw, medications_by_ref)`` may drop, before validation, stored
    resources no rule can read (draft orders are never screened). ``memo`` remembers what
    validation gave for content seen before (draft orders, still being edited, never are).
    ``draft_source``: the context field the drafts came in (draft orders, proposed
    appointments), as skipped entries name it."""
    medications = _medication_index(resources_by_key) if screen is not None else {}
    collector = _Collector(observation_filter, screen, memo, medications)
    # Draft orders first: an unsigned order supersedes a stored copy of the same resource.
    drafts = _draft_entries(draft_orders, collector.skipped, draft_source)
    if drafts:
        lenient = _lenient_defaults(_patient_reference(resources_by_key))
        for index, raw in enumerate(drafts):
            collector.keep(draft_source, index, _unquirk_draft(raw), lenient)
    for source, items in resources_by_key.items():
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            collector.skipped.append(SkippedEntry(source, None, None, "not a list of resources"))
            continue
        for index, raw in enumerate(items):
            collector.keep(source, index, raw)
    return _build(collector.kept, collector.skipped, collector.repaired)


def _outcome(resource_type: str, ref: str, raw: Mapping[str, Any], result: Validated
             ) -> Remembered:
    model = result.model
    if model is None:
        return Remembered(None, None, result.repairs, result.error or "invalid")
    own_fact = _OWN_FACT.get(resource_type)
    if own_fact is None:
        return Remembered(None, model, result.repairs, None)
    return Remembered(own_fact(model, ref, raw), None, result.repairs, None,
                      _external_medication(resource_type, model))


def _raw_of_type(
    resources_by_key: Mapping[str, Sequence[object]], resource_type: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """("Type/id", raw) of every raw resource of one type, before any validation."""
    for items in resources_by_key.values():
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            continue
        for raw in items:
            if isinstance(raw, dict) and raw.get("resourceType") == resource_type:
                rid = raw.get("id")
                if isinstance(rid, str) and rid:
                    yield f"{resource_type}/{rid}", raw


def _medication_index(
    resources_by_key: Mapping[str, Sequence[object]],
) -> dict[str, Mapping[str, Any]]:
    return dict(_raw_of_type(resources_by_key, "Medication"))


def _lenient_defaults(subject: str | None) -> dict[str, object]:
    """What a draft may leave out: the order (or the appointment) is for the patient in
    context even when nothing says which one it is."""
    patient = {"reference": subject} if subject else {"display": "patient"}
    return {"subject": patient, "participant": [{"actor": patient, "status": "needs-action"}]}


def _draft_entries(draft_orders: object | None, skipped: list[SkippedEntry],
                   source: str = DRAFT_ORDERS) -> list[object]:
    if draft_orders is None:
        return []
    if isinstance(draft_orders, dict):
        if draft_orders.get("resourceType") == "Bundle":
            return bundle_entries(draft_orders)  # the Sandbox omits Bundle.type: never checked
        return [draft_orders]
    if isinstance(draft_orders, list):
        return list(draft_orders)
    skipped.append(SkippedEntry(source, None, None, f"{source} is not a Bundle"))
    return []


def proposed_resources(drafts: object | None, subject: str | None, wanted: Collection[str],
                       source: str = DRAFT_ORDERS) -> dict[str, dict[str, Any]]:
    """The drafts named in ``wanted`` ("Appointment/a1"), each as R4 JSON after the same
    lenient repairs ``parse_record`` made: what an update suggestion starts from."""
    out: dict[str, dict[str, Any]] = {}
    lenient = _lenient_defaults(subject)
    for index, raw in enumerate(_draft_entries(drafts, [], source)):
        raw = _unquirk_draft(raw)
        if not isinstance(raw, dict) or raw.get("resourceType") not in MODELS:
            continue
        resource_type = raw["resourceType"]
        rid = raw.get("id")
        ref = (f"{resource_type}/{rid}" if isinstance(rid, str) and rid
               else f"{resource_type}/#{source}[{index}]")
        if ref not in wanted or ref in out:
            continue
        defaults = {**_DRAFT_DEFAULTS.get(resource_type, {}), **lenient}
        model = validate(MODELS[resource_type], raw, defaults).model
        if model is not None:
            out[ref] = model.model_dump(mode="json", exclude_none=True)
    return out


def _unquirk_draft(raw: object) -> object:
    """Repairs the Sandbox quirks the model's error would not name precisely enough."""
    if not isinstance(raw, dict):
        return raw
    category = raw.get("category")
    if isinstance(category, dict):
        return {**raw, "category": [category]}
    return raw


def _patient_reference(resources_by_key: Mapping[str, Sequence[object]]) -> str | None:
    return next((ref for ref, _ in _raw_of_type(resources_by_key, "Patient")), None)


def local_reference(reference: str) -> str:
    """Make a reference local: ``http://x/fhir/Medication/7/_history/2`` -> ``Medication/7``."""
    if reference.startswith("#"):
        return reference
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:])


def _build(
    kept: dict[str, _Kept], skipped: list[SkippedEntry], repaired: list[RepairedEntry]
) -> PatientRecord:
    by_type: dict[str, list[_Kept]] = {}
    for k in kept.values():
        by_type.setdefault(k.resource_type, []).append(k)

    def each(resource_type: str) -> list[_Kept]:
        return by_type.get(resource_type, [])

    def own(resource_type: str) -> list[Any]:
        return [k.fact for k in each(resource_type)]

    medications: dict[str, facts.MedicationInfo] = {
        k.ref: cast(facts.MedicationInfo, k.fact) for k in each("Medication")}

    def medication_use(k: _Kept) -> MedicationFact:
        fact = cast(MedicationFact, k.fact)
        found = medications.get(k.medication_ref) if k.medication_ref else None
        if found is None:
            return fact
        medication, form, strength = found
        return dataclasses.replace(fact, medication=medication, form=form, strength=strength)

    meds = tuple(sorted(
        (medication_use(k) for kind in _MEDICATION_USES for k in each(kind)),
        key=lambda f: f.ref,
    ))
    med_concepts = {m.ref: m.medication for m in meds}

    def suspect(reference: str) -> Concept | None:
        local = local_reference(reference)
        if local in medications:
            return medications[local][0]
        return med_concepts.get(local)

    def sort(items: list[Any]) -> tuple[Any, ...]:
        return tuple(sorted(items, key=lambda f: f.ref))

    return PatientRecord(
        patient=_pick_patient(own("Patient")),
        conditions=sort(own("Condition")),
        medications=meds,
        allergies=sort(own("AllergyIntolerance")),
        adverse_events=sort(
            [facts.adverse_event(k.model, k.ref, suspect) for k in each("AdverseEvent")]
        ),
        procedures=sort(own("Procedure")),
        observations=sort(own("Observation")),
        devices=sort(own("Device")),
        service_requests=sort(own("ServiceRequest")),
        appointments=sort(own("Appointment")),
        skipped=tuple(sorted(skipped, key=_entry_order)),
        repaired=tuple(sorted(repaired, key=_entry_order)),
    )


def _entry_order(entry: SkippedEntry | RepairedEntry) -> tuple[str, int]:
    return (entry.source, -1 if entry.index is None else entry.index)


def _pick_patient(patients: list[PatientInfo]) -> PatientInfo | None:
    # More than one Patient only happens with _include or a mis-scoped query; the order of
    # keys must not decide which one the rules see.
    return min(patients, key=lambda p: p.ref) if patients else None
