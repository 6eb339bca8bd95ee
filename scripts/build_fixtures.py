"""Write the clinical scenario fixtures (fixtures/<family>/<id>.json, .bundle.json, README.md).

Each scenario is one small function below, written from the clinical contract
(its clinical contract) as an independent reviewer would: the ``expected`` list is every card the
service must return for that chart at the scenario's anchor time, and nothing else.

Every date is computed from the scenario's anchor so that the fixtures can be shifted to any
calendar day (``cds_service.sandbox.scenarios.shifted_request``). Thresholds used in the
reasoning are the defaults of ``cds_service.config`` (refill warn 7 d / notice 14 d / stability
180 d / reserve 2 mL; battery warn 6 months / notice 12 months; trial look-back 30 d, MAS drop 1.0).
Every computed date keeps at least a few days away from a threshold so that a one-day shift
across a leap day cannot change the expected card.

Run: ``.venv/bin/python scripts/build_fixtures.py`` (rewrites fixtures/ deterministically).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cds_service.services import SERVICES, SERVICES_BY_ID

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
FAMILIES = ("candidacy", "trial", "refill", "battery", "data-quality", "mixed", "scheduling")

LOCAL = "urn:itb-cds:codes"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MED_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
TIMING_ABBR = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
BASE = "http://example.org/fhir"
UUID_NS = uuid.UUID("5d3c2a4e-7f1b-4c39-9a51-2f0e8b6d1c77")

PATIENT_VIEW_KEYS = SERVICES_BY_ID["itb-patient-view"].prefetch_keys
ORDER_KEYS = SERVICES_BY_ID["itb-order-sign"].prefetch_keys
SERVICE_HOOK = {s.id: s.hook for s in SERVICES}

Json = dict[str, Any]


# --------------------------------------------------------------------------- dates


def at(anchor: datetime, days: float = 0, hours: float = 0) -> str:
    """An instant relative to the anchor, as FHIR dateTime with Z."""
    moment = anchor + timedelta(days=days, hours=hours)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def day(anchor: datetime, days: int = 0) -> str:
    return (anchor.date() + timedelta(days=days)).isoformat()


def years_before(anchor: datetime, years: int, plus_days: int = 0) -> datetime:
    """``anchor`` minus whole calendar years, then plus some days (anchors are never 29 Feb)."""
    return anchor.replace(year=anchor.year - years) + timedelta(days=plus_days)


def born(anchor: datetime, years: int, days_after_birthday: int = 60) -> str:
    """A birth date making the patient ``years`` old, the birthday well away from the anchor."""
    return (years_before(anchor, years).date() - timedelta(days=days_after_birthday)).isoformat()


# --------------------------------------------------------------------------- codings


def coding(system: str, code: str, display: str) -> Json:
    return {"system": system, "code": code, "display": display}


def concept(*codings: Json, text: str | None = None) -> Json:
    out: Json = {}
    if codings:
        out["coding"] = list(codings)
    if text:
        out["text"] = text
    return out


def ref(resource: Json) -> Json:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def qty(value: float, unit: str, code: str | None = None) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


ORAL_ROUTE = concept(coding(SNOMED, "26643006", "Oral route"), text="oral")
INTRATHECAL_ROUTE = concept(coding(SNOMED, "72607000", "Intrathecal route"), text="intrathecal")

CONDITIONS: dict[str, Json] = {
    "cp": concept(
        coding(SNOMED, "128188000", "Cerebral palsy"),
        coding(ICD10, "G80.1", "Spastic diplegic cerebral palsy"),
        text="Spastic diplegic cerebral palsy",
    ),
    "ms": concept(
        coding(SNOMED, "24700007", "Multiple sclerosis"),
        coding(ICD10, "G35", "Multiple sclerosis"),
        text="Multiple sclerosis with lower-limb spasticity",
    ),
    "ms-2025": concept(
        coding(ICD10, "G35.A", "Relapsing-remitting multiple sclerosis"),
        text="Relapsing-remitting multiple sclerosis",
    ),
    "sci": concept(
        coding(SNOMED, "90584004", "Spinal cord injury"),
        coding(ICD10, "G82.21", "Paraplegia, complete"),
        text="Traumatic spinal cord injury T10, complete paraplegia",
    ),
    "tbi": concept(
        coding(SNOMED, "127295002", "Traumatic brain injury"),
        coding(ICD10, "S06.2X0S", "Diffuse traumatic brain injury, sequela"),
        text="Severe traumatic brain injury with spasticity",
    ),
    "spasticity": concept(coding(SNOMED, "221360009", "Spasticity"), text="Spasticity"),
    "dystonia": concept(
        coding(SNOMED, "15802004", "Dystonia"),
        coding(ICD10, "G24.1", "Genetic torsion dystonia"),
        text="Generalised dystonia",
    ),
    "text-only": concept(text="Spastic diplegia since birth"),
    "anxiety": concept(
        coding(SNOMED, "197480006", "Anxiety disorder"),
        coding(ICD10, "F41.1", "Generalized anxiety disorder"),
        text="Generalised anxiety disorder",
    ),
    "hypertension": concept(
        coding(SNOMED, "38341003", "Hypertensive disorder"),
        coding(ICD10, "I10", "Essential (primary) hypertension"),
    ),
}

ORAL_DRUGS: dict[str, Json] = {
    "baclofen10": concept(
        coding(RXNORM, "197391", "baclofen 10 MG Oral Tablet"), text="Baclofen 10 mg tablet"
    ),
    "baclofen20": concept(
        coding(RXNORM, "197392", "baclofen 20 MG Oral Tablet"), text="Baclofen 20 mg tablet"
    ),
    "baclofen5": concept(
        coding(RXNORM, "1292", "baclofen"), text="Baclofen 5 mg/5 mL oral solution"
    ),
    "tizanidine": concept(
        coding(RXNORM, "57258", "tizanidine"), text="Tizanidine 4 mg tablet"
    ),
    "dantrolene": concept(
        coding(RXNORM, "3227", "dantrolene"), text="Dantrolene 100 mg capsule"
    ),
    "diazepam": concept(coding(RXNORM, "3322", "diazepam"), text="Diazepam 10 mg tablet"),
}

ITB_DRUGS: dict[int, Json] = {
    1000: concept(
        coding(RXNORM, "1300890", "20 ML baclofen 1 MG/ML Injection"),
        text="Baclofen intrathecal 1 mg/mL",
    ),
    2000: concept(
        coding(RXNORM, "1666613", "20 ML baclofen 2 MG/ML Injection"),
        text="Baclofen intrathecal 2 mg/mL",
    ),
    50: concept(
        coding(RXNORM, "1047437", "baclofen 0.05 MG/ML Injectable Solution"),
        text="Baclofen intrathecal screening 50 mcg/mL",
    ),
}

PUMP_MODELS: dict[str, Json] = {
    "synchromed-20": {"name": "SynchroMed II", "model": "8637-20", "maker": "Medtronic"},
    "synchromed-40": {"name": "SynchroMed II", "model": "8637-40", "maker": "Medtronic"},
    "prometra": {"name": "Prometra II", "model": "13827", "maker": "Flowonix Medical"},
    "codman": {"name": "Codman 3000", "model": "3000-30", "maker": "Codman"},
    "unknown": {"name": "Intrathecal infusion pump", "model": None, "maker": None},
}

IMPLANT_PROGRAMMABLE = coding(
    CPT, "62362", "Implantation or replacement of programmable intrathecal drug infusion pump"
)
IMPLANT_NONPROGRAMMABLE = coding(
    CPT, "62361", "Implantation or replacement of non-programmable intrathecal drug infusion pump"
)
IMPLANT_LOCAL = coding(LOCAL, "itb-pump-implant", "Intrathecal baclofen pump implantation")
REFILL_CPT = coding(
    CPT, "95990", "Refilling and maintenance of implantable pump or reservoir, spinal"
)
REFILL_LOCAL = coding(LOCAL, "itb-pump-refill", "Intrathecal baclofen pump refill")
REMOVAL = [
    coding(CPT, "62365", "Removal of subcutaneous reservoir or pump"),
    coding(LOCAL, "itb-pump-removal", "Intrathecal baclofen pump removal"),
]
TRIAL_CODE = concept(
    coding(LOCAL, "itb-screening-trial", "Intrathecal baclofen screening trial"),
    coding(CPT, "62323", "Injection, single, intrathecal, lumbar"),
    text="Intrathecal baclofen screening trial (test dose)",
)

RESPONSE = {
    "positive": coding(SNOMED, "10828004", "Positive"),
    "negative": coding(SNOMED, "260385009", "Negative"),
    "equivocal": coding(SNOMED, "42425007", "Equivocal"),
}


FAMILY_NAMES = ("Okafor", "Lindqvist", "Moreau", "Haddad", "Novak", "Tanaka", "Byrne", "Silva",
                "Kowalski", "Osei", "Fischer", "Nguyen", "Patel")
GIVEN_NAMES = {
    "female": ("Amara", "Ingrid", "Claire", "Leila", "Petra", "Yuki", "Siobhan", "Ana"),
    "male": ("Daniel", "Jonas", "Theo", "Omar", "Marek", "Kenji", "Liam", "Rui"),
}

# --------------------------------------------------------------------------- the chart


@dataclass
class Chart:
    """One patient's chart while a scenario is being written."""

    sid: str
    anchor: datetime
    birth_date: str | None
    gender: str = "female"
    entries: dict[str, list[Json]] = field(default_factory=dict)
    # Resources of other types an EHR slipped into a key's searchset (search.mode "include").
    included: dict[str, list[Json]] = field(default_factory=dict)
    drafts: list[Json] = field(default_factory=list)
    # The appointments an appointment-book call is booking (context.appointments).
    proposals: list[Json] = field(default_factory=list)
    malformed: list[Json] = field(default_factory=list)
    counter: int = 0

    @property
    def pid(self) -> str:
        return f"pt-{self.sid}"[:64]

    @property
    def subject(self) -> Json:
        return {"reference": f"Patient/{self.pid}"}

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    def add(self, key: str, resource: Json) -> Json:
        self.entries.setdefault(key, []).append(resource)
        return resource

    def include(self, key: str, resource: Json) -> Json:
        self.included.setdefault(key, []).append(resource)
        return resource

    def add_malformed(self, key: str, resource: Json) -> Json:
        self.malformed.append({"key": key, "index": len(self.entries.get(key, []))})
        return self.add(key, resource)

    def patient(self) -> Json:
        seed = self.counter_seed()
        out: Json = {
            "resourceType": "Patient",
            "id": self.pid,
            "identifier": [{"system": "urn:example:mrn", "value": f"MRN-{seed}"}],
            "name": [{"use": "official", "family": FAMILY_NAMES[seed % len(FAMILY_NAMES)],
                      "given": [GIVEN_NAMES[self.gender][seed // 7 % 8]]}],
            "gender": self.gender,
        }
        if self.birth_date:
            out["birthDate"] = self.birth_date
        return out

    def counter_seed(self) -> int:
        return uuid.uuid5(UUID_NS, self.sid).int % 10_000_000

    # -- clinical resources ----------------------------------------------------------------

    def condition(
        self,
        kind: str,
        onset_days: int = -3000,
        clinical: str = "active",
        verification: str = "confirmed",
        code: Json | None = None,
    ) -> Json:
        res: Json = {
            "resourceType": "Condition",
            "id": self.new_id("cond"),
            "clinicalStatus": concept(coding(COND_CLINICAL, clinical, clinical.title())),
            "verificationStatus": concept(
                coding(COND_VERIFICATION, verification, verification.title())
            ),
            "category": [
                concept(
                    coding(
                        "http://terminology.hl7.org/CodeSystem/condition-category",
                        "problem-list-item",
                        "Problem List Item",
                    )
                )
            ],
            "code": code or CONDITIONS[kind],
            "subject": self.subject,
            "onsetDateTime": at(self.anchor, onset_days),
            "recordedDate": at(self.anchor, onset_days + 2),
        }
        if clinical in ("resolved", "inactive", "remission"):
            res["abatementDateTime"] = at(self.anchor, -90)
        return self.add("conditions", res)

    def oral(
        self,
        drug: str,
        mg: float,
        per_day: int | None,
        status: str = "active",
        reason_text: str | None = None,
        reason_code: Json | None = None,
        start_days: int = -400,
        reason_condition: Json | None = None,
        timing_code: str | None = None,
        text: str | None = None,
        draft: bool = False,
        sandbox_quirks: bool = False,
    ) -> Json:
        """An oral antispasticity MedicationRequest; ``per_day`` None means 'as directed'."""
        dosage: Json = {"route": ORAL_ROUTE}
        if per_day is not None:
            dosage["text"] = text or f"{mg:g} mg by mouth {per_day} times a day"
            if timing_code:
                code = concept(coding(TIMING_ABBR, timing_code, timing_code))
                dosage["timing"] = {"code": code}
            else:
                repeat = {"frequency": per_day, "period": 1, "periodUnit": "d"}
                dosage["timing"] = {"repeat": repeat}
            dosage["doseAndRate"] = [{"doseQuantity": qty(mg, "mg")}]
        else:
            dosage["text"] = text or "Take as directed"
        res: Json = {
            "resourceType": "MedicationRequest",
            "id": self.new_id("draft" if draft else "mr"),
            "status": "draft" if draft else status,
            "intent": "order",
            "category": [
                concept(coding(MED_CATEGORY, "outpatient", "Outpatient"))
            ],
            "medicationCodeableConcept": ORAL_DRUGS[drug],
            "subject": self.subject,
            "authoredOn": at(self.anchor, 0 if draft else start_days),
            "dosageInstruction": [dosage],
        }
        if reason_text or reason_code:
            res["statusReason"] = (
                concept(reason_code, text=reason_text) if reason_code else concept(text=reason_text)
            )
        if reason_condition is not None:
            res["reasonReference"] = [ref(reason_condition)]
        if draft:
            if sandbox_quirks:
                # What the CDS Hooks Sandbox sends: no intent, category as one object.
                del res["intent"]
                res["category"] = res["category"][0]
            self.drafts.append(res)
            return res
        return self.add("medicationRequests", res)

    def allergy(
        self, drug: str, kind: str, criticality: str, reaction: str, code: Json | None = None
    ) -> Json:
        res: Json = {
            "resourceType": "AllergyIntolerance",
            "id": self.new_id("alg"),
            "clinicalStatus": concept(coding(ALLERGY_CLINICAL, "active", "Active")),
            "verificationStatus": concept(coding(ALLERGY_VERIFICATION, "confirmed", "Confirmed")),
            "type": kind,
            "category": ["medication"],
            "criticality": criticality,
            "code": code or ORAL_DRUGS[drug],
            "patient": self.subject,
            "recordedDate": at(self.anchor, -200),
            "reaction": [{"manifestation": [concept(text=reaction)]}],
        }
        return self.add("allergies", res)

    def adverse_event(self, event: Json, days: float, suspect: Json | None = None) -> Json:
        res: Json = {
            "resourceType": "AdverseEvent",
            "id": self.new_id("ae"),
            "actuality": "actual",
            "event": event,
            "subject": self.subject,
            "date": at(self.anchor, days),
            "seriousness": concept(
                coding(
                    "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                    "non-serious",
                    "Non-serious",
                )
            ),
        }
        if suspect is not None:
            res["suspectEntity"] = [{"instance": ref(suspect)}]
        return self.add("adverseEvents", res)

    def procedure(
        self,
        code: Json,
        days: float,
        status: str = "completed",
        device: Json | None = None,
        note: str | None = None,
    ) -> Json:
        res: Json = {
            "resourceType": "Procedure",
            "id": self.new_id("proc"),
            "status": status,
            "code": code,
            "subject": self.subject,
            "performedDateTime": at(self.anchor, days),
        }
        if device is not None:
            res["focalDevice"] = [{"manipulated": ref(device)}]
        if note:
            res["note"] = [{"text": note}]
        return self.add("procedures", res)

    def observation(
        self,
        code: str,
        display: str,
        days: float,
        value: Json,
        category: str = "procedure",
        part_of: Json | None = None,
        body_site: str | None = None,
        device: Json | None = None,
    ) -> Json:
        res: Json = {
            "resourceType": "Observation",
            "id": self.new_id("obs"),
            "status": "final",
            "category": [concept(coding(OBS_CATEGORY, category, category.title()))],
            "code": concept(coding(LOCAL, code, display)),
            "subject": self.subject,
            "effectiveDateTime": at(self.anchor, days),
            **value,
        }
        if part_of is not None:
            res["partOf"] = [ref(part_of)]
        if body_site:
            res["bodySite"] = concept(text=body_site)
        if device is not None:
            res["device"] = ref(device)
        return self.add("observations", res)

    def service_request(
        self, code: Json, status: str = "active", occurrence_days: int | None = None
    ) -> Json:
        res: Json = {
            "resourceType": "ServiceRequest",
            "id": self.new_id("sr"),
            "status": status,
            "intent": "order",
            "code": code,
            "subject": self.subject,
            "authoredOn": at(self.anchor, -3),
        }
        if occurrence_days is not None:
            res["occurrenceDateTime"] = at(self.anchor, occurrence_days)
        return self.add("serviceRequests", res)

    def appointment(
        self, code: Json, start_days: float, status: str = "booked", description: str = ""
    ) -> Json:
        start = self.anchor + timedelta(days=start_days)
        start = start.replace(hour=14, minute=0, second=0)
        res: Json = {
            "resourceType": "Appointment",
            "id": self.new_id("appt"),
            "status": status,
            "serviceType": [code],
            "description": description or code.get("text", "Appointment"),
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "participant": [
                {"actor": {"reference": f"Patient/{self.pid}"}, "status": "accepted"},
            ],
        }
        if status == "cancelled":
            res["cancelationReason"] = concept(text="Patient cancelled")
        return self.add("appointments", res)

    def propose(self, code: Json, start_days: float, sandbox_quirks: bool = False) -> Json:
        """An appointment being booked (appointment-book's context.appointments), at 14:00."""
        start = (self.anchor + timedelta(days=start_days)).replace(hour=14, minute=0, second=0)
        res: Json = {
            "resourceType": "Appointment",
            "id": self.new_id("proposed"),
            "status": "proposed",
            "serviceType": [code],
            "description": code.get("text", "Appointment"),
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "minutesDuration": 30,
            "participant": [
                {"actor": {"reference": f"Patient/{self.pid}"}, "status": "needs-action"},
                {"actor": {"reference": "Practitioner/pract-itb-nurse"},
                 "status": "accepted"},
            ],
        }
        if sandbox_quirks:
            # What a scheduling client may leave out of a proposal not yet saved.
            del res["status"], res["participant"]
        self.proposals.append(res)
        return res

    # -- pump building blocks -------------------------------------------------------------

    def statement(
        self, drug: str, mg: float, per_day: int, status: str, reason: str | None
    ) -> Json:
        res: Json = {
            "resourceType": "MedicationStatement",
            "id": self.new_id("ms"),
            "status": status,
            "medicationCodeableConcept": ORAL_DRUGS[drug],
            "subject": self.subject,
            "effectivePeriod": {"start": at(self.anchor, -500), "end": at(self.anchor, -120)},
            "dateAsserted": at(self.anchor, -120),
            "dosage": [
                {
                    "text": f"{mg:g} mg by mouth {per_day} times a day",
                    "route": ORAL_ROUTE,
                    "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": qty(mg, "mg")}],
                }
            ],
        }
        if reason:
            res["statusReason"] = [concept(text=reason)]
        return self.add("medicationStatements", res)

    def trial(
        self,
        hours_ago: float,
        mcg: int | None = 50,
        with_procedure: bool = True,
        with_administration: bool = True,
        note: str | None = None,
    ) -> Json:
        """A screening bolus; returns the resource a response should point at."""
        days = -hours_ago / 24
        proc: Json | None = None
        if with_procedure:
            proc = self.procedure(TRIAL_CODE, days, note=note)
        if not with_administration:
            assert proc is not None
            return proc
        admin: Json = {
            "resourceType": "MedicationAdministration",
            "id": self.new_id("ma"),
            "status": "completed",
            "medicationCodeableConcept": ITB_DRUGS[50],
            "subject": self.subject,
            "effectiveDateTime": at(self.anchor, days),
            "dosage": {"route": INTRATHECAL_ROUTE, "text": f"{mcg} mcg intrathecal bolus"},
        }
        if mcg is not None:
            admin["dosage"]["dose"] = qty(mcg, "mcg", "ug")
        if proc is not None:
            admin["partOf"] = [ref(proc)]
        self.add("medicationAdministrations", admin)
        return proc or admin

    def trial_response(self, trial: Json, result: str, hours_after: float = 4) -> Json:
        when = self.performed_days(trial) + hours_after / 24
        return self.observation(
            "itb-trial-response", "Intrathecal baclofen trial response", when,
            {"valueCodeableConcept": concept(RESPONSE[result], text=result.title())},
            category="exam", part_of=trial,
        )

    def performed_days(self, resource: Json) -> float:
        stamp = resource.get("performedDateTime") or resource["effectiveDateTime"]
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return (moment - self.anchor) / timedelta(days=1)

    def ashworth(self, trial: Json, hours: float, site: str, score: str) -> Json:
        """A Modified Ashworth score, ``hours`` relative to the trial (negative = before)."""
        value: Json = {"valueString": score} if "+" in score else {"valueInteger": int(score)}
        return self.observation(
            "modified-ashworth-scale", "Modified Ashworth Scale",
            self.performed_days(trial) + hours / 24, value, category="exam", body_site=site,
        )

    def penn(self, trial: Json, hours: float, score: int) -> Json:
        return self.observation(
            "penn-spasm-frequency", "Penn Spasm Frequency Scale",
            self.performed_days(trial) + hours / 24, {"valueInteger": score}, category="survey",
        )

    def pump(
        self,
        model: str = "synchromed-20",
        implant: datetime | None = None,
        implant_code: list[Json] | None = None,
        status: str = "active",
        with_implant: bool = True,
    ) -> Json:
        info = PUMP_MODELS[model]
        dev: Json = {
            "resourceType": "Device",
            "id": self.new_id("dev"),
            "status": status,
            "type": concept(
                coding(LOCAL, "itb-pump", "Intrathecal baclofen pump"), text="Intrathecal pump"
            ),
            "deviceName": [{"name": info["name"], "type": "model-name"}],
            "patient": self.subject,
        }
        if info["model"]:
            dev["modelNumber"] = info["model"]
        if info["maker"]:
            dev["manufacturer"] = info["maker"]
        self.add("devices", dev)
        if with_implant:
            when = implant or years_before(self.anchor, 2, 40)
            codes = implant_code or [IMPLANT_PROGRAMMABLE, IMPLANT_LOCAL]
            self.procedure(
                concept(*codes, text="Intrathecal baclofen pump implantation"),
                (when - self.anchor) / timedelta(days=1),
                device=dev,
            )
        return dev

    def refill(
        self,
        days: int,
        device: Json | None = None,
        volume: float | None = 20,
        concentration: float | None = 1000,
        reserve: float | None = 2,
        status: str = "completed",
        codes: list[Json] | None = None,
    ) -> Json:
        proc = self.procedure(
            concept(*(codes or [REFILL_CPT, REFILL_LOCAL]),
                    text="Intrathecal baclofen pump refill"),
            days,
            status=status,
            device=device,
        )
        if status == "completed":
            self.fill_readings(days, proc, device, volume, concentration, reserve)
        return proc

    def fill_readings(
        self,
        days: float,
        proc: Json,
        device: Json | None,
        volume: float | None = 20,
        concentration: float | None = 1000,
        reserve: float | None = 2,
    ) -> None:
        """What the pump programmer printed at a fill: V, C and the alarm volume R."""
        if volume is not None:
            self.observation(
                "pump-reservoir-volume", "Pump reservoir volume", days,
                {"valueQuantity": qty(volume, "mL")}, part_of=proc, device=device,
            )
        if concentration is not None:
            self.observation(
                "pump-drug-concentration", "Pump drug concentration", days,
                {"valueQuantity": qty(concentration, "mcg/mL", "ug/mL")},
                part_of=proc, device=device,
            )
        if reserve is not None:
            self.observation(
                "pump-reserve-volume", "Pump low-reservoir alarm volume", days,
                {"valueQuantity": qty(reserve, "mL")}, part_of=proc, device=device,
            )

    def implant_procedure(self, device: Json) -> Json:
        return next(
            p for p in self.entries["procedures"]
            if p.get("focalDevice", [{}])[0].get("manipulated") == ref(device)
        )

    def itb_order(
        self,
        mcg_per_day: float,
        concentration: int = 1000,
        status: str = "active",
        as_rate: bool = False,
        unit: str = "mcg",
        start_days: int = -300,
    ) -> Json:
        """The pump prescription (D); ``unit`` 'mg' writes the same dose in milligrams."""
        amount = mcg_per_day / 1000 if unit == "mg" else mcg_per_day
        code = "mg" if unit == "mg" else "ug"
        if as_rate:
            dose_rate: Json = {"rateQuantity": qty(amount, f"{unit}/d", f"{code}/d")}
            timing: Json = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
        else:
            dose_rate = {"doseQuantity": qty(amount, unit, code)}
            timing = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
        res: Json = {
            "resourceType": "MedicationRequest",
            "id": self.new_id("mr-itb"),
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": ITB_DRUGS[concentration],
            "subject": self.subject,
            "authoredOn": at(self.anchor, start_days),
            "dosageInstruction": [
                {
                    "text": f"{amount:g} {unit}/day continuous intrathecal infusion via pump",
                    "route": INTRATHECAL_ROUTE,
                    "timing": timing,
                    "doseAndRate": [dose_rate],
                }
            ],
        }
        return self.add("medicationRequests", res)

    def standard_pump(
        self,
        last_refill_days: int,
        implant: datetime | None = None,
        model: str = "synchromed-20",
        backup_oral: bool = True,
    ) -> Json:
        """A SynchroMed II 20 mL at 1000 mcg/mL, 200 mcg/day, reserve 2 mL:
        alarm = last refill + 90 d, empty = last refill + 100 d."""
        dev = self.pump(model=model, implant=implant)
        self.refill(last_refill_days, device=dev)
        self.itb_order(200)
        if backup_oral:
            self.oral("baclofen10", 10, 3,
                      text="Backup: 10 mg by mouth three times a day if pump fails")
        return dev


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    id: str
    family: str
    title: str
    story: str
    anchor: datetime
    expected: list[Json]
    chart: Chart
    service: str = "itb-patient-view"


SCENARIOS: list[Callable[[], Scenario]] = []


def scenario(fn: Callable[[], Scenario]) -> Callable[[], Scenario]:
    SCENARIOS.append(fn)
    return fn


def card(rule: str, outcome: str, indicator: str, blocks: str | None = None) -> Json:
    out: Json = {"rule": rule, "outcome": outcome, "indicator": indicator}
    if blocks:
        out["blocks"] = blocks
    return out


CANDIDATE = card("itb-candidacy", "candidate", "info")
# An order that takes the agent above its maximum daily dose makes the card a warning (rule
# book: itb-candidacy, decision order-above-maximum).
CANDIDATE_ABOVE_MAXIMUM = card("itb-candidacy", "candidate", "warning")
DQ_REFILL = card("itb-data-quality", "missing-data", "info", blocks="itb-refill")
DQ_BATTERY = card("itb-data-quality", "missing-data", "info", blocks="itb-battery")
DQ_CANDIDACY = card("itb-data-quality", "missing-data", "info", blocks="itb-candidacy")

A_JUN = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
A_MAR = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
A_JAN = datetime(2026, 1, 20, 15, 30, tzinfo=UTC)
A_OCT = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
A_DEC = datetime(2026, 12, 30, 11, 0, tzinfo=UTC)


def chart(sid: str, anchor: datetime, age: int | None = 45, gender: str = "female") -> Chart:
    return Chart(sid=sid, anchor=anchor, birth_date=born(anchor, age) if age else None,
                 gender=gender)




# --------------------------------------------------------------------------- padding

VITALS = (
    ("8867-4", "Heart rate", "/min", "/min", 60, 100),
    ("9279-1", "Respiratory rate", "/min", "/min", 12, 20),
    ("8310-5", "Body temperature", "Cel", "Cel", 36.2, 37.6),
    ("2708-6", "Oxygen saturation in Arterial blood", "%", "%", 94, 100),
    ("29463-7", "Body weight", "kg", "kg", 58, 64),
)
UNRELATED_CONDITIONS = (
    ("38341003", "Hypertensive disorder", "I10", "Essential (primary) hypertension"),
    ("44054006", "Diabetes mellitus type 2", "E11.9", "Type 2 diabetes mellitus"),
    ("235595009", "Gastroesophageal reflux disease", "K21.9", "Gastro-esophageal reflux"),
    ("195967001", "Asthma", "J45.909", "Unspecified asthma, uncomplicated"),
    ("55822004", "Hyperlipidemia", "E78.5", "Hyperlipidemia, unspecified"),
    ("14760008", "Constipation", "K59.00", "Constipation, unspecified"),
    ("34713006", "Vitamin D deficiency", "E55.9", "Vitamin D deficiency, unspecified"),
    ("35489007", "Depressive disorder", "F32.9", "Major depressive disorder, single episode"),
)
UNRELATED_DRUGS = (
    ("29046", "lisinopril", "10 mg", 1),
    ("6809", "metformin", "500 mg", 2),
    ("7646", "omeprazole", "20 mg", 1),
    ("83367", "atorvastatin", "20 mg", 1),
    ("161", "acetaminophen", "500 mg", 4),
    ("32675", "oxybutynin", "5 mg", 2),
    ("2418", "cholecalciferol", "1000 [iU]", 1),
    ("36437", "sertraline", "50 mg", 1),
)
VACCINES = (
    ("140", "Influenza, seasonal, injectable, preservative free"),
    ("115", "Tdap"),
    ("208", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, 30 mcg/0.3mL dose"),
    ("33", "pneumococcal polysaccharide vaccine, 23 valent"),
)


def pad(c: Chart, visits: int = 40) -> None:
    """Years of unrelated chart: each visit brings vitals, and an Encounter the EHR includes.

    Vital signs go under "observations" because an EHR that ignores the code filter sends them
    there; Encounters and Immunizations ride along as search.mode "include" entries.
    """
    for n in range(visits):
        days = -7 - n * 23
        enc: Json = {
            "resourceType": "Encounter",
            "id": c.new_id("enc"),
            "status": "finished",
            "class": coding(ACT_CODE, "AMB", "ambulatory"),
            "type": [concept(text="Outpatient visit")],
            "subject": c.subject,
            "period": {"start": at(c.anchor, days), "end": at(c.anchor, days, hours=0.5)},
        }
        c.include("observations", enc)
        for i, (code, name, unit, ucum, low, high) in enumerate(VITALS):
            value = round(low + ((n * 7 + i * 3) % 10) * (high - low) / 10, 1)
            c.add("observations", {
                "resourceType": "Observation",
                "id": c.new_id("vs"),
                "status": "final",
                "category": [concept(coding(OBS_CATEGORY, "vital-signs", "Vital Signs"))],
                "code": concept(coding(LOINC, code, name), text=name),
                "subject": c.subject,
                "encounter": ref(enc),
                "effectiveDateTime": at(c.anchor, days, hours=0.1),
                "valueQuantity": qty(value, unit, ucum),
            })
        bp_sys, bp_dia = 118 + n % 15, 72 + n % 9
        c.add("observations", {
            "resourceType": "Observation",
            "id": c.new_id("vs"),
            "status": "final",
            "category": [concept(coding(OBS_CATEGORY, "vital-signs", "Vital Signs"))],
            "code": concept(coding(LOINC, "85354-9", "Blood pressure panel"), text="BP"),
            "subject": c.subject,
            "encounter": ref(enc),
            "effectiveDateTime": at(c.anchor, days, hours=0.1),
            "component": [
                {"code": concept(coding(LOINC, "8480-6", "Systolic blood pressure")),
                 "valueQuantity": qty(bp_sys, "mmHg", "mm[Hg]")},
                {"code": concept(coding(LOINC, "8462-4", "Diastolic blood pressure")),
                 "valueQuantity": qty(bp_dia, "mmHg", "mm[Hg]")},
            ],
        })
    for n in range(20):
        cvx, name = VACCINES[n % len(VACCINES)]
        c.include("medicationAdministrations", {
            "resourceType": "Immunization",
            "id": c.new_id("imm"),
            "status": "completed",
            "vaccineCode": concept(coding(CVX, cvx, name)),
            "patient": c.subject,
            "occurrenceDateTime": at(c.anchor, -30 - n * 90),
            "primarySource": True,
        })
    for n in range(32):
        snomed, display, icd, icd_display = UNRELATED_CONDITIONS[n % len(UNRELATED_CONDITIONS)]
        status = ("active", "resolved", "inactive", "active")[n % 4]
        c.condition("hypertension", onset_days=-60 - n * 45, clinical=status,
                    code=concept(coding(SNOMED, snomed, display), coding(ICD10, icd, icd_display)))
    for n in range(40):
        rx, name, strength, per_day = UNRELATED_DRUGS[n % len(UNRELATED_DRUGS)]
        amount, unit = strength.split(" ")
        c.add("medicationRequests", {
            "resourceType": "MedicationRequest",
            "id": c.new_id("mr-other"),
            "status": ("active", "completed", "stopped", "active", "completed")[n % 5],
            "intent": "order",
            "medicationCodeableConcept": concept(coding(RXNORM, rx, name),
                                                 text=f"{name} {strength}"),
            "subject": c.subject,
            "authoredOn": at(c.anchor, -20 - n * 37),
            "dosageInstruction": [{
                "text": f"{strength} by mouth {per_day} times a day",
                "route": ORAL_ROUTE,
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": qty(float(amount), unit)}],
            }],
        })


# --------------------------------------------------------------------------- serialisation


def searchset(c: Chart, key: str) -> Json | None:
    matches = c.entries.get(key, [])
    includes = c.included.get(key, [])
    if not matches and not includes:
        # Both spellings of "found nothing" occur in the wild; pick one per scenario and key.
        if uuid.uuid5(UUID_NS, f"{c.sid}/{key}").int % 2:
            return None
        return {"resourceType": "Bundle", "type": "searchset", "total": 0}
    entries = [
        {"fullUrl": full_url(r), "resource": r, "search": {"mode": "match"}} for r in matches
    ] + [{"fullUrl": full_url(r), "resource": r, "search": {"mode": "include"}} for r in includes]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(matches),
            "entry": entries}


def full_url(resource: Json) -> str:
    return f"{BASE}/{resource.get('resourceType', 'Unknown')}/{resource.get('id', 'unknown')}"


def build_request(s: Scenario) -> Json:
    c = s.chart
    hook = SERVICE_HOOK[s.service]
    context: Json = {
        "userId": "Practitioner/pract-itb-nurse",
        "patientId": c.pid,
        "encounterId": "enc-today",
    }
    keys = SERVICES_BY_ID[s.service].prefetch_keys
    if hook == "appointment-book":
        proposed: Json = {"resourceType": "Bundle", "type": "collection",
                          "entry": [{"resource": r} for r in c.proposals]}
        if any("status" not in r for r in c.proposals):
            del proposed["type"]
        context["appointments"] = proposed
    elif hook != "patient-view":
        bundle: Json = {"resourceType": "Bundle", "type": "collection",
                        "entry": [{"resource": r} for r in c.drafts]}
        if any("intent" not in r for r in c.drafts):
            del bundle["type"]  # the Sandbox's draftOrders Bundle has no type
        context["draftOrders"] = bundle
        if hook == "order-select":
            context["selections"] = [f"MedicationRequest/{r['id']}" for r in c.drafts]
    prefetch: Json = {}
    for key in keys:
        prefetch[key] = c.patient() if key == "patient" else searchset(c, key)
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid5(UUID_NS, s.id)),
        "context": context,
        "prefetch": prefetch,
    }


def build_bundle(s: Scenario, request: Json) -> Json:
    entries: list[Json] = []
    for key, value in request["prefetch"].items():
        if value is None:
            continue
        if key == "patient":
            entries.append({"fullUrl": full_url(value), "resource": value})
            continue
        entries.extend({"fullUrl": e["fullUrl"], "resource": e["resource"]}
                       for e in value.get("entry", []))
    return {
        "resourceType": "Bundle",
        "id": f"chart-{s.id}"[:64],
        "type": "collection",
        "timestamp": at(s.anchor),
        "entry": entries,
    }


def scenario_document(s: Scenario) -> Json:
    doc: Json = {
        "id": s.id,
        "title": s.title,
        "story": s.story,
        "family": s.family,
        "service": s.service,
        "anchor": at(s.anchor),
        "expected": s.expected,
        "request": build_request(s),
    }
    if s.chart.malformed:
        doc["malformed"] = s.chart.malformed
    return doc


def dump(obj: Json) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def describe(expected: list[Json]) -> str:
    if not expected:
        return "no card"
    parts = []
    for e in expected:
        text = f"{e['rule']} {e['outcome']} ({e['indicator']})"
        if e.get("blocks"):
            text += f" blocking {e['blocks']}"
        parts.append(text)
    return "; ".join(parts)


README_HEAD = """# Clinical scenario fixtures

Generated by `scripts/build_fixtures.py` — edit the generator, not these files, then run
`.venv/bin/python scripts/build_fixtures.py`.

Each scenario was written from the clinical contract (the rule book and the default
thresholds of `cds_service/config.py`) as an independent clinician-reviewer would, without
looking at the rule implementation.

## Format

`fixtures/<family>/<id>.json`:

- `id`, `title`, `story`, `family`: the scenario, as a pump nurse would tell it.
- `service`: `itb-patient-view`, `itb-order-select`, `itb-order-sign` or
  `itb-appointment-book`.
- `anchor`: the "now" at which `expected` holds (a fixed instant in 2026).
- `expected`: **every** card the service must return, and nothing else: `rule`, `outcome`,
  `indicator`; data-quality cards also name the rule they block (`blocks`).
- `request`: a complete CDS Hooks 2.0 request: `hook`, `hookInstance` (uuid5 of the id),
  `context` (plus `draftOrders`/`selections` for order hooks, `appointments` — the proposed
  Appointments being booked — for appointment-book), and `prefetch` keyed by the fixed
  prefetch key names: a searchset Bundle, `null` when the EHR found nothing, the Patient for
  `patient`. Each service gets the keys of its entry in `cds_service/services.py`.
- `malformed` (optional): `[{"key", "index"}]` prefetch entries that are deliberately invalid
  FHIR and must be skipped while the rest of the chart still produces the cards.

`fixtures/<family>/<id>.bundle.json` holds the same prefetch resources as one FHIR R4
`collection` Bundle (draft orders and proposed appointments stay in the request context only).

## Dates

Every date in a scenario is written relative to its `anchor`. To use a fixture on another day,
`cds_service.sandbox.scenarios.shifted_request(scenario, now)` shifts every date, dateTime and
instant in the request by the whole number of days between the anchor date and `now` (keeping
each string's format), and `shifted_anchor(scenario, now)` gives the matching evaluation instant:
run the service at that instant, not at the wall clock, because some trial scenarios depend on
the hour (a bolus given 3 h before the anchor). Partial dates (`YYYY`, `YYYY-MM`) are shifted
from the middle of their period. Every threshold crossing in the scenarios is at least a few
days away, so a shift across a leap day never changes the expected cards.

The reasoning uses the default thresholds: refill warning 7 days, notice 14 days, stability
limit 180 days, reserve 2 mL; battery warning 6 months, notice 12 months, ERI + 90 days;
trial look-back 30 days, MAS drop 1.0, Penn drop 1, outcome undocumented after 8 h. Most pump
charts use a SynchroMed II 8637-20 filled with 20 mL of 1000 mcg/mL at 200 mcg/day with a
2 mL alarm volume: low-reservoir alarm 90 days and empty 100 days after the last refill.

## Scenarios
"""


def write_all() -> list[Scenario]:
    built = [fn() for fn in SCENARIOS]
    ids = [s.id for s in built]
    assert len(ids) == len(set(ids)), "duplicate scenario id"
    for family in FAMILIES:
        folder = FIXTURES / family
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.json"):
            old.unlink()
    lines = [README_HEAD]
    for family in FAMILIES:
        lines.append(f"\n### {family}\n")
        for s in (x for x in built if x.family == family):
            assert s.family in FAMILIES
            doc = scenario_document(s)
            (FIXTURES / family / f"{s.id}.json").write_text(dump(doc), encoding="utf-8")
            bundle = build_bundle(s, doc["request"])
            (FIXTURES / family / f"{s.id}.bundle.json").write_text(dump(bundle), encoding="utf-8")
            service = "" if s.service == "itb-patient-view" else f" [{s.service}]"
            lines.append(
                f"- **{s.id}**{service}: {s.story} → *{describe(s.expected)}*\n"
            )
    (FIXTURES / "README.md").write_text("".join(lines), encoding="utf-8")
    return built


# --------------------------------------------------------------------------- the scenarios
# (below: one function per scenario, grouped by family)


def make(
    c: Chart,
    family: str,
    title: str,
    story: str,
    expected: list[Json],
    service: str = "itb-patient-view",
) -> Scenario:
    return Scenario(id=c.sid, family=family, title=title, story=story, anchor=c.anchor,
                    expected=expected, chart=c, service=service)


DROWSY = coding(SNOMED, "271782001", "Drowsy")


# ----- candidacy


@scenario
def candidacy_cp_baclofen_drowsiness() -> Scenario:
    c = chart("candidacy-cp-baclofen-drowsiness", A_JUN, age=24, gender="male")
    c.condition("cp", onset_days=-8000)
    c.oral("baclofen20", 20, 3, status="stopped", reason_code=DROWSY,
           reason_text="Too drowsy to attend college")
    return make(c, "candidacy", "Cerebral palsy, oral baclofen stopped for drowsiness",
                "24-year-old with spastic diplegic CP. Oral baclofen 20 mg TID was stopped "
                "because it made him too drowsy for college. No pump, no referral yet.",
                [CANDIDATE])


@scenario
def candidacy_ms_baclofen_max_dose() -> Scenario:
    c = chart("candidacy-ms-baclofen-max-dose", A_MAR, age=52)
    c.condition("ms", onset_days=-4000)
    c.oral("baclofen20", 20, 4, timing_code="QID", start_days=-200,
           text="20 mg by mouth four times a day")
    return make(c, "candidacy", "MS, still spastic on oral baclofen 80 mg/day",
                "52-year-old with MS and leg spasticity, still on baclofen 20 mg QID "
                "(80 mg/day, the adult maximum; timing given as the QID code) with active "
                "spasticity.", [CANDIDATE])


@scenario
def candidacy_cp_tizanidine_ineffective() -> Scenario:
    c = chart("candidacy-cp-tizanidine-ineffective", A_OCT, age=31)
    c.condition("cp")
    c.oral("tizanidine", 8, 3, status="stopped", reason_text="Ineffective - no response")
    return make(c, "candidacy", "CP, tizanidine documented ineffective",
                "31-year-old with CP. Tizanidine 8 mg TID was stopped as ineffective (no "
                "response); cerebral origin, so no oral-baclofen requirement.", [CANDIDATE])


@scenario
def candidacy_spinal_without_baclofen_failure() -> Scenario:
    c = chart("candidacy-spinal-without-baclofen-failure", A_JUN, age=38, gender="male")
    c.condition("sci", onset_days=-2500)
    c.oral("tizanidine", 8, 3, status="stopped", reason_text="Weakness")
    c.oral("baclofen10", 10, 3, start_days=-90)
    return make(c, "candidacy", "Spinal cord injury, only tizanidine failed",
                "38-year-old with T10 paraplegia. Tizanidine stopped for weakness; currently on "
                "baclofen 10 mg TID, which has not failed. The card must still appear, noting "
                "the label reserves ITB for spinal spasticity unresponsive to oral baclofen.",
                [CANDIDATE])


@scenario
def candidacy_dystonia_off_label() -> Scenario:
    c = chart("candidacy-dystonia-off-label", A_JAN, age=16)
    c.condition("dystonia", onset_days=-3000)
    c.oral("baclofen10", 10, 3, status="stopped", reason_text="Nausea and vomiting")
    return make(c, "candidacy", "Generalised dystonia (off-label), baclofen intolerance",
                "16-year-old with generalised dystonia; oral baclofen stopped for nausea. The "
                "card appears and says ITB for dystonia is off-label.", [CANDIDATE])


@scenario
def candidacy_baclofen_allergy() -> Scenario:
    c = chart("candidacy-baclofen-allergy", A_JUN, age=44)
    c.condition("cp")
    c.oral("tizanidine", 12, 3, status="stopped", reason_text="Not effective")
    c.allergy("baclofen10", "allergy", "high", "Generalised urticaria and lip swelling",
              code=concept(coding(RXNORM, "1292", "baclofen"), text="Baclofen"))
    return make(c, "candidacy", "Failed tizanidine but documented baclofen allergy",
                "44-year-old with CP; tizanidine did not work. Chart has a high-criticality "
                "baclofen allergy (urticaria, lip swelling): ITB contraindicated, warning, no "
                "referral suggestion.",
                [card("itb-candidacy", "contraindicated", "warning")])


@scenario
def candidacy_tbi_under_12_months() -> Scenario:
    c = chart("candidacy-tbi-under-12-months", A_OCT, age=27, gender="male")
    c.condition("tbi", onset_days=-210)
    c.oral("baclofen10", 10, 3, status="stopped", reason_text="Confusion")
    return make(c, "candidacy", "Brain injury 7 months ago, baclofen caused confusion",
                "27-year-old, severe TBI seven months ago, oral baclofen stopped for confusion. "
                "Label advises waiting a year after the injury: deferred.",
                [card("itb-candidacy", "deferred", "info")])


@scenario
def candidacy_tbi_over_12_months() -> Scenario:
    c = chart("candidacy-tbi-over-12-months", A_OCT, age=29, gender="male")
    c.condition("tbi", onset_days=-600)
    c.oral("baclofen10", 10, 3, status="stopped", reason_text="Confusion")
    return make(c, "candidacy", "Brain injury 20 months ago, baclofen caused confusion",
                "29-year-old, severe TBI twenty months ago, oral baclofen stopped for "
                "confusion. Past the one-year wait: ordinary candidacy card.", [CANDIDATE])


@scenario
def candidacy_trap_age_under_4() -> Scenario:
    c = chart("candidacy-trap-age-under-4", A_JUN, age=3)
    c.condition("cp", onset_days=-1000)
    c.oral("baclofen5", 5, 3, status="stopped", reason_text="Excessive sleepiness",
           text="5 mg (5 mL of 5 mg/5 mL oral solution) three times a day")
    return make(c, "candidacy", "Three-year-old with CP, baclofen stopped: too young",
                "Three-year-old with spastic CP; baclofen oral solution stopped for sleepiness. "
                "ITB is labelled from age 4: no candidacy card.", [])


@scenario
def candidacy_child_10y_baclofen_60mg() -> Scenario:
    c = chart("candidacy-child-10y-baclofen-60mg", A_MAR, age=10, gender="male")
    c.condition("cp", onset_days=-3500)
    c.oral("baclofen20", 20, 3, start_days=-150)
    return make(c, "candidacy", "Ten-year-old on baclofen 60 mg/day (maximum for 8-11 y)",
                "10-year-old with CP still spastic on baclofen 20 mg TID = 60 mg/day, the "
                "maximum for ages 8-11.", [CANDIDATE])


@scenario
def candidacy_child_5y_baclofen_40mg() -> Scenario:
    c = chart("candidacy-child-5y-baclofen-40mg", A_DEC, age=5)
    c.condition("cp", onset_days=-1800)
    c.oral("baclofen10", 10, 4, start_days=-100)
    return make(c, "candidacy", "Five-year-old on baclofen 40 mg/day (maximum for 2-7 y)",
                "5-year-old with CP on baclofen 10 mg QID = 40 mg/day, the maximum for ages "
                "2-7, still spastic.", [CANDIDATE])


@scenario
def candidacy_trap_adult_60mg() -> Scenario:
    c = chart("candidacy-trap-adult-60mg", A_MAR, age=35, gender="male")
    c.condition("cp")
    c.oral("baclofen20", 20, 3, start_days=-150)
    return make(c, "candidacy", "Adult on baclofen 60 mg/day: not yet at the maximum",
                "35-year-old with CP on baclofen 20 mg TID (60 mg/day). The adult maximum is "
                "80 mg: room to titrate, no failure, no card.", [])


@scenario
def candidacy_trap_diazepam_for_anxiety() -> Scenario:
    c = chart("candidacy-trap-diazepam-for-anxiety", A_JUN, age=41)
    c.condition("cp")
    anxiety = c.condition("anxiety", onset_days=-900)
    c.oral("diazepam", 10, 4, reason_condition=anxiety, start_days=-60)
    c.oral("baclofen10", 10, 3, start_days=-300)
    return make(c, "candidacy", "Diazepam 40 mg/day prescribed for anxiety",
                "41-year-old with CP on baclofen 10 mg TID. Diazepam 10 mg QID (40 mg/day) is "
                "prescribed for generalised anxiety, not spasticity: it does not count as a "
                "failed antispasticity agent.", [])


@scenario
def candidacy_diazepam_for_spasticity_max() -> Scenario:
    c = chart("candidacy-diazepam-for-spasticity-max", A_JUN, age=47)
    cp = c.condition("cp")
    c.oral("diazepam", 10, 4, reason_condition=cp, start_days=-120)
    return make(c, "candidacy", "Diazepam at 40 mg/day for spasticity",
                "47-year-old with CP on diazepam 10 mg QID (40 mg/day, the maximum) with the "
                "CP condition as its reason; still spastic.", [CANDIDATE])


@scenario
def candidacy_trap_low_dose_baclofen() -> Scenario:
    c = chart("candidacy-trap-low-dose-baclofen", A_OCT, age=60)
    c.condition("spasticity", onset_days=-700)
    c.oral("baclofen10", 5, 3, start_days=-40, text="5 mg (half tablet) three times a day")
    return make(c, "candidacy", "Spasticity on baclofen 15 mg/day, no failure",
                "60-year-old with spasticity recently started on baclofen 5 mg TID. Nothing "
                "has failed: no card.", [])


@scenario
def candidacy_trap_entered_in_error_condition() -> Scenario:
    c = chart("candidacy-trap-entered-in-error-condition", A_JUN, age=50)
    c.condition("ms", verification="entered-in-error")
    c.oral("baclofen10", 10, 3, status="stopped", reason_text="Drowsiness")
    return make(c, "candidacy", "MS diagnosis entered in error",
                "The only spasticity-origin diagnosis (MS) was entered in error on the wrong "
                "chart; a baclofen course stopped for drowsiness remains. No qualifying "
                "condition: no card.", [])


@scenario
def candidacy_trap_condition_resolved() -> Scenario:
    c = chart("candidacy-trap-condition-resolved", A_JAN, age=66)
    c.condition("spasticity", clinical="resolved")
    c.oral("baclofen10", 10, 3, status="stopped", reason_text="Dizziness")
    return make(c, "candidacy", "Spasticity resolved after a baclofen intolerance",
                "66-year-old whose post-operative spasticity is recorded as resolved; baclofen "
                "had been stopped for dizziness. No active condition: no card.", [])


@scenario
def candidacy_trap_open_trial_referral() -> Scenario:
    c = chart("candidacy-trap-open-trial-referral", A_JUN, age=33)
    c.condition("cp")
    c.oral("baclofen20", 20, 3, status="stopped", reason_text="Somnolence")
    c.service_request(concept(coding(LOCAL, "itb-screening-trial",
                                     "Intrathecal baclofen screening trial"),
                              text="Referral for intrathecal baclofen screening trial"),
                      occurrence_days=12)
    return make(c, "candidacy", "Already referred for a screening trial",
                "33-year-old with CP, baclofen stopped for somnolence; a referral for the "
                "intrathecal baclofen screening trial is already active. No candidacy card.", [])


@scenario
def candidacy_statement_confusion() -> Scenario:
    c = chart("candidacy-statement-confusion", A_MAR, age=71)
    c.condition("spasticity")
    c.condition("hypertension")
    c.statement("baclofen10", 10, 3, "stopped", "Confusion")
    return make(c, "candidacy", "Baclofen failure known only from a MedicationStatement",
                "71-year-old with long-standing spasticity; the outside-record "
                "MedicationStatement says baclofen was stopped for confusion.", [CANDIDATE])


@scenario
def candidacy_baclofen_intolerance_record() -> Scenario:
    c = chart("candidacy-baclofen-intolerance-record", A_OCT, age=39)
    c.condition("cp")
    c.oral("baclofen10", 10, 3, status="completed", start_days=-700)
    c.allergy("baclofen10", "intolerance", "low", "Sedation",
              code=concept(coding(RXNORM, "1292", "baclofen"), text="Baclofen"))
    return make(c, "candidacy", "Baclofen intolerance (not allergy) recorded",
                "39-year-old with CP. An AllergyIntolerance of type intolerance, low "
                "criticality, records sedation on baclofen: a failed agent, not a "
                "contraindication.", [CANDIDATE])


@scenario
def candidacy_adverse_event_baclofen() -> Scenario:
    c = chart("candidacy-adverse-event-baclofen", A_DEC, age=58)
    c.condition("ms")
    mr = c.oral("baclofen20", 20, 3, status="stopped", start_days=-300)
    c.adverse_event(concept(coding(SNOMED, "286933003", "Confusional state"),
                            text="Acute confusion"), -200, suspect=mr)
    return make(c, "candidacy", "Adverse event names oral baclofen",
                "58-year-old with MS; baclofen was stopped without a coded reason but an "
                "AdverseEvent (acute confusion) names it as the suspect.", [CANDIDATE])


@scenario
def candidacy_trap_stopped_nonclinical_reason() -> Scenario:
    c = chart("candidacy-trap-stopped-nonclinical-reason", A_JUN, age=29)
    c.condition("cp")
    c.oral("baclofen10", 10, 3, status="stopped", reason_text="Changed pharmacy, re-prescribed")
    c.oral("baclofen10", 10, 3, start_days=-30)
    return make(c, "candidacy", "Baclofen stopped only to re-prescribe",
                "29-year-old with CP; an old baclofen order was stopped for an administrative "
                "reason and re-issued at the same low dose. No failure: no card.", [])


@scenario
def candidacy_trap_medication_entered_in_error() -> Scenario:
    c = chart("candidacy-trap-medication-entered-in-error", A_OCT, age=46)
    c.condition("cp")
    c.oral("baclofen20", 20, 4, status="entered-in-error", reason_text="Drowsiness")
    return make(c, "candidacy", "The only baclofen failure was entered in error",
                "46-year-old with CP; a baclofen 80 mg/day order with a drowsiness reason was "
                "entered in error. Nothing real has failed: no card.", [])


@scenario
def candidacy_ms_new_icd_code_tizanidine_on_hold() -> Scenario:
    c = chart("candidacy-ms-new-icd-code-tizanidine-on-hold", A_JUN, age=36)
    c.condition("ms-2025", onset_days=-1500)
    c.oral("tizanidine", 4, 3, status="on-hold", reason_text="Sedation")
    return make(c, "candidacy", "MS coded G35.A (2025 split), tizanidine on hold for sedation",
                "36-year-old whose MS is coded with the new ICD-10-CM G35.A; tizanidine on hold "
                "for sedation. MS is spinal-type spasticity without a baclofen failure: card "
                "with the label note.", [CANDIDATE])


@scenario
def candidacy_text_only_condition_dantrolene_max() -> Scenario:
    c = chart("candidacy-text-only-condition-dantrolene-max", A_MAR, age=22)
    c.condition("text-only", onset_days=-7000)
    c.oral("dantrolene", 100, 4, start_days=-180)
    return make(c, "candidacy", "Uncoded 'spastic diplegia', dantrolene 400 mg/day",
                "22-year-old whose problem list says only 'Spastic diplegia since birth' "
                "(no code). On dantrolene 100 mg QID = 400 mg/day, the maximum.", [CANDIDATE])


@scenario
def candidacy_order_select_draft_reaches_max() -> Scenario:
    c = chart("candidacy-order-select-draft-reaches-max", A_JUN, age=49)
    c.condition("ms")
    c.oral("baclofen20", 15, 4, start_days=-90, text="15 mg by mouth four times a day")
    c.oral("baclofen20", 20, 4, draft=True)
    return make(c, "candidacy", "Order-select: draft raises baclofen to 80 mg/day",
                "49-year-old with MS on baclofen 15 mg QID (60 mg/day). The neurologist selects "
                "a new order for 20 mg QID = 80 mg/day, the adult maximum, while spasticity is "
                "still active: the draft makes her a candidate. With the active order still "
                "running the total would be 140 mg/day, above the maximum: a warning.",
                [CANDIDATE_ABOVE_MAXIMUM],
                service="itb-order-select")


@scenario
def candidacy_order_sign_above_max_sandbox() -> Scenario:
    c = chart("candidacy-order-sign-above-max-sandbox", A_JUN, age=55, gender="male")
    c.condition("cp")
    c.oral("baclofen20", 20, 4, start_days=-200)
    c.oral("baclofen20", 25, 4, draft=True, sandbox_quirks=True,
           text="25 mg by mouth four times a day")
    return make(c, "candidacy", "Order-sign (Sandbox-style): draft above the maximum dose",
                "55-year-old with CP on baclofen 80 mg/day; a draft for 25 mg QID = 100 mg/day "
                "would exceed the maximum. Sandbox-style draftOrders (Bundle without type, "
                "no intent, category object). One candidacy card, a warning, that also says "
                "the draft is above the maximum.", [CANDIDATE_ABOVE_MAXIMUM],
                service="itb-order-sign")


@scenario
def candidacy_order_select_trap_unrelated_draft() -> Scenario:
    c = chart("candidacy-order-select-trap-unrelated-draft", A_OCT, age=42)
    c.condition("cp")
    c.oral("baclofen20", 20, 3, status="stopped", reason_text="Drowsiness")
    draft: Json = {
        "resourceType": "MedicationRequest",
        "id": "draft-atorvastatin",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept(coding(RXNORM, "83367", "atorvastatin"),
                                             text="Atorvastatin 20 mg tablet"),
        "subject": c.subject,
        "dosageInstruction": [{"text": "20 mg by mouth once daily", "route": ORAL_ROUTE}],
    }
    c.drafts.append(draft)
    return make(c, "candidacy", "Order-select of an unrelated drug",
                "42-year-old with CP who failed baclofen, but the draft being selected is "
                "atorvastatin. Order hooks speak only about oral antispasticity drafts: no "
                "card here (the patient-view card covers the candidacy).", [],
                service="itb-order-select")


@scenario
def candidacy_order_sign_trap_pump_backup() -> Scenario:
    c = chart("candidacy-order-sign-trap-pump-backup", A_MAR, age=34)
    c.condition("cp")
    c.oral("baclofen20", 20, 4, status="stopped", reason_text="Drowsiness", start_days=-1500)
    c.standard_pump(last_refill_days=-30, backup_oral=False)
    c.oral("baclofen10", 10, 3, draft=True,
           text="Backup: 10 mg by mouth three times a day if the pump fails")
    return make(c, "candidacy", "Order-sign: backup oral baclofen for a pump patient",
                "34-year-old with a working baclofen pump; the nurse signs the recommended "
                "backup oral baclofen prescription. She already has a pump: no candidacy card.",
                [], service="itb-order-sign")


# ----- trial


def trial_chart(sid: str, anchor: datetime = A_JUN, age: int = 19) -> Chart:
    """A CP patient who failed oral baclofen and came in for a screening bolus."""
    c = chart(sid, anchor, age=age)
    c.condition("cp")
    c.oral("baclofen20", 20, 3, status="stopped", reason_text="Drowsiness", start_days=-200)
    return c


POSITIVE = card("itb-trial-outcome", "positive", "info")
NEXT_STEP = card("itb-trial-outcome", "negative-next-step", "info")
FINAL = card("itb-trial-outcome", "negative-final", "warning")
ADVERSE = card("itb-trial-outcome", "adverse", "warning")


@scenario
def trial_positive_response() -> Scenario:
    c = trial_chart("trial-positive-response")
    t = c.trial(26, 50)
    c.trial_response(t, "positive", 4)
    return make(c, "trial", "50 mcg screening bolus, documented positive",
                "19-year-old with CP had a 50 mcg intrathecal screening bolus yesterday; the "
                "physiotherapist documented a positive response at 4 h. Consider implantation.",
                [POSITIVE])


@scenario
def trial_negative_50_next_step() -> Scenario:
    c = trial_chart("trial-negative-50-next-step", A_MAR)
    t = c.trial(30, 50)
    c.trial_response(t, "negative", 5)
    return make(c, "trial", "50 mcg bolus negative: next step 75 mcg",
                "The 50 mcg bolus 30 h ago gave no useful change (response recorded negative). "
                "Next labelled step is 75 mcg, at least 24 h after the last.", [NEXT_STEP])


@scenario
def trial_negative_75_dose_from_note() -> Scenario:
    c = trial_chart("trial-negative-75-dose-from-note", A_OCT)
    t = c.trial(28, None, with_administration=False,
                note="Baclofen 75 mcg intrathecal test dose via lumbar puncture, tolerated well")
    c.trial_response(t, "negative", 4)
    return make(c, "trial", "75 mcg bolus (dose only in the procedure note) negative",
                "Screening bolus recorded only as a procedure whose note says 75 mcg; response "
                "negative. Next step 100 mcg.", [NEXT_STEP])


@scenario
def trial_negative_100_final() -> Scenario:
    c = trial_chart("trial-negative-100-final", A_JAN)
    t = c.trial(27, 100)
    c.trial_response(t, "negative", 4)
    return make(c, "trial", "100 mcg bolus negative: not a candidate per label",
                "100 mcg intrathecal bolus yesterday with a negative response. Per label not a "
                "candidate: warning, no implant suggestion.", [FINAL])


@scenario
def trial_undocumented() -> Scenario:
    c = trial_chart("trial-undocumented", A_JUN)
    c.trial(20, 50)
    return make(c, "trial", "Screening bolus 20 h ago, outcome never documented",
                "50 mcg bolus given 20 h ago; no response, Ashworth or Penn score recorded "
                "since.", [card("itb-trial-outcome", "undocumented", "warning")])


@scenario
def trial_trap_in_progress() -> Scenario:
    c = trial_chart("trial-trap-in-progress", A_JUN)
    c.trial(3, 50)
    return make(c, "trial", "Bolus 3 h ago, observation still running",
                "50 mcg bolus given 3 h ago; the 4-8 h observation is still under way. Too early "
                "to call the outcome undocumented: no card.", [])


@scenario
def trial_mas_positive_one_plus() -> Scenario:
    c = trial_chart("trial-mas-positive-one-plus", A_DEC)
    t = c.trial(22, 50)
    c.ashworth(t, -2, "Left knee flexors", "3")
    c.ashworth(t, -2, "Right knee flexors", "2")
    c.ashworth(t, 3, "Left knee flexors", "1+")
    c.ashworth(t, 3, "Right knee flexors", "1+")
    return make(c, "trial", "Ashworth drop with 1+ scores: mean 1.0, positive",
                "MAS before the bolus 3 and 2; at 3 h both sites 1+. With 1+ counted as 1.5 the "
                "drops are 1.5 and 0.5, mean 1.0 = threshold: positive.", [POSITIVE])


@scenario
def trial_mas_negative_one_plus() -> Scenario:
    c = trial_chart("trial-mas-negative-one-plus", A_MAR)
    t = c.trial(23, 50)
    c.ashworth(t, -1, "Left hip adductors", "2")
    c.ashworth(t, 0.5, "Left hip adductors", "1")  # too early: the window is 1-8 h
    c.ashworth(t, 4, "Left hip adductors", "1+")
    return make(c, "trial", "Ashworth 2 to 1+ only: negative at 50 mcg",
                "MAS 2 before; 1+ at 4 h (a reading of 1 at 30 min is outside the 1-8 h window). "
                "Drop 0.5 < 1.0: negative, next step 75 mcg.", [NEXT_STEP])


@scenario
def trial_penn_drop_positive() -> Scenario:
    c = trial_chart("trial-penn-drop-positive", A_OCT)
    t = c.trial(25, 50)
    c.penn(t, -1, 3)
    c.penn(t, 4, 2)
    return make(c, "trial", "No Ashworth, Penn spasm frequency 3 to 2",
                "No response note or Ashworth scores, but Penn spasm frequency fell from 3 "
                "before to 2 after the bolus: positive.", [POSITIVE])


@scenario
def trial_mas_precedes_penn() -> Scenario:
    c = trial_chart("trial-mas-precedes-penn", A_JUN)
    t = c.trial(24, 100)
    c.ashworth(t, -2, "Right elbow flexors", "2")
    c.ashworth(t, 4, "Right elbow flexors", "2")
    c.penn(t, -2, 3)
    c.penn(t, 4, 1)
    return make(c, "trial", "Ashworth unchanged beats a Penn drop (100 mcg)",
                "100 mcg bolus. Ashworth unchanged (2 to 2) while Penn fell 3 to 1. Ashworth "
                "takes precedence: negative at 100 mcg, not a candidate.", [FINAL])


@scenario
def trial_adverse_respiratory_depression() -> Scenario:
    c = trial_chart("trial-adverse-respiratory-depression", A_JAN, age=12)
    t = c.trial(4, 50)
    c.adverse_event(concept(coding(SNOMED, "80954004", "Respiratory depression"),
                            text="Respiratory depression, SpO2 88%, needed stimulation"),
                    c.performed_days(t) + 2 / 24, suspect=t)
    return make(c, "trial", "Respiratory depression 2 h after the bolus",
                "12-year-old had a 50 mcg bolus 4 h ago; at 2 h she had respiratory depression. "
                "Outcome not yet due, but the overdose sign is a warning now.", [ADVERSE])


@scenario
def trial_positive_with_drowsiness() -> Scenario:
    c = trial_chart("trial-positive-with-drowsiness", A_OCT)
    t = c.trial(26, 50)
    c.trial_response(t, "positive", 4)
    c.adverse_event(concept(coding(SNOMED, "271782001", "Drowsy"),
                            text="Excessive drowsiness, hard to rouse"),
                    c.performed_days(t) + 3 / 24, suspect=t)
    return make(c, "trial", "Positive trial but excessive drowsiness afterwards",
                "Positive response to 50 mcg, but she was excessively drowsy and hard to rouse "
                "at 3 h. Both the positive outcome and the overdose warning must show.",
                [POSITIVE, ADVERSE])


@scenario
def trial_trap_older_than_lookback() -> Scenario:
    c = chart("trial-trap-older-than-lookback", A_JUN, age=40)
    c.condition("cp")
    t = c.trial(45 * 24, 50)
    c.trial_response(t, "positive", 4)
    return make(c, "trial", "Positive trial 45 days ago, outside the 30-day look-back",
                "A positive screening bolus 45 days ago; surgery discussion is happening "
                "outside the system. Outside the look-back: no trial card (and no oral "
                "failure on file, so no candidacy card).", [])


@scenario
def trial_trap_pump_implanted_after() -> Scenario:
    c = trial_chart("trial-trap-pump-implanted-after", A_MAR)
    t = c.trial(20 * 24, 50)
    c.trial_response(t, "positive", 4)
    dev = c.pump(implant=A_MAR - timedelta(days=6))
    c.fill_readings(-6, c.implant_procedure(dev), dev)
    c.itb_order(200, start_days=-6)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "trial", "Positive trial 20 days ago, pump implanted 6 days ago",
                "Trial was positive and the pump went in 6 days ago (filled at implant: "
                "due in 84 days). The trial is done with; no card at all.", [])


@scenario
def trial_stepwise_latest_100_negative() -> Scenario:
    c = trial_chart("trial-stepwise-latest-100-negative", A_DEC)
    for hours, dose in ((5 * 24, 50), (3 * 24, 75), (26, 100)):
        t = c.trial(hours, dose)
        c.trial_response(t, "negative", 4)
    return make(c, "trial", "50, 75, then 100 mcg all negative",
                "Three labelled steps on three days, each negative. The latest (100 mcg) "
                "decides: one warning card, not a card per trial.", [FINAL])


@scenario
def trial_administration_only_positive() -> Scenario:
    c = trial_chart("trial-administration-only-positive", A_JAN, age=9)
    t = c.trial(30, 50, with_procedure=False)
    c.trial_response(t, "positive", 5)
    return make(c, "trial", "Trial recorded only as an intrathecal administration",
                "9-year-old; the ward charted only the MedicationAdministration of 50 mcg "
                "intrathecal baclofen (no procedure). Response positive.", [POSITIVE])


# ----- refill


def pump_chart(sid: str, anchor: datetime = A_JUN, age: int = 37) -> Chart:
    """A CP patient with a pump, whose oral baclofen failed years ago (so candidacy is moot)."""
    c = chart(sid, anchor, age=age)
    c.condition("cp")
    c.oral("baclofen20", 20, 4, status="stopped", reason_text="Drowsiness", start_days=-2000)
    return c


def refill_card(outcome: str, indicator: str) -> Json:
    return card("itb-refill", outcome, indicator)


REFILL_BOOKING = concept(REFILL_LOCAL, text="Intrathecal baclofen pump refill")


@scenario
def refill_healthy_nothing_due() -> Scenario:
    c = pump_chart("refill-healthy-nothing-due")
    c.standard_pump(last_refill_days=-30)
    return make(c, "refill", "Healthy pump, refilled a month ago",
                "Refilled 30 days ago (alarm in 60 days), pump implanted under two years ago, "
                "backup oral baclofen on file. Nothing to say: no card.", [])


@scenario
def refill_notice() -> Scenario:
    c = pump_chart("refill-notice", A_OCT)
    c.standard_pump(last_refill_days=-80)
    return make(c, "refill", "Refill due in 10 days: book it",
                "Last refill 80 days ago; the low-reservoir alarm falls in 10 days. Time to "
                "book the refill.", [refill_card("notice", "info")])


@scenario
def refill_due_soon() -> Scenario:
    c = pump_chart("refill-due-soon", A_JAN)
    c.standard_pump(last_refill_days=-86)
    return make(c, "refill", "Refill due in 4 days, nothing booked",
                "Last refill 86 days ago; alarm in 4 days and no appointment.",
                [refill_card("due-soon", "warning")])


@scenario
def refill_overdue() -> Scenario:
    c = pump_chart("refill-overdue", A_JUN)
    c.standard_pump(last_refill_days=-94)
    return make(c, "refill", "Low-reservoir alarm date passed 4 days ago",
                "Last refill 94 days ago: the alarm date passed 4 days ago and the pump runs "
                "dry in 6 days.", [refill_card("overdue", "critical")])


@scenario
def refill_empty() -> Scenario:
    c = pump_chart("refill-empty", A_MAR)
    c.standard_pump(last_refill_days=-103)
    return make(c, "refill", "Pump computed empty 3 days ago",
                "Last refill 103 days ago: by the arithmetic the reservoir emptied 3 days ago. "
                "Emergency, withdrawal signs listed.", [refill_card("empty", "critical")])


@scenario
def refill_booked_appointment() -> Scenario:
    c = pump_chart("refill-booked-appointment", A_JUN)
    c.standard_pump(last_refill_days=-85)
    c.appointment(REFILL_BOOKING, 3)
    return make(c, "refill", "Refill due in 5 days, booked in 3",
                "Alarm in 5 days; the refill clinic appointment is booked in 3 days.",
                [refill_card("booked", "info")])


@scenario
def refill_booked_service_request() -> Scenario:
    c = pump_chart("refill-booked-service-request", A_OCT)
    c.standard_pump(last_refill_days=-79)
    c.service_request(concept(REFILL_CPT, REFILL_LOCAL, text="Intrathecal baclofen pump refill"),
                      occurrence_days=6)
    return make(c, "refill", "Refill due in 11 days, active refill order for day 6",
                "Alarm in 11 days; an active ServiceRequest for the refill is scheduled in 6 "
                "days.", [refill_card("booked", "info")])


@scenario
def refill_booked_after_due() -> Scenario:
    c = pump_chart("refill-booked-after-due", A_JUN)
    c.standard_pump(last_refill_days=-85)
    c.appointment(REFILL_BOOKING, 8)
    return make(c, "refill", "Refill booked 3 days after the due date",
                "Alarm in 5 days but the refill was booked in 8 days: too late, the warning "
                "stands.", [refill_card("due-soon", "warning")])


@scenario
def refill_booked_does_not_lower_critical() -> Scenario:
    c = pump_chart("refill-booked-does-not-lower-critical", A_DEC)
    c.standard_pump(last_refill_days=-95)
    c.appointment(REFILL_BOOKING, 1)
    return make(c, "refill", "Overdue refill booked for tomorrow",
                "Alarm date passed 5 days ago; refill booked tomorrow. A booking never lowers "
                "critical.", [refill_card("overdue", "critical")])


@scenario
def refill_cancelled_appointment() -> Scenario:
    c = pump_chart("refill-cancelled-appointment", A_MAR)
    c.standard_pump(last_refill_days=-86)
    c.appointment(REFILL_BOOKING, 2, status="cancelled")
    return make(c, "refill", "Refill appointment cancelled",
                "Alarm in 4 days; the refill appointment in 2 days was cancelled. Not booked: "
                "warning.", [refill_card("due-soon", "warning")])


@scenario
def refill_stability_limit_due_soon() -> Scenario:
    c = pump_chart("refill-stability-limit-due-soon", A_JUN)
    dev = c.pump(model="synchromed-40")
    c.refill(-176, device=dev, volume=40, concentration=2000)
    c.itb_order(400, concentration=2000)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "High concentration: the 180-day drug stability limit comes first",
                "40 mL pump with 2000 mcg/mL at 400 mcg/day: alarm 190 days after the fill, but "
                "the 180-day stability limit is in 4 days.",
                [refill_card("due-soon", "warning")])


@scenario
def refill_stability_limit_overdue() -> Scenario:
    c = pump_chart("refill-stability-limit-overdue", A_OCT)
    dev = c.pump(model="synchromed-40")
    c.refill(-185, device=dev, volume=40, concentration=2000)
    c.itb_order(400, concentration=2000)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Stability limit passed, reservoir not yet at alarm",
                "Same 40 mL pump refilled 185 days ago: the 180-day limit passed 5 days ago "
                "though the alarm volume is 5 days off.", [refill_card("overdue", "critical")])


@scenario
def refill_dose_from_observation() -> Scenario:
    c = pump_chart("refill-dose-from-observation", A_JAN)
    dev = c.pump()
    proc = c.refill(-86, device=dev)
    c.observation("pump-daily-dose", "Pump daily dose", -86,
                  {"valueQuantity": qty(200, "mcg/d", "ug/d")}, part_of=proc, device=dev)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Daily dose only on the programmer printout",
                "No intrathecal MedicationRequest; the programmer recorded 200 mcg/day at the "
                "refill 86 days ago. Alarm in 4 days.", [refill_card("due-soon", "warning")])


@scenario
def refill_dose_in_milligrams() -> Scenario:
    c = pump_chart("refill-dose-in-milligrams", A_MAR)
    dev = c.pump()
    c.refill(-80, device=dev)
    c.itb_order(200, unit="mg", as_rate=True)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Pump prescription written as 0.2 mg/day",
                "The prescription rate is 0.2 mg/day (= 200 mcg/day); last refill 80 days ago, "
                "alarm in 10 days.", [refill_card("notice", "info")])


@scenario
def refill_concentration_from_product() -> Scenario:
    c = pump_chart("refill-concentration-from-product", A_JUN)
    dev = c.pump()
    c.refill(-86, device=dev, volume=20, concentration=None)
    c.itb_order(400, concentration=2000)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Concentration from the 2 mg/mL product",
                "No concentration reading; the prescription is baclofen intrathecal 2 mg/mL "
                "(RxNorm 1666613) at 400 mcg/day. 20 mL: alarm 90 days after the refill 86 days "
                "ago.", [refill_card("due-soon", "warning")])


@scenario
def refill_implant_is_last_fill() -> Scenario:
    c = pump_chart("refill-implant-is-last-fill", A_OCT)
    dev = c.pump(implant=A_OCT - timedelta(days=85))
    c.fill_readings(-85, c.implant_procedure(dev), dev)
    c.itb_order(200, start_days=-85)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "No refill yet: filled at implant 85 days ago",
                "Pump implanted and filled 85 days ago, never refilled since. Alarm in 5 days.",
                [refill_card("due-soon", "warning")])


@scenario
def refill_latest_refill_wins() -> Scenario:
    c = pump_chart("refill-latest-refill-wins", A_JUN)
    dev = c.pump(implant=years_before(A_JUN, 3))
    for days in (-266, -176, -86):
        c.refill(days, device=dev)
    c.itb_order(200, start_days=-400)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Three refills on file, the latest 86 days ago",
                "Refills every 90 days; the latest 86 days ago decides: alarm in 4 days.",
                [refill_card("due-soon", "warning")])


@scenario
def refill_not_done_refill_ignored() -> Scenario:
    c = pump_chart("refill-not-done-refill-ignored", A_MAR)
    dev = c.pump()
    c.refill(-92, device=dev)
    c.refill(-5, device=dev, status="not-done")
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Last week's refill was not done",
                "The refill 5 days ago is recorded not-done (patient did not attend); the last "
                "real refill was 92 days ago: alarm passed 2 days ago.",
                [refill_card("overdue", "critical")])


@scenario
def refill_recorded_alarm_earlier() -> Scenario:
    c = pump_chart("refill-recorded-alarm-earlier", A_JUN)
    dev = c.standard_pump(last_refill_days=-30)
    c.observation("pump-low-reservoir-alarm-date", "Pump low-reservoir alarm date", -30,
                  {"valueDateTime": at(A_JUN, 5)}, device=dev)
    return make(c, "refill", "Programmer alarm date in 5 days beats the arithmetic",
                "Computed alarm is 60 days away, but the programmer printed a low-reservoir "
                "alarm date 5 days from now (a bolus programme uses more drug). The recorded "
                "date wins.", [refill_card("due-soon", "warning")])


@scenario
def refill_recorded_alarm_later() -> Scenario:
    c = pump_chart("refill-recorded-alarm-later", A_OCT)
    dev = c.standard_pump(last_refill_days=-80)
    c.observation("pump-low-reservoir-alarm-date", "Pump low-reservoir alarm date", -80,
                  {"valueDateTime": at(A_OCT, 17)}, device=dev)
    return make(c, "refill", "Programmer alarm date 17 days away beats a computed 10",
                "Arithmetic says alarm in 10 days (empty in 20) but the programmer's recorded "
                "alarm date is 17 days away. The recorded date wins: nothing due within 14 "
                "days, no card.", [])


@scenario
def refill_stale_alarm_date_ignored() -> Scenario:
    c = pump_chart("refill-stale-alarm-date-ignored", A_JAN)
    dev = c.standard_pump(last_refill_days=-30)
    c.observation("pump-low-reservoir-alarm-date", "Pump low-reservoir alarm date", -120,
                  {"valueDateTime": at(A_JAN, -32)}, device=dev)
    return make(c, "refill", "Alarm date printed at the previous refill",
                "The only recorded alarm date was printed at the refill before last and lies in "
                "the past; the pump was refilled 30 days ago. It no longer applies: no card.",
                [])


@scenario
def refill_dose_increased_latest_order() -> Scenario:
    c = pump_chart("refill-dose-increased-latest-order", A_DEC)
    dev = c.pump()
    c.refill(-86, device=dev)
    c.itb_order(100, status="completed", start_days=-300)
    c.itb_order(200, start_days=-84)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Dose doubled after the refill",
                "Refilled 86 days ago at 100 mcg/day, increased to 200 mcg/day two days later "
                "(old order completed). At 200 mcg/day the alarm is in 4 days.",
                [refill_card("due-soon", "warning")])


@scenario
def refill_trap_pump_removed() -> Scenario:
    # The oral failures that led to the pump predate this EHR: only the pump history is here.
    c = chart("refill-trap-pump-removed", A_JUN, age=37)
    c.condition("cp")
    dev = c.pump(implant=years_before(A_JUN, 5), status="inactive")
    c.refill(-200, device=dev)
    c.procedure(concept(*REMOVAL, text="Intrathecal baclofen pump explant (pocket infection)"),
                -60, device=dev)
    c.itb_order(200, status="stopped", start_days=-400)
    c.oral("baclofen10", 10, 3, start_days=-60, text="10 mg by mouth three times a day")
    return make(c, "refill", "Pump explanted for infection two months ago",
                "Pump removed 60 days ago for a pocket infection (device inactive); the last "
                "refill was 200 days ago. Back on oral baclofen 30 mg/day. No pump: no refill, "
                "battery or candidacy card.", [])


# ----- battery


def battery_card(outcome: str, indicator: str) -> Json:
    return card("itb-battery", outcome, indicator)


REPLACEMENT = concept(IMPLANT_PROGRAMMABLE, text="Intrathecal baclofen pump replacement")
REPLACEMENT_SURGERY = concept(IMPLANT_PROGRAMMABLE, IMPLANT_LOCAL,
                              text="Intrathecal baclofen pump replacement surgery")


def battery_chart(sid: str, anchor: datetime, implant: datetime, model: str = "synchromed-20",
                  implant_code: list[Json] | None = None, volume: float = 20) -> tuple[Chart, Json]:
    """A pump patient refilled 20 days ago (nothing due) with a pump of the given age."""
    c = pump_chart(sid, anchor, age=48)
    dev = c.pump(model=model, implant=implant, implant_code=implant_code)
    c.refill(-20, device=dev, volume=volume)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return c, dev


@scenario
def battery_end_of_service() -> Scenario:
    c, _ = battery_chart("battery-end-of-service", A_JUN, years_before(A_JUN, 7, -20))
    return make(c, "battery", "SynchroMed II past 7 years",
                "SynchroMed II implanted 7 years and 20 days ago, never replaced. It may stop "
                "at any time: critical.", [battery_card("end-of-service", "critical")])


@scenario
def battery_eri_recorded() -> Scenario:
    c, dev = battery_chart("battery-eri-recorded", A_OCT, years_before(A_OCT, 6, -60))
    c.observation("pump-eri", "Pump elective replacement indicator", -10,
                  {"valueBoolean": True}, device=dev)
    return make(c, "battery", "Elective replacement indicator at the last interrogation",
                "Pump 6 years 2 months old (by age alone EOS in ~10 months) but the programmer "
                "showed ERI 10 days ago: critical.", [battery_card("eri", "critical")])


@scenario
def battery_eri_date_recorded() -> Scenario:
    c, dev = battery_chart("battery-eri-date-recorded", A_MAR, years_before(A_MAR, 5, -200))
    c.observation("pump-eri", "Pump elective replacement indicator", -3,
                  {"valueDateTime": at(A_MAR, -21)}, device=dev)
    return make(c, "battery", "ERI reached 3 weeks ago (recorded as a date)",
                "A 5½-year-old SynchroMed II; the interrogation 3 days ago recorded the ERI "
                "date as 21 days ago. End of service no later than ERI + 90 days: critical.",
                [battery_card("eri", "critical")])


@scenario
def battery_plan() -> Scenario:
    c, _ = battery_chart("battery-plan", A_JAN, years_before(A_JAN, 7, 120))
    return make(c, "battery", "End of service in about 4 months",
                "SynchroMed II implanted 7 years minus 120 days ago: end of service in ~4 "
                "months. Plan the replacement surgery.", [battery_card("plan", "warning")])


@scenario
def battery_notice() -> Scenario:
    c, _ = battery_chart("battery-notice", A_JUN, years_before(A_JUN, 7, 270))
    return make(c, "battery", "About 9 months of battery left",
                "SynchroMed II implanted 6 years 3 months ago: end of service in ~9 months, the "
                "'about a year left' notice.", [battery_card("notice", "info")])


@scenario
def battery_booked_service_request() -> Scenario:
    c, _ = battery_chart("battery-booked-service-request", A_OCT, years_before(A_OCT, 7, 120))
    c.service_request(REPLACEMENT, occurrence_days=60)
    return make(c, "battery", "Replacement ordered for 2 months from now",
                "End of service in ~4 months; the replacement surgery is ordered (active "
                "ServiceRequest) for 60 days from now.", [battery_card("booked", "info")])


@scenario
def battery_booked_appointment() -> Scenario:
    c, _ = battery_chart("battery-booked-appointment", A_MAR, years_before(A_MAR, 7, 250))
    c.appointment(REPLACEMENT_SURGERY, 90)
    return make(c, "battery", "Replacement surgery booked",
                "End of service in ~8 months; the surgery appointment for the pump replacement "
                "is booked in 90 days.", [battery_card("booked", "info")])


@scenario
def battery_booked_does_not_lower_eri() -> Scenario:
    c, dev = battery_chart("battery-booked-does-not-lower-eri", A_DEC,
                           years_before(A_DEC, 6, -30))
    c.observation("pump-eri", "Pump elective replacement indicator", -7,
                  {"valueBoolean": True}, device=dev)
    c.service_request(REPLACEMENT, occurrence_days=21)
    return make(c, "battery", "ERI reached, replacement booked in 3 weeks",
                "ERI shown a week ago; the replacement is booked in 21 days. A booking never "
                "lowers critical.", [battery_card("eri", "critical")])


@scenario
def battery_trap_prometra_8_years() -> Scenario:
    c, _ = battery_chart("battery-trap-prometra-8-years", A_JUN, years_before(A_JUN, 8),
                         model="prometra")
    return make(c, "battery", "Prometra II at 8 years: 10-year service life",
                "Prometra II implanted 8 years ago. Its service life is 10 years (not the "
                "SynchroMed's 7): nothing due, no card.", [])


@scenario
def battery_prometra_plan() -> Scenario:
    c, _ = battery_chart("battery-prometra-plan", A_OCT, years_before(A_OCT, 10, 120),
                         model="prometra")
    return make(c, "battery", "Prometra II nearing 10 years",
                "Prometra II implanted 10 years minus 120 days ago: end of service in ~4 "
                "months.", [battery_card("plan", "warning")])


@scenario
def battery_unknown_programmable_plan() -> Scenario:
    c, _ = battery_chart("battery-unknown-programmable-plan", A_JUN, years_before(A_JUN, 7, 110),
                         model="unknown")
    return make(c, "battery", "Unnamed programmable pump (CPT 62362), assumed 7 years",
                "Device record says only 'Intrathecal infusion pump'; implant coded CPT 62362 "
                "(programmable) 6 years 8 months ago. Assumed 7-year life: plan replacement.",
                [battery_card("plan", "warning")])


@scenario
def battery_assumed_programmable_notice() -> Scenario:
    c, _ = battery_chart("battery-assumed-programmable-notice", A_MAR,
                         years_before(A_MAR, 7, 210), model="unknown",
                         implant_code=[IMPLANT_LOCAL])
    return make(c, "battery", "Unknown pump type, implant not typed: assumed programmable",
                "Neither the device nor the implant (local code only) says programmable or "
                "not: assumed programmable with a 7-year life; end of service in ~7 months.",
                [battery_card("notice", "info")])


@scenario
def battery_trap_constant_flow() -> Scenario:
    c, _ = battery_chart("battery-trap-constant-flow", A_JUN, years_before(A_JUN, 9),
                         model="codman", implant_code=[IMPLANT_NONPROGRAMMABLE, IMPLANT_LOCAL],
                         volume=30)
    return make(c, "battery", "Codman 3000 constant-flow pump, 9 years old",
                "Gas-driven Codman 3000 implanted 9 years ago, refilled 20 days ago. No "
                "battery: no battery card, and the refill is not due.", [])


@scenario
def battery_trap_non_programmable_by_cpt() -> Scenario:
    c, _ = battery_chart("battery-trap-non-programmable-by-cpt", A_OCT, years_before(A_OCT, 10),
                         model="unknown", implant_code=[IMPLANT_NONPROGRAMMABLE])
    return make(c, "battery", "Unnamed pump implanted as non-programmable (CPT 62361)",
                "An unnamed pump implanted 10 years ago under CPT 62361 (non-programmable): no "
                "battery card.", [])


@scenario
def battery_replaced_pump_uses_new_implant() -> Scenario:
    c = pump_chart("battery-replaced-pump-uses-new-implant", A_JAN, age=50)
    old = c.pump(implant=years_before(A_JAN, 8), status="inactive")
    replaced = years_before(A_JAN, 1, -15)
    c.procedure(concept(*REMOVAL, text="Explant of end-of-service pump"),
                (replaced - A_JAN) / timedelta(days=1), device=old)
    new = c.pump(implant=replaced)
    c.refill(-20, device=new)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "battery", "Pump replaced a year ago; the old one was 7 years old",
                "The first pump (8 years ago) was explanted and replaced a year ago. Battery "
                "life counts from the new implant: nothing due.", [])


# ----- data quality


@scenario
def dq_refill_no_dose_no_concentration() -> Scenario:
    c = pump_chart("dq-refill-no-dose-no-concentration", A_JUN)
    dev = c.pump()
    c.refill(-40, device=dev, concentration=None)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "data-quality", "Pump refilled, but no dose and no concentration anywhere",
                "Refill 40 days ago with the volume recorded, but no pump prescription, no "
                "daily-dose or concentration reading. Nobody can say when it runs dry.",
                [DQ_REFILL])


@scenario
def dq_refill_unknown_volume_and_model() -> Scenario:
    c = pump_chart("dq-refill-unknown-volume-and-model", A_OCT)
    dev = c.pump(model="unknown", implant=years_before(A_OCT, 3))
    c.refill(-40, device=dev, volume=None)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "data-quality", "Volume not recorded, pump model unknown",
                "Refill 40 days ago without the volume, and the device names no model whose "
                "reservoir size could stand in. Battery fine (3-year-old programmable pump).",
                [DQ_REFILL])


@scenario
def dq_battery_no_implant_record() -> Scenario:
    c = pump_chart("dq-battery-no-implant-record", A_MAR)
    dev = c.pump(with_implant=False)
    c.refill(-40, device=dev)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "data-quality", "Pump implanted elsewhere, no implant date on file",
                "SynchroMed II implanted at another hospital; refills are recorded here (last "
                "40 days ago, nothing due) but no implant procedure, so battery life is "
                "unknown.", [DQ_BATTERY])


@scenario
def dq_pump_without_procedures() -> Scenario:
    c = pump_chart("dq-pump-without-procedures", A_DEC)
    c.pump(with_implant=False)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "data-quality", "Active pump device with no procedure history at all",
                "A transferred patient: the pump device and prescription are on file but no "
                "implant or refill. Neither the refill nor the battery date can be computed.",
                [DQ_REFILL, DQ_BATTERY])


@scenario
def dq_oral_dose_undeterminable() -> Scenario:
    c = chart("dq-oral-dose-undeterminable", A_JUN, age=43)
    c.condition("ms")
    c.oral("baclofen20", 20, None, start_days=-150, text="Take as directed")
    return make(c, "data-quality", "Baclofen 'take as directed': daily dose unknown",
                "43-year-old with MS, still spastic on baclofen 20 mg tablets 'as directed'. "
                "Whether she is at the maximum cannot be computed: say so, do not guess.",
                [DQ_CANDIDACY])


# ----- mixed


@scenario
def mixed_refill_overdue_battery_plan() -> Scenario:
    c = pump_chart("mixed-refill-overdue-battery-plan", A_OCT)
    c.standard_pump(last_refill_days=-94, implant=years_before(A_OCT, 7, 120))
    return make(c, "mixed", "Overdue refill on an ageing pump",
                "Alarm date passed 4 days ago, and the SynchroMed II reaches end of service in "
                "~4 months.",
                [refill_card("overdue", "critical"), battery_card("plan", "warning")])


@scenario
def mixed_refill_empty_battery_end_of_service() -> Scenario:
    c = pump_chart("mixed-refill-empty-battery-end-of-service", A_MAR)
    c.standard_pump(last_refill_days=-104, implant=years_before(A_MAR, 7, -40))
    return make(c, "mixed", "Lost to follow-up: empty pump past end of service",
                "Patient lost to follow-up: last refill 104 days ago (empty 4 days ago) and the "
                "pump is 7 years and 40 days old.",
                [refill_card("empty", "critical"), battery_card("end-of-service", "critical")])


@scenario
def mixed_refill_notice_battery_notice() -> Scenario:
    c = pump_chart("mixed-refill-notice-battery-notice", A_JAN)
    c.standard_pump(last_refill_days=-81, implant=years_before(A_JAN, 7, 300))
    return make(c, "mixed", "Two notices",
                "Refill alarm in 9 days and about 10 months of battery left.",
                [refill_card("notice", "info"), battery_card("notice", "info")])


@scenario
def mixed_both_booked() -> Scenario:
    c = pump_chart("mixed-both-booked", A_JUN)
    c.standard_pump(last_refill_days=-84, implant=years_before(A_JUN, 7, 100))
    c.appointment(REFILL_BOOKING, 2)
    c.service_request(REPLACEMENT, occurrence_days=45)
    return make(c, "mixed", "Refill and replacement both booked",
                "Refill due in 6 days booked in 2; end of service in ~100 days with the "
                "replacement ordered for day 45.",
                [refill_card("booked", "info"), battery_card("booked", "info")])


@scenario
def mixed_refill_missing_dose_battery_notice() -> Scenario:
    c = pump_chart("mixed-refill-missing-dose-battery-notice", A_OCT)
    dev = c.pump(implant=years_before(A_OCT, 7, 250))
    c.refill(-30, device=dev)
    return make(c, "mixed", "No dose on file and ~8 months of battery",
                "The pump prescription was never entered (no daily dose anywhere) and the pump "
                "has about 8 months left. No backup oral baclofen either (a note on the cards, "
                "not a card).", [DQ_REFILL, battery_card("notice", "info")])


@scenario
def mixed_healthy_pump_without_backup_oral() -> Scenario:
    c = pump_chart("mixed-healthy-pump-without-backup-oral", A_DEC)
    c.standard_pump(last_refill_days=-45, backup_oral=False)
    return make(c, "mixed", "Healthy pump, no backup oral baclofen",
                "Refilled 45 days ago, young pump, but no active backup oral baclofen. That "
                "reminder travels on pump cards; on its own it is not a card.", [])


@scenario
def mixed_padded_healthy_pump() -> Scenario:
    c = pump_chart("mixed-padded-healthy-pump", A_JUN, age=61)
    c.standard_pump(last_refill_days=-25)
    pad(c)
    return make(c, "mixed", "Large real-world chart, healthy pump",
                "Five years of clinic visits (vitals, encounters, vaccines, unrelated "
                "problems and prescriptions, vitals sent under 'observations' despite the code "
                "filter). Pump refilled 25 days ago: no card.", [])


@scenario
def mixed_padded_candidate() -> Scenario:
    c = chart("mixed-padded-candidate", A_OCT, age=57, gender="male")
    c.condition("sci", onset_days=-3000)
    c.oral("baclofen20", 20, 4, status="stopped", reason_text="Muscle weakness, falls")
    pad(c)
    return make(c, "mixed", "Large real-world chart, baclofen failure buried in it",
                "57-year-old with SCI among hundreds of unrelated resources; baclofen 80 mg/day "
                "was stopped for weakness and falls.", [CANDIDATE])


@scenario
def mixed_padded_refill_due_soon() -> Scenario:
    c = pump_chart("mixed-padded-refill-due-soon", A_MAR, age=68)
    c.standard_pump(last_refill_days=-84)
    pad(c, visits=45)
    return make(c, "mixed", "Large real-world chart, refill due in 6 days",
                "Busy chart; the refill 84 days ago puts the alarm 6 days out.",
                [refill_card("due-soon", "warning")])


@scenario
def mixed_malformed_entry_skipped() -> Scenario:
    c = pump_chart("mixed-malformed-entry-skipped", A_JUN)
    dev = c.pump()
    c.add_malformed("procedures", {
        "resourceType": "Procedure",
        "id": "proc-broken",
        "status": "done",
        "code": concept(REFILL_CPT, text="Intrathecal baclofen pump refill"),
        "subject": "Patient/" + c.pid,
        "performedDateTime": "last Tuesday",
    })
    c.refill(-87, device=dev)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "mixed", "A broken refill record among good ones",
                "An interface wrote one refill Procedure with an invalid status, a string "
                "subject and 'last Tuesday' as the date. It is skipped; the good refill 87 days "
                "ago still gives the warning.", [refill_card("due-soon", "warning")])


# ----- found by the independent review (each would have caught one of its findings)


def dose_range(res: Json, low_mg: float, high_mg: float) -> Json:
    """Rewrite an oral order's dose as a doseRange (e.g. "10-20 mg four times a day")."""
    dosage = res["dosageInstruction"][0]
    dosage["doseAndRate"] = [{"doseRange": {"low": qty(low_mg, "mg"), "high": qty(high_mg, "mg")}}]
    dosage["text"] = f"{low_mg:g}-{high_mg:g} mg by mouth four times a day"
    return res


@scenario
def refill_trap_breast_explant_not_pump_removal() -> Scenario:
    c = pump_chart("refill-trap-breast-explant-not-pump-removal", A_JUN)
    c.standard_pump(last_refill_days=-94)
    c.procedure(concept(coding(CPT, "19328", "Removal of intact breast implant"),
                        text="Explant of bilateral breast implants"), -10)
    return make(c, "refill", "Breast implant explant is not a pump removal",
                "Pump alarm date passed 4 days ago. Ten days ago she had her breast implants "
                "explanted (CPT 19328, text 'Explant ...'): that removes no pump, so the pump "
                "is still there and overdue.", [refill_card("overdue", "critical")])


@scenario
def refill_trap_insulin_pump_refill() -> Scenario:
    c = pump_chart("refill-trap-insulin-pump-refill", A_OCT)
    c.condition("hypertension", code=concept(coding(ICD10, "E10.9", "Type 1 diabetes mellitus")))
    c.standard_pump(last_refill_days=-94)
    c.procedure(concept(text="Insulin pump refill and infusion set change"), -3)
    return make(c, "refill", "An insulin pump refill does not reset the ITB refill clock",
                "Type 1 diabetic with an ITB pump last refilled 94 days ago (alarm passed 4 "
                "days ago). Three days ago the diabetes nurse charted an 'Insulin pump refill': "
                "the ITB pump is still overdue.", [refill_card("overdue", "critical")])


@scenario
def refill_duplicate_device_records() -> Scenario:
    c = pump_chart("refill-duplicate-device-records", A_JAN)
    dev = c.standard_pump(last_refill_days=-86)
    duplicate = {k: v for k, v in dev.items() if k != "id"}
    duplicate["id"] = c.new_id("dev")
    duplicate["udiCarrier"] = [{"deviceIdentifier": "00643169123456"}]
    c.add("devices", duplicate)
    return make(c, "refill", "One pump, two active Device rows",
                "The UDI interface created a second active Device for the same SynchroMed II "
                "8637-20 (no implant procedure of its own). Refill due in 4 days: one warning, "
                "not two, and no 'implant date missing' card for the duplicate.",
                [refill_card("due-soon", "warning")])


@scenario
def refill_trap_morphine_pain_pump() -> Scenario:
    c = chart("refill-trap-morphine-pain-pump", A_MAR, age=61)
    c.condition("hypertension", code=concept(coding(ICD10, "G89.4", "Chronic pain syndrome")))
    dev = c.pump(implant=years_before(A_MAR, 2, 40))
    c.refill(-94, device=dev, concentration=25000)
    c.add("medicationRequests", {
        "resourceType": "MedicationRequest",
        "id": c.new_id("mr-it"),
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept(
            coding(RXNORM, "1010896", "morphine sulfate 25 MG/ML Injectable Solution"),
            text="Morphine 25 mg/mL intrathecal"),
        "subject": c.subject,
        "authoredOn": at(A_MAR, -300),
        "dosageInstruction": [{"route": INTRATHECAL_ROUTE,
                               "doseAndRate": [{"rateQuantity": qty(2, "mg/d", "mg/d")}]}],
    })
    return make(c, "refill", "A SynchroMed II that holds morphine is no ITB pump",
                "Chronic pain patient whose SynchroMed II delivers intrathecal morphine; no "
                "intrathecal baclofen anywhere. Its refill and battery belong to the pain team: "
                "no ITB card of any kind.", [])


@scenario
def candidacy_epidural_steroid_is_not_a_trial() -> Scenario:
    c = chart("candidacy-epidural-steroid-is-not-a-trial", A_OCT, age=46)
    c.condition("cp")
    c.condition("hypertension", code=concept(coding(ICD10, "M54.16",
                                                    "Radiculopathy, lumbar region")))
    c.oral("baclofen10", 10, 3, status="stopped", reason_code=DROWSY,
           reason_text="Drowsiness")
    c.procedure(concept(coding(CPT, "62323", "Injection(s), epidural, lumbar, with imaging"),
                        text="Lumbar epidural steroid injection"), -2,
                note="Triamcinolone 80 mg interlaminar L4-5 epidural steroid injection")
    return make(c, "candidacy", "An epidural steroid injection (CPT 62323) is not a trial",
                "Oral baclofen stopped for drowsiness. Two days ago a lumbar epidural steroid "
                "injection was coded 62323, the same code a baclofen trial may carry: without "
                "baclofen it is no trial, so candidacy still speaks.", [CANDIDATE])


@scenario
def candidacy_text_only_clinical_status() -> Scenario:
    c = chart("candidacy-text-only-clinical-status", A_DEC, age=41, gender="male")
    cond = c.condition("cp")
    cond["clinicalStatus"] = {"text": "Active"}
    del cond["verificationStatus"]
    c.statement("tizanidine", 4, 3, "stopped", "Drowsiness")
    return make(c, "candidacy", "Condition status sent as text only",
                "The EHR sends clinicalStatus as the text 'Active' with no coding and no "
                "verificationStatus. Tizanidine was stopped for drowsiness: a candidate.",
                [CANDIDATE])


@scenario
def candidacy_dose_range_low_end_at_maximum() -> Scenario:
    c = chart("candidacy-dose-range-low-end-at-maximum", A_MAR, age=50)
    c.condition("ms")
    dose_range(c.oral("baclofen20", 20, 4, start_days=-200), 20, 30)
    return make(c, "candidacy", "Dose range whose low end is already the maximum",
                "Baclofen 20-30 mg four times a day: even the low end is 80 mg/day, the adult "
                "maximum, and she is still spastic.", [CANDIDATE])


@scenario
def dq_oral_dose_range_straddles_maximum() -> Scenario:
    c = chart("dq-oral-dose-range-straddles-maximum", A_JUN, age=40)
    c.condition("cp")
    dose_range(c.oral("baclofen20", 20, 4, start_days=-200), 10, 20)
    return make(c, "data-quality", "Dose range across the maximum: do not guess",
                "Baclofen 10-20 mg four times a day is 40-80 mg/day: whether she reached the "
                "80 mg maximum cannot be said. A data-quality card, not a candidacy card.",
                [DQ_CANDIDACY])


@scenario
def candidacy_trap_dose_range_below_maximum() -> Scenario:
    c = chart("candidacy-trap-dose-range-below-maximum", A_JAN, age=35)
    c.condition("cp")
    dose_range(c.oral("baclofen10", 10, 4, start_days=-200), 5, 10)
    return make(c, "candidacy", "Dose range wholly below the maximum",
                "Baclofen 5-10 mg four times a day (20-40 mg/day): well below the maximum "
                "whatever was taken, and nothing else failed. No card.", [])


# ----- scheduling (appointment-book: is a proposed refill or replacement booked in time?)


def booking_card(rule: str, outcome: str, indicator: str) -> Json:
    return card(rule, outcome, indicator)


BOOK = "itb-appointment-book"


def booking_pump(sid: str, anchor: datetime, last_refill_days: int) -> Chart:
    """The standard pump (alarm = last refill + 90 d, empty + 100 d), implanted 2 years ago."""
    c = pump_chart(sid, anchor)
    c.standard_pump(last_refill_days=last_refill_days)
    return c


@scenario
def booking_refill_before_due() -> Scenario:
    c = booking_pump("booking-refill-before-due", A_JUN, -80)
    c.propose(REFILL_BOOKING, 7)
    return make(c, "scheduling", "Refill booked 3 days before the alarm date",
                "Last refill 80 days ago: alarm in 10 days. The nurse books the refill in 7 "
                "days, in time: no card.", [], service=BOOK)


@scenario
def booking_refill_after_alarm() -> Scenario:
    c = booking_pump("booking-refill-after-alarm", A_OCT, -80)
    c.propose(REFILL_BOOKING, 14)
    return make(c, "scheduling", "Refill booked 4 days after the alarm date",
                "Alarm in 10 days, empty in 20; the first free slot offered is in 14 days, after "
                "the alarm: book on or before the alarm date.",
                [booking_card("itb-refill", "booked-late", "warning")], service=BOOK)


@scenario
def booking_refill_after_empty() -> Scenario:
    c = booking_pump("booking-refill-after-empty", A_MAR, -80)
    c.propose(REFILL_BOOKING, 24, sandbox_quirks=True)
    return make(c, "scheduling", "Refill booked after the pump runs dry",
                "Alarm in 10 days, empty in 20; the refill is being booked in 24 days (a "
                "scheduling client that sends the proposal without status or participant): "
                "withdrawal risk, critical.",
                [booking_card("itb-refill", "booked-after-empty", "critical")], service=BOOK)


@scenario
def booking_refill_after_stability_limit() -> Scenario:
    c = pump_chart("booking-refill-after-stability-limit", A_JAN)
    dev = c.pump(model="synchromed-40")
    c.refill(-170, device=dev, volume=40, concentration=2000)
    c.itb_order(400, concentration=2000)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    c.propose(REFILL_BOOKING, 15)
    return make(c, "scheduling", "Refill booked after the 180-day drug stability limit",
                "40 mL of 2000 mcg/mL at 400 mcg/day, refilled 170 days ago: the stability "
                "limit is in 10 days, the alarm in 20. A refill in 15 days is after the limit.",
                [booking_card("itb-refill", "booked-late", "warning")], service=BOOK)


@scenario
def booking_refill_overdue_booked_today() -> Scenario:
    c = booking_pump("booking-refill-overdue-booked-today", A_DEC, -94)
    c.propose(REFILL_BOOKING, 0)
    return make(c, "scheduling", "Overdue refill booked for this afternoon",
                "The alarm passed 4 days ago (empty in 6); the refill is booked for today, the "
                "earliest day there is: nothing to correct here (patient-view carries the "
                "overdue alert).", [], service=BOOK)


@scenario
def booking_trap_later_refill_cycle() -> Scenario:
    c = booking_pump("booking-trap-later-refill-cycle", A_JUN, -84)
    c.appointment(REFILL_BOOKING, 4)
    c.propose(REFILL_BOOKING, 94)
    return make(c, "scheduling", "Booking the refill after next",
                "The next refill is already booked in 4 days (alarm in 6); the one being booked "
                "in 94 days is for the following fill, whose dates that refill will set: no "
                "card.", [], service=BOOK)


@scenario
def booking_trap_neither() -> Scenario:
    c = booking_pump("booking-trap-neither", A_MAR, -80)
    c.propose(concept(coding(SNOMED, "91251008", "Physical therapy procedure"),
                      text="Physiotherapy review"), 30)
    return make(c, "scheduling", "A physiotherapy appointment after the alarm date",
                "Alarm in 10 days; the appointment being booked in 30 days is physiotherapy, "
                "neither a refill nor a replacement: no card.", [], service=BOOK)


@scenario
def booking_refill_no_daily_dose() -> Scenario:
    c = pump_chart("booking-refill-no-daily-dose", A_OCT)
    dev = c.pump()
    c.refill(-40, device=dev)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    c.propose(REFILL_BOOKING, 30)
    return make(c, "scheduling", "Refill booked for a pump with no dose on file",
                "Refilled 40 days ago, but no pump prescription or daily-dose reading: nobody "
                "can say whether a refill in 30 days is in time. Say what to record.",
                [DQ_REFILL], service=BOOK)


def booking_battery(sid: str, anchor: datetime) -> Chart:
    """A SynchroMed II reaching end of service ~120 days after the anchor; refill not due."""
    c, _ = battery_chart(sid, anchor, years_before(anchor, 7, 120))
    return c


@scenario
def booking_replacement_before_eos() -> Scenario:
    c = booking_battery("booking-replacement-before-eos", A_JUN)
    c.propose(REPLACEMENT, 60)
    return make(c, "scheduling", "Replacement booked two months before end of service",
                "End of service in ~120 days; the replacement surgery is booked in 60 days: in "
                "time, no card.", [], service=BOOK)


@scenario
def booking_replacement_close_to_eos() -> Scenario:
    c = booking_battery("booking-replacement-close-to-eos", A_OCT)
    c.propose(REPLACEMENT, 105)
    return make(c, "scheduling", "Replacement booked 2 weeks before end of service",
                "End of service in ~120 days; the surgery is being booked in 105 days, inside "
                "the last 30 days: book it earlier.",
                [booking_card("itb-battery", "booked-late", "warning")], service=BOOK)


@scenario
def booking_replacement_after_eos() -> Scenario:
    c = booking_battery("booking-replacement-after-eos", A_JAN)
    c.propose(REPLACEMENT, 135)
    return make(c, "scheduling", "Replacement booked after end of service",
                "End of service in ~120 days; the surgery is being booked in 135 days, after "
                "the battery may have stopped: critical.",
                [booking_card("itb-battery", "booked-after-eos", "critical")], service=BOOK)



# ----- rule set 1.1: charts as real EHRs code them
# Written from the contract (section 8) as a clinician expects the answer, not from the code.

MR_STATUS_REASON = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
SNOMED_OID = "urn:oid:2.16.840.1.113883.6.96"
INPATIENT = concept(coding(MED_CATEGORY, "inpatient", "Inpatient"))


def bare(system: str, code: str) -> Json:
    """A coded reason with neither display nor text, as many EHR interfaces send it."""
    return {"coding": [{"system": system, "code": code}]}


def oral_medication(mid: str, rxnorm: str | None, text: str | None, form: str,
                    mg: float, per_value: float, per_unit: str) -> Json:
    """A Medication with its ingredient strength ("5 mg per 5 mL", "10 mg per 1 tablet")."""
    res: Json = {"resourceType": "Medication", "id": mid, "form": concept(text=form),
                 "ingredient": [{"itemCodeableConcept": concept(
                     coding(RXNORM, "1292", "baclofen"), text="baclofen"),
                     "isActive": True,
                     "strength": {"numerator": qty(mg, "mg"),
                                  "denominator": qty(per_value, per_unit)}}]}
    if rxnorm or text:
        res["code"] = {"coding": [{"system": RXNORM, "code": rxnorm}]} if rxnorm else {}
        if text:
            res["code"]["text"] = text
    return res


def oral_request(c: Chart, medication: Json, dose: Json | None, per_day: int | None,
                 status: str = "active", reason: Json | None = None, text: str = "",
                 category: Json | None = None, contained: Json | None = None) -> Json:
    """An oral MedicationRequest in an EHR's shape: the medication as a concept, or a
    reference to a contained Medication (``contained``)."""
    dosage: Json = {"text": text or "by mouth", "route": ORAL_ROUTE}
    if per_day is not None:
        dosage["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    res: Json = {"resourceType": "MedicationRequest", "id": c.new_id("mr"), "status": status,
                 "intent": "order", "category": [category or concept(
                     coding(MED_CATEGORY, "outpatient", "Outpatient"))],
                 "subject": c.subject, "authoredOn": at(c.anchor, -300),
                 "dosageInstruction": [dosage]}
    if contained is not None:
        res["contained"] = [contained]
        res["medicationReference"] = {"reference": f"#{contained['id']}"}
    else:
        res["medicationCodeableConcept"] = medication
    if reason is not None:
        res["statusReason"] = reason
    return c.add("medicationRequests", res)


def oral_given(c: Chart, days: float, dose: Json, medication: Json | None = None,
               contained: Json | None = None) -> Json:
    """One inpatient dose given (MedicationAdministration): no timing, one dose."""
    res: Json = {"resourceType": "MedicationAdministration", "id": c.new_id("ma"),
                 "status": "completed", "subject": c.subject,
                 "effectiveDateTime": at(c.anchor, days),
                 "dosage": {"route": ORAL_ROUTE, "dose": dose}}
    if contained is not None:
        res["contained"] = [contained]
        res["medicationReference"] = {"reference": f"#{contained['id']}"}
    else:
        res["medicationCodeableConcept"] = medication or ORAL_DRUGS["baclofen10"]
    return c.add("medicationAdministrations", res)


# class 1: coded reasons


@scenario
def candidacy_coded_reason_hl7_suspected_intolerance() -> Scenario:
    c = chart("candidacy-coded-reason-hl7-suspected-intolerance", A_JUN, age=34)
    c.condition("cp", onset_days=-9000)
    oral_request(c, ORAL_DRUGS["baclofen20"], qty(20, "mg"), 3, status="stopped",
                 reason=bare(MR_STATUS_REASON, "sintol"), text="20 mg three times a day")
    return make(c, "candidacy", "Baclofen stopped, reason only the HL7 code 'suspected "
                "intolerance'",
                "34-year-old with spastic CP. The EHR stopped oral baclofen 20 mg TID with the "
                "HL7 status reason 'sintol' (suspected intolerance) and no words at all. An "
                "intolerance is a failed agent: candidacy card.", [CANDIDATE])


@scenario
def candidacy_coded_reason_snomed_lack_of_drug_action() -> Scenario:
    c = chart("candidacy-coded-reason-snomed-lack-of-drug-action", A_MAR, age=28,
              gender="male")
    c.condition("cp", onset_days=-9000)
    oral_request(c, ORAL_DRUGS["tizanidine"], qty(8, "mg"), 3, status="stopped",
                 reason=concept(coding(SNOMED, "58848006", "Lack of drug action")),
                 text="8 mg three times a day")
    return make(c, "candidacy", "Tizanidine stopped for 'Lack of drug action' (SNOMED CT)",
                "28-year-old with CP. Tizanidine 8 mg TID was stopped with the SNOMED CT "
                "finding 'Lack of drug action': documented as ineffective, a failed agent "
                "(cerebral origin: no oral-baclofen requirement).", [CANDIDATE])


@scenario
def candidacy_statement_coded_absent_response() -> Scenario:
    c = chart("candidacy-statement-coded-absent-response", A_OCT, age=62)
    c.condition("spasticity", onset_days=-4000)
    med = oral_medication("med-1", "197391", None, "Tablet", 10, 1, "{tbl}")
    c.add("medicationStatements", {
        "resourceType": "MedicationStatement", "id": c.new_id("ms"), "status": "stopped",
        "contained": [med], "medicationReference": {"reference": "#med-1"},
        "subject": c.subject, "dateAsserted": at(c.anchor, -60),
        "effectivePeriod": {"start": at(c.anchor, -400), "end": at(c.anchor, -60)},
        "statusReason": [bare(SNOMED_OID, "266721009")],
        "dosage": [{"text": "10 mg three times a day", "route": ORAL_ROUTE,
                    "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": qty(10, "mg")}]}]})
    return make(c, "candidacy", "Outside record: baclofen stopped, 'absent response' by code",
                "62-year-old with spasticity. A MedicationStatement from an outside record "
                "(contained Medication, SNOMED CT written as its OID) says oral baclofen was "
                "stopped for absent response to treatment, by code only. A failed agent.",
                [CANDIDATE])


@scenario
def candidacy_coded_dizziness_contained_medication() -> Scenario:
    c = chart("candidacy-coded-dizziness-contained-medication", A_JAN, age=47)
    c.condition("cp", onset_days=-12000)
    med = oral_medication("med-1", "197391", "Baclofen 10 mg tablet", "Tablet", 10, 1,
                          "{tbl}")
    oral_request(c, {}, qty(10, "mg"), 3, status="stopped", contained=med,
                 reason=bare(SNOMED, "404640003"), text="10 mg three times a day")
    return make(c, "candidacy", "Epic-style order: baclofen stopped for dizziness, code only",
                "47-year-old with CP. Oral baclofen (a contained Medication) was discontinued "
                "with the SNOMED CT code for dizziness and nothing written. Dizziness is a side "
                "effect: a failed agent.", [CANDIDATE])


@scenario
def candidacy_coded_weakness_tizanidine_on_hold() -> Scenario:
    c = chart("candidacy-coded-weakness-tizanidine-on-hold", A_JUN, age=19)
    c.condition("cp", onset_days=-6500)
    oral_request(c, ORAL_DRUGS["tizanidine"], qty(4, "mg"), 3, status="on-hold",
                 reason=bare(SNOMED, "26544005"), text="4 mg three times a day")
    return make(c, "candidacy", "Tizanidine on hold, reason the code for muscle weakness",
                "19-year-old with CP. Tizanidine 4 mg TID is on hold with the SNOMED CT code "
                "for muscle weakness only: an adverse effect, a failed agent.", [CANDIDATE])


@scenario
def candidacy_trap_coded_reason_alternative_choice() -> Scenario:
    c = chart("candidacy-trap-coded-reason-alternative-choice", A_OCT, age=38)
    c.condition("cp", onset_days=-12000)
    oral_request(c, ORAL_DRUGS["baclofen10"], qty(10, "mg"), 3, status="stopped",
                 reason=concept(coding(MR_STATUS_REASON, "altchoice",
                                       "Try another treatment first")),
                 text="10 mg three times a day")
    c.oral("tizanidine", 4, 3, start_days=-40)
    return make(c, "candidacy", "Baclofen stopped to try another treatment first",
                "38-year-old with CP. Low-dose baclofen was stopped with the HL7 reason 'try "
                "another treatment first' and tizanidine 4 mg TID started: neither failed. No "
                "card.", [])


# class 3: one dose given is not a regimen


@scenario
def candidacy_trap_inpatient_administrations() -> Scenario:
    c = chart("candidacy-trap-inpatient-administrations", A_JUN, age=52)
    c.condition("cp", onset_days=-15000)
    oral_request(c, ORAL_DRUGS["baclofen10"], qty(10, "mg"), 3, category=INPATIENT,
                 text="10 mg three times a day")
    for hours in (-26, -18, -10, -2):
        oral_given(c, hours / 24, qty(10, "mg"))
    return make(c, "candidacy", "Inpatient: baclofen doses given against a 10 mg TID order",
                "52-year-old with CP admitted to rehab, on baclofen 10 mg TID. The ward charts "
                "each 10 mg dose given. The order has dose and frequency; the administrations "
                "are single doses, not regimens: nothing to record, no card.", [])


@scenario
def candidacy_trap_inpatient_solution_administrations() -> Scenario:
    c = chart("candidacy-trap-inpatient-solution-administrations", A_MAR, age=9,
              gender="male")
    c.condition("cp", onset_days=-3000)
    sol = oral_medication("med-1", None, "Baclofen 5 mg/5 mL oral solution",
                          "Oral solution", 5, 5, "mL")
    oral_request(c, {}, qty(5, "mg"), 3, category=INPATIENT, contained=sol,
                 text="5 mg three times a day")
    for hours in (-20, -12, -4):
        oral_given(c, hours / 24, qty(5, "mL"), contained=dict(sol))
    return make(c, "candidacy", "Child inpatient: oral solution doses given in mL",
                "9-year-old with CP on baclofen oral solution 5 mg TID (15 mg/day, far below "
                "the 60 mg maximum for ages 8-11). Nurses chart each 5 mL given. Single doses "
                "need no frequency: no card.", [])


# class 2: doses charted as a volume or a count


@scenario
def candidacy_child_oral_solution_ml_at_maximum() -> Scenario:
    c = chart("candidacy-child-oral-solution-ml-at-maximum", A_JUN, age=6)
    c.condition("cp", onset_days=-2000)
    sol = oral_medication("med-1", None, "Baclofen 5 mg/5 mL oral solution",
                          "Oral solution", 5, 5, "mL")
    oral_request(c, {}, qty(10, "mL"), 4, contained=sol, text="10 mL four times a day")
    return make(c, "candidacy", "6-year-old: baclofen oral solution 10 mL QID (40 mg/day)",
                "6-year-old with CP, still spastic on baclofen oral solution 5 mg/5 mL, 10 mL "
                "QID: 10 mg a dose, 40 mg/day, the maximum for ages 2-7. A failed agent at "
                "the maximum: candidacy card.", [CANDIDATE])


@scenario
def candidacy_suspension_ml_referenced_statement() -> Scenario:
    c = chart("candidacy-suspension-ml-referenced-statement", A_OCT, age=50)
    c.condition("ms", onset_days=-5000)
    med = oral_medication("med-fleq-1", None, "Baclofen 5 mg/mL oral suspension",
                          "Oral suspension", 5, 1, "mL")
    c.include("medicationStatements", med)
    c.add("medicationStatements", {
        "resourceType": "MedicationStatement", "id": c.new_id("ms"), "status": "active",
        "medicationReference": {"reference": "Medication/med-fleq-1"},
        "subject": c.subject, "dateAsserted": at(c.anchor, -20),
        "effectivePeriod": {"start": at(c.anchor, -200)},
        "dosage": [{"text": "4 mL four times a day", "route": ORAL_ROUTE,
                    "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": qty(4, "mL", "mL")}]}]})
    return make(c, "candidacy", "Reconciled suspension 4 mL QID of 5 mg/mL (80 mg/day)",
                "50-year-old with MS and leg spasticity; the reconciled home medication is "
                "baclofen suspension 5 mg/mL, 4 mL QID (a referenced Medication): 80 mg/day, "
                "the adult maximum, while still spastic. Candidacy card.", [CANDIDATE])


@scenario
def candidacy_tablets_counted_rxnorm_only() -> Scenario:
    c = chart("candidacy-tablets-counted-rxnorm-only", A_MAR, age=45)
    c.condition("cp", onset_days=-15000)
    oral_request(c, bare(RXNORM, "197391"), qty(2, "tablet", "{tbl}"), 4,
                 text="2 tablets four times a day")
    return make(c, "candidacy", "Baclofen 2 tablets QID, product known only by its RxNorm code",
                "45-year-old with CP on baclofen 10 mg tablets (RxNorm code only, no name), 2 "
                "tablets QID: 80 mg/day, the adult maximum. Candidacy card.", [CANDIDATE])


@scenario
def candidacy_trap_oral_solution_ml_below_maximum() -> Scenario:
    c = chart("candidacy-trap-oral-solution-ml-below-maximum", A_JAN, age=30)
    c.condition("cp", onset_days=-10000)
    sol = oral_medication("med-1", None, "Baclofen 1 mg/mL oral solution", "Oral solution",
                          1, 1, "mL")
    oral_request(c, {}, qty(15, "mL"), 3, contained=sol, text="15 mL three times a day")
    return make(c, "candidacy", "Baclofen oral solution 15 mL TID of 1 mg/mL (45 mg/day)",
                "30-year-old with CP on baclofen 1 mg/mL oral solution, 15 mL TID = 45 mg/day: "
                "room to titrate to 80 mg, nothing failed, dose and frequency known. No card.",
                [])


def ml_bolus(c: Chart, hours_ago: float, ml: float, medication: Json | None = None,
             contained: Json | None = None) -> Json:
    """A screening bolus charted as mL of the ampoule (no procedure)."""
    res: Json = {"resourceType": "MedicationAdministration", "id": c.new_id("ma"),
                 "status": "completed", "subject": c.subject,
                 "effectiveDateTime": at(c.anchor, -hours_ago / 24),
                 "dosage": {"route": INTRATHECAL_ROUTE, "text": f"{ml:g} mL intrathecal bolus",
                            "dose": qty(ml, "mL", "mL")}}
    if contained is not None:
        res["contained"] = [contained]
        res["medicationReference"] = {"reference": f"#{contained['id']}"}
    else:
        res["medicationCodeableConcept"] = medication or ITB_DRUGS[50]
    return c.add("medicationAdministrations", res)


@scenario
def trial_bolus_ml_100mcg_negative_final() -> Scenario:
    c = trial_chart("trial-bolus-ml-100mcg-negative-final")
    bolus = ml_bolus(c, 30, 2)
    c.trial_response(bolus, "negative")
    return make(c, "trial", "Bolus charted as 2 mL of the 50 mcg/mL ampoule, negative",
                "19-year-old; the third screening bolus was charted as 2 mL of the 50 mcg/mL "
                "screening ampoule = 100 mcg, the highest labeled step, and was negative: not a "
                "candidate per the label.", [FINAL])


@scenario
def trial_bolus_ml_contained_ampoule_next_step() -> Scenario:
    c = trial_chart("trial-bolus-ml-contained-ampoule-next-step", A_OCT, age=12)
    amp: Json = {"resourceType": "Medication", "id": "amp-1",
                 "code": concept(text="Baclofen intrathecal screening ampoule"),
                 "ingredient": [{"itemCodeableConcept": concept(text="baclofen"),
                                 "strength": {"numerator": qty(0.05, "mg"),
                                              "denominator": qty(1, "mL")}}]}
    bolus = ml_bolus(c, 28, 1.5, contained=amp)
    c.trial_response(bolus, "negative")
    return make(c, "trial", "Bolus 1.5 mL of a 0.05 mg/mL ampoule (75 mcg), negative",
                "12-year-old; a screening bolus charted as 1.5 mL of a contained 0.05 mg/mL "
                "ampoule (75 mcg) was negative: the next labeled step is 100 mcg, no sooner "
                "than 24 h later.", [NEXT_STEP])


# an inactive or resolved intolerance is not counted


@scenario
def candidacy_trap_intolerance_resolved() -> Scenario:
    c = chart("candidacy-trap-intolerance-resolved", A_JUN, age=40)
    c.condition("cp", onset_days=-14000)
    alg = c.allergy("baclofen10", "intolerance", "low", "Sleepiness")
    alg["clinicalStatus"] = concept(coding(ALLERGY_CLINICAL, "resolved", "Resolved"))
    c.oral("baclofen10", 10, 3, start_days=-90)
    return make(c, "candidacy", "Baclofen intolerance recorded as resolved",
                "40-year-old with CP back on baclofen 10 mg TID; an old baclofen intolerance "
                "(sleepiness) is recorded as resolved. A resolved intolerance does not count: "
                "nothing has failed, no card.", [])



@scenario
def candidacy_allergy_record_coded_drowsiness() -> Scenario:
    c = chart("candidacy-allergy-record-coded-drowsiness", A_MAR, age=52, gender="male")
    c.condition("cp", onset_days=-18000)
    alg = c.allergy("tizanidine", "allergy", "low", "")
    alg["reaction"] = [{"manifestation": [bare(SNOMED, "271782001")], "severity": "moderate"}]
    c.oral("baclofen10", 10, 3, start_days=-200)
    return make(c, "candidacy", "Tizanidine filed as an allergy, reaction drowsiness by code",
                "52-year-old with CP on low-dose baclofen. Tizanidine is on the allergy list as "
                "an 'allergy' whose only reaction is the SNOMED CT code for drowsiness: a side "
                "effect filed as an allergy, so tizanidine failed. Candidacy card naming the "
                "reaction.", [CANDIDATE])


# overdose signs by code, within 24 h after the bolus


@scenario
def trial_adverse_coded_apnea_condition() -> Scenario:
    c = trial_chart("trial-adverse-coded-apnea-condition", A_MAR, age=15)
    t = c.trial(30, 75)
    c.trial_response(t, "positive", 4)
    onset = at(c.anchor, c.performed_days(t) + 3 / 24)
    c.add("conditions", {
        "resourceType": "Condition", "id": c.new_id("cond"),
        "clinicalStatus": concept(coding(COND_CLINICAL, "resolved", "Resolved")),
        "verificationStatus": concept(coding(COND_VERIFICATION, "confirmed", "Confirmed")),
        "code": bare(SNOMED, "1023001"), "subject": c.subject,
        "onsetDateTime": onset, "recordedDate": onset})
    return make(c, "trial", "Positive 75 mcg trial; apnoea 3 h later coded, no words",
                "15-year-old: positive response to a 75 mcg bolus, but 3 h after it an episode "
                "of apnoea was charted as a SNOMED CT code only. Overdose sign within 24 h: the "
                "adverse warning next to the positive card.", [POSITIVE, ADVERSE])


@scenario
def trial_trap_drowsiness_two_days_later() -> Scenario:
    c = trial_chart("trial-trap-drowsiness-two-days-later", A_JUN, age=33)
    t = c.trial(72, 50)
    c.trial_response(t, "positive", 4)
    c.adverse_event(concept(coding(SNOMED, "271782001", "Drowsy"), text="Excessive drowsiness "
                            "after a new gabapentin dose"), c.performed_days(t) + 2)
    return make(c, "trial", "Positive trial; drowsiness two days after the bolus",
                "33-year-old: positive 50 mcg trial 3 days ago. Drowsiness recorded two days "
                "after the bolus (a new gabapentin dose), long after a bolus acts (4-8 h): not "
                "an overdose sign of the trial. Positive card only.", [POSITIVE])



# which trial on file ends the candidacy card


@scenario
def candidacy_older_trial_mentioned() -> Scenario:
    c = chart("candidacy-older-trial-mentioned", A_OCT, age=27, gender="male")
    c.condition("cp", onset_days=-9500)
    c.oral("baclofen20", 20, 3, status="stopped", reason_code=DROWSY,
           reason_text="Too drowsy at work")
    old = c.trial(600 * 24, 50)
    c.trial_response(old, "negative")
    return make(c, "candidacy", "Oral baclofen failed; a negative 50 mcg trial 20 months ago",
                "27-year-old with CP; oral baclofen stopped for drowsiness. A 50 mcg screening "
                "trial 20 months ago was negative and never repeated at 75 mcg. More than 12 "
                "months ago and not the final step: the candidacy card comes back and mentions "
                "the earlier trial.", [CANDIDATE])


@scenario
def candidacy_trap_negative_100_trial_years_ago() -> Scenario:
    c = chart("candidacy-trap-negative-100-trial-years-ago", A_JUN, age=44)
    c.condition("cp", onset_days=-15000)
    c.oral("baclofen20", 20, 3, status="stopped", reason_code=DROWSY,
           reason_text="Drowsiness")
    old = c.trial(3 * 365 * 24, 100)
    c.trial_response(old, "negative")
    return make(c, "candidacy", "Negative 100 mcg trial three years ago",
                "44-year-old with CP whose oral baclofen failed; three years ago a 100 mcg "
                "screening trial, the highest labeled step, was negative. The label says not "
                "a candidate, however long ago: no candidacy card.", [])


@scenario
def candidacy_trap_trial_eight_months_ago() -> Scenario:
    c = chart("candidacy-trap-trial-eight-months-ago", A_MAR, age=36)
    c.condition("ms", onset_days=-6000)
    c.oral("baclofen20", 20, 4, status="stopped", reason_text="Weakness")
    old = c.trial(240 * 24, 50)
    c.trial_response(old, "negative")
    return make(c, "candidacy", "Screening trial eight months ago",
                "36-year-old with MS; oral baclofen stopped for weakness; a negative 50 mcg "
                "trial eight months ago. A trial within the last 12 months: the ITB team "
                "already knows her, no candidacy card.", [])



# as-needed doses are left out of the total; scheduled lines still count


def with_prn_line(res: Json, mg: float, per_day_max: int) -> Json:
    res["dosageInstruction"].append({
        "text": f"{mg:g} mg by mouth as needed for spasms, up to {per_day_max} times a day",
        "route": ORAL_ROUTE, "asNeededBoolean": True,
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        "maxDosePerPeriod": {"numerator": qty(mg * per_day_max, "mg"),
                             "denominator": qty(1, "d", "d")},
        "doseAndRate": [{"doseQuantity": qty(mg, "mg")}]})
    return res


@scenario
def candidacy_scheduled_at_maximum_plus_as_needed() -> Scenario:
    c = chart("candidacy-scheduled-at-maximum-plus-as-needed", A_JUN, age=48)
    c.condition("ms", onset_days=-7000)
    with_prn_line(oral_request(c, ORAL_DRUGS["baclofen20"], qty(20, "mg"), 4,
                               text="20 mg four times a day"), 10, 2)
    return make(c, "candidacy", "Baclofen 20 mg QID scheduled, plus 10 mg as needed",
                "48-year-old with MS, still spastic on baclofen 20 mg QID (80 mg/day, the adult "
                "maximum) with an extra 10 mg as needed on the same order. The scheduled doses "
                "alone reach the maximum; the as-needed line is left out and said so.",
                [CANDIDATE])


@scenario
def candidacy_trap_as_needed_not_counted() -> Scenario:
    c = chart("candidacy-trap-as-needed-not-counted", A_OCT, age=39)
    c.condition("cp", onset_days=-13000)
    with_prn_line(oral_request(c, ORAL_DRUGS["baclofen20"], qty(20, "mg"), 3,
                               text="20 mg three times a day"), 20, 1)
    return make(c, "candidacy", "Baclofen 20 mg TID plus 20 mg as needed",
                "39-year-old with CP on baclofen 20 mg TID (60 mg/day) with 20 mg as needed "
                "once a day. As-needed doses do not count towards the maximum: 60 mg/day, no "
                "failure, no card.", [])



# only final, amended, corrected and preliminary observations count


@scenario
def trial_registered_response_is_not_an_outcome() -> Scenario:
    c = trial_chart("trial-registered-response-is-not-an-outcome", A_JAN, age=23)
    t = c.trial(30, 50)
    response = c.trial_response(t, "positive")
    response["status"] = "registered"
    return make(c, "trial", "Trial response entered as 'registered', never finalised",
                "23-year-old: a 50 mcg bolus 30 h ago; the response form was started (status "
                "registered: no result given yet) and never completed. No documented outcome: "
                "the warning asks for it.", [card("itb-trial-outcome", "undocumented",
                                                  "warning")])



# class 2 on the order hooks: a draft order written in mL of an oral solution


@scenario
def candidacy_order_sign_child_solution_ml_above_maximum() -> Scenario:
    c = chart("candidacy-order-sign-child-solution-ml-above-maximum", A_OCT, age=10)
    c.condition("cp", onset_days=-3500)
    sol = oral_medication("med-1", None, "Baclofen 5 mg/5 mL oral solution",
                          "Oral solution", 5, 5, "mL")
    oral_request(c, {}, qty(10, "mL"), 3, contained=dict(sol), text="10 mL three times a day")
    draft: Json = {
        "resourceType": "MedicationRequest", "id": c.new_id("draft"), "status": "draft",
        "intent": "order", "category": [concept(coding(MED_CATEGORY, "outpatient",
                                                        "Outpatient"))],
        "contained": [sol], "medicationReference": {"reference": "#med-1"},
        "subject": c.subject, "authoredOn": at(c.anchor, 0),
        "dosageInstruction": [{"text": "20 mL four times a day", "route": ORAL_ROUTE,
                               "timing": {"repeat": {"frequency": 4, "period": 1,
                                                     "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": qty(20, "mL", "mL")}]}]}
    c.drafts.append(draft)
    return make(c, "candidacy", "Order-sign: child's oral solution raised to 20 mL QID",
                "10-year-old with CP on baclofen oral solution 5 mg/5 mL, 10 mL TID (30 mg/day). "
                "The draft being signed is 20 mL QID = 80 mg/day, above the 60 mg maximum for "
                "ages 8-11: the draft is the current therapy at (above) the maximum, so the "
                "candidacy card appears as a warning that the dose is too high.",
                [CANDIDATE_ABOVE_MAXIMUM], service="itb-order-sign")



@scenario
def trial_adverse_coded_observation() -> Scenario:
    c = trial_chart("trial-adverse-coded-observation", A_OCT, age=41)
    t = c.trial(28, 50)
    c.trial_response(t, "positive", 4)
    c.add("observations", {
        "resourceType": "Observation", "id": c.new_id("obs"), "status": "final",
        "category": [concept(coding(OBS_CATEGORY, "exam", "Exam"))],
        "code": bare(SNOMED, "80954004"), "subject": c.subject,
        "effectiveDateTime": at(c.anchor, c.performed_days(t) + 2 / 24),
        "valueBoolean": True})
    return make(c, "trial", "Positive trial; respiratory depression charted as an Observation",
                "41-year-old: positive response to a 50 mcg bolus, but the nurse's flowsheet "
                "recorded respiratory depression 2 h after it (an Observation coded in SNOMED "
                "CT, no words). Overdose sign within 24 h: the adverse warning as well.",
                [POSITIVE, ADVERSE])


# status filters for allergies and appointments


@scenario
def candidacy_refuted_baclofen_allergy() -> Scenario:
    c = chart("candidacy-refuted-baclofen-allergy", A_OCT, age=41)
    c.condition("cp", onset_days=-14000)
    alg = c.allergy("baclofen10", "allergy", "high", "Rash")
    alg["verificationStatus"] = concept(coding(ALLERGY_VERIFICATION, "refuted", "Refuted"))
    c.oral("tizanidine", 8, 3, status="stopped", reason_text="Muscle weakness",
           start_days=-300)
    return make(c, "candidacy", "Baclofen allergy on file, but refuted",
                "41-year-old with CP; tizanidine was stopped for weakness. A baclofen allergy "
                "was entered and later marked refuted (oral baclofen was tolerated). A refuted "
                "allergy is no contraindication: the ordinary candidacy card.", [CANDIDATE])


@scenario
def refill_missed_appointments_not_booked() -> Scenario:
    c = pump_chart("refill-missed-appointments-not-booked", A_JUN)
    c.standard_pump(last_refill_days=-86)
    c.appointment(REFILL_BOOKING, -2)  # still "booked", but its day has passed
    c.appointment(REFILL_BOOKING, -1, status="noshow")
    return make(c, "refill", "Refill appointments missed: one no-show, one never closed",
                "Alarm in 4 days. The refill appointment 2 days ago was never checked in (still "
                "'booked', no refill done) and yesterday's was a no-show. Neither is a booking: "
                "due-soon warning.", [refill_card("due-soon", "warning")])


# daily dose across orders: a past regimen at the maximum


@scenario
def candidacy_past_regimen_at_maximum() -> Scenario:
    c = chart("candidacy-past-regimen-at-maximum", A_MAR, age=50, gender="male")
    c.condition("ms", onset_days=-5000)
    c.oral("baclofen20", 20, 4, status="completed", start_days=-700)
    return make(c, "candidacy", "Past course of baclofen 80 mg/day, spasticity still active",
                "50-year-old with MS. A baclofen course of 20 mg QID (80 mg/day, the adult "
                "maximum) was completed last year without a stated reason; the spasticity is "
                "still active. Ineffective at the maximum dose: candidacy card.", [CANDIDATE])


# which trial decides: a 25 mcg trial, and equivocal


@scenario
def trial_negative_25_next_step_50() -> Scenario:
    c = trial_chart("trial-negative-25-next-step-50", A_OCT, age=7)
    t = c.trial(28, 25)
    c.trial_response(t, "negative", 4)
    return make(c, "trial", "25 mcg bolus in a small child, negative: next step 50 mcg",
                "7-year-old with CP had a reduced 25 mcg screening bolus yesterday, with no "
                "useful change. The next labelled step is 50 mcg, at least 24 h later.",
                [NEXT_STEP])


@scenario
def trial_equivocal_counts_negative() -> Scenario:
    c = trial_chart("trial-equivocal-counts-negative", A_JAN, age=33)
    t = c.trial(27, 75)
    c.trial_response(t, "equivocal", 5)
    return make(c, "trial", "75 mcg bolus, response recorded as equivocal",
                "The 75 mcg bolus 27 h ago was judged equivocal. Equivocal counts as negative: "
                "the next labelled step is 100 mcg.", [NEXT_STEP])


# MAS value shapes and body sites


@scenario
def trial_mas_value_shapes() -> Scenario:
    c = trial_chart("trial-mas-value-shapes", A_JUN, age=24)
    t = c.trial(26, 50)
    before, after = c.performed_days(t) - 1 / 24, c.performed_days(t) + 3 / 24

    def mas(when: float, site: Json, value: Json) -> None:
        c.observation("modified-ashworth-scale", "Modified Ashworth Scale", when, value,
                      category="exam")
        c.entries["observations"][-1]["bodySite"] = site

    left = concept(text="Left knee flexors")
    right = concept(coding(SNOMED, "6757004", "Right knee region structure"),
                    text="Right knee flexors")
    mas(before, left, {"valueCodeableConcept": {"coding": [{"code": "3"}]}})
    # R4 has no Observation.valueDecimal: a number with decimals comes as a unitless Quantity.
    mas(before, right, {"valueQuantity": {"value": 3.0, "unit": "{score}"}})
    mas(after, left, {"valueString": "1+"})
    mas(after, right, {"valueCodeableConcept": concept(text="1")})
    mas(after, concept(text="Left elbow flexors"), {"valueInteger": 0})
    return make(c, "trial", "Ashworth scores charted as codes, quantities and text",
                "50 mcg bolus yesterday. Before: left knee flexors 3 (a bare code), right 3 "
                "(a unitless quantity); after 3 h: left 1+ (text), right 1 (a concept). Drops "
                "1.5 and 2, mean 1.75: positive. An elbow scored only afterwards has no "
                "baseline and is left out.", [POSITIVE])


# pump identity: a stale device, readings of the refill day, the model's volume


@scenario
def refill_stale_device_after_removal() -> Scenario:
    c = chart("refill-stale-device-after-removal", A_OCT, age=44)
    c.condition("cp")
    dev = c.pump(implant=years_before(A_OCT, 4))  # the Device row was never closed
    c.refill(-150, device=dev)
    c.procedure(concept(*REMOVAL, text="Intrathecal baclofen pump removal"), -45, device=dev)
    c.itb_order(200, status="stopped", start_days=-500)
    c.oral("baclofen10", 10, 3, start_days=-45, text="10 mg by mouth three times a day")
    return make(c, "data-quality", "Pump removed 6 weeks ago, device still listed as active",
                "The pump was explanted 45 days ago, but its Device record still says active. "
                "The removal wins (no refill or battery card, though the last refill was 150 "
                "days ago); a data-quality card asks to update the device list.",
                [card("itb-data-quality", "stale-device", "info")])


@scenario
def refill_volume_charted_next_day() -> Scenario:
    c = pump_chart("refill-volume-charted-next-day", A_JUN)
    dev = c.pump()
    c.refill(-79, device=dev, volume=None)
    # The nurse charted the volume put in the next evening (32.5 h after the 09:00 refill,
    # the next calendar day); a clinic reading 9 days after the refill is not the refill's.
    c.observation("pump-reservoir-volume", "Pump reservoir volume", -78 + 8.5 / 24,
                  {"valueQuantity": qty(18, "mL")}, device=dev)
    c.observation("pump-reservoir-volume", "Pump reservoir volume", -70,
                  {"valueQuantity": qty(12, "mL")}, device=dev)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Refill volume charted the evening after the refill",
                "Refilled 79 days ago with 18 mL (charted the next evening, not linked to the "
                "refill). At 1000 mcg/mL and 200 mcg/day with a 2 mL alarm volume the alarm is "
                "tomorrow: due-soon warning. The reading 9 days after the refill is not the "
                "refill's volume.", [refill_card("due-soon", "warning")])


@scenario
def refill_volume_from_model() -> Scenario:
    c = pump_chart("refill-volume-from-model", A_MAR)
    dev = c.pump(model="synchromed-20")
    c.refill(-84, device=dev, volume=None)
    c.itb_order(200)
    c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
    return make(c, "refill", "Refill volume not charted: the 20 mL reservoir stands in",
                "Refilled 84 days ago without the volume. The SynchroMed II 20 mL reservoir "
                "stands in (said on the card, no separate data-quality card): alarm in 6 days, "
                "due-soon warning.", [refill_card("due-soon", "warning")])




# battery bookings count only before end of service, and only while still to come


@scenario
def battery_booked_after_end_of_service() -> Scenario:
    c, _ = battery_chart("battery-booked-after-end-of-service", A_OCT,
                         years_before(A_OCT, 7, 120))
    c.appointment(REPLACEMENT_SURGERY, 150)
    return make(c, "battery", "Replacement booked a month after end of service",
                "End of service in ~4 months, but the replacement surgery is booked in 150 "
                "days, after it. A booking that late does not count: the plan warning stays "
                "and says to bring the surgery forward.", [battery_card("plan", "warning")])


@scenario
def battery_past_replacement_appointment() -> Scenario:
    c, _ = battery_chart("battery-past-replacement-appointment", A_MAR,
                         years_before(A_MAR, 7, 120))
    c.appointment(REPLACEMENT_SURGERY, -10)  # still "booked"; the surgery never happened
    return make(c, "battery", "Replacement appointment 10 days ago, never done",
                "End of service in ~4 months. A replacement appointment 10 days ago is still "
                "'booked' but no replacement was done. A past appointment is no booking: plan "
                "warning.", [battery_card("plan", "warning")])


@scenario
def candidacy_trap_negative_100_by_ashworth() -> Scenario:
    c = chart("candidacy-trap-negative-100-by-ashworth", A_OCT, age=29, gender="male")
    c.condition("cp", onset_days=-10000)
    c.oral("baclofen20", 20, 3, status="stopped", reason_text="Drowsiness")
    old = c.trial(2 * 365 * 24, 100)
    c.ashworth(old, -1, "Left knee flexors", "3")
    c.ashworth(old, 4, "Left knee flexors", "3")
    return make(c, "candidacy", "100 mcg trial two years ago, no Ashworth change",
                "29-year-old with CP whose oral baclofen failed. Two years ago a 100 mcg "
                "screening trial left the Ashworth score at 3 (no response recorded in words): "
                "negative at the highest labeled dose, so not a candidate. No card.", [])

if __name__ == "__main__":
    done = write_all()
    print(f"wrote {len(done)} scenarios to {FIXTURES}")
