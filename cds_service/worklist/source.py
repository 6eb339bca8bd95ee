"""Where the worklist's charts come from: a FHIR server, read with the service's own FHIR client
(token only in the header, no redirects, our own error words) and within the worklist's limits.

- Population: a Group's members, or every patient owning an active device of the ITB pump value
  set (a Device search, classified here with the same value set the rules use).
- Screening (a Group without bulk export): Devices and Procedures of the members in batches
  (``patient=a,b,c``), keeping the members who have an ITB pump by the rules' own pump logic;
  a batch the server cannot answer keeps all its members.
- Charts: per patient the patient-view prefetch queries, fetched as the service fetches a
  call's missing keys; or a Group export (``charts_from_export``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from cds_service.config import Settings
from cds_service.fhir import bulk
from cds_service.fhir.client import FhirClient
from cds_service.fhir.parse import Screen, local_reference, parse_record
from cds_service.fhir.prefetch import Resolved, resolve
from cds_service.rules.pump import active_pumps, completed, implants, pump_devices
from cds_service.services import ServiceSpec, service_for_hook
from cds_service.terminology import Terminology

log = logging.getLogger("itb_cds.worklist")

WORKLIST_USER = "Practitioner/itb-cds-worklist"
# Which prefetch key a resource of an exported type answers (patient-view's keys).
KEY_OF_TYPE = {
    "Patient": "patient", "Condition": "conditions", "MedicationRequest": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "MedicationAdministration": "medicationAdministrations", "AllergyIntolerance": "allergies",
    "AdverseEvent": "adverseEvents", "Procedure": "procedures", "Observation": "observations",
    "Device": "devices", "ServiceRequest": "serviceRequests", "Appointment": "appointments",
}
# Devices and procedures first: they decide who has a pump, before the rest is kept.
EXPORT_TYPES = ("Device", "Procedure", *(t for t in KEY_OF_TYPE if t not in (
    "Device", "Procedure")), "Medication")


class SourceError(Exception):
    """The panel cannot be read at all (the message is ours, safe to show and log)."""


def patient_view() -> ServiceSpec:
    spec = service_for_hook("patient-view")
    assert spec is not None  # the registry always has it
    return spec


def patient_id_of(resource: Mapping[str, Any]) -> str | None:
    """The patient whose compartment holds ``resource`` (absolute references too)."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    refs: list[object] = [resource.get("subject"), resource.get("patient")]
    participants = resource.get("participant")
    if isinstance(participants, list):  # Appointment
        refs += [p.get("actor") for p in participants if isinstance(p, dict)]
    for ref in refs:
        text = ref.get("reference") if isinstance(ref, dict) else None
        if isinstance(text, str):
            local = local_reference(text)
            if local.startswith("Patient/"):
                return local.removeprefix("Patient/")
    return None


class Source:
    def __init__(self, client: FhirClient, settings: Settings, terms: Terminology,
                 screen: Screen, base_url: str, token: str | None) -> None:
        self.client = client  # the service's: its page cap and timeouts per chart
        self.settings = settings
        self.limits = settings.worklist
        self.terms = terms
        self.keeps = screen  # the parser's own: what it would drop unread, dropped early
        self.base = base_url.rstrip("/")
        self.token = token
        # Population searches page far further than one call's prefetch may.
        self.search = FhirClient(settings.model_copy(
            update={"fhir_page_cap": self.limits.search_page_cap}))

    async def aclose(self) -> None:
        await self.search.aclose()

    async def _get(self, query: str, budget: float) -> list[object]:
        result = (await self.search.fetch_all(self.base, self.token, {"q": query}, budget)
                  ).results["q"]
        if not result.ok:
            raise SourceError(f"{query.split('?')[0]}: {result.error}")
        if result.note:
            log.warning("worklist search incomplete: %s", result.note)
        return list(result.resources)

    async def group_export_offered(self) -> bool:
        try:
            [capability] = await self._get("metadata", self.limits.patient_budget_seconds)
        except (SourceError, ValueError):
            return False
        return isinstance(capability, dict) and bulk.advertises_group_export(capability)

    async def members(self, group_id: str) -> list[str]:
        found = await self._get(f"Group/{group_id}", self.limits.patient_budget_seconds)
        group = found[0] if found else None
        if not isinstance(group, dict) or group.get("resourceType") != "Group":
            raise SourceError("the group is not a FHIR Group")
        ids = []
        for member in group.get("member") or []:
            if not isinstance(member, dict) or member.get("inactive") is True:
                continue
            pid = patient_id_of({"subject": member.get("entity")})
            if pid is not None:
                ids.append(pid)
        return list(dict.fromkeys(ids))

    async def pump_owners(self) -> list[str]:
        """Every patient with an active device of the ITB pump value set."""
        query = f"Device?status=active&_count={self.limits.search_page_size}"
        devices = await self._get(query, self.limits.search_budget_seconds)
        record = parse_record({"devices": devices}, None, lambda _code: False)
        pumps = {d.ref for d in pump_devices(record, self.terms)
                 if (d.status or "").lower() == "active"}
        owners = [patient_id_of(d) for d in devices if isinstance(d, dict)
                  and f"Device/{d.get('id')}" in pumps]
        return list(dict.fromkeys(p for p in owners if p is not None))

    async def screen(self, members: Sequence[str]) -> list[str]:
        """The members who have an ITB pump, from their devices and procedures alone."""
        size = self.limits.screen_batch
        kept: list[str] = []
        for start in range(0, len(members), size):
            batch = members[start:start + size]
            ids, count = ",".join(batch), self.limits.search_page_size
            queries = {"devices": f"Device?patient={ids}&_count={count}",
                       "procedures": f"Procedure?patient={ids}&_count={count}"}
            outcome = await self.search.fetch_all(self.base, self.token, queries,
                                                  self.limits.search_budget_seconds)
            if not all(r.ok and not r.note for r in outcome.results.values()):
                kept += batch  # cannot tell: read every chart of the batch
                continue
            by_patient = _group(r for res in outcome.results.values() for r in res.resources)
            kept += [p for p in batch if self._has_pump(by_patient.get(p, []))]
        return kept

    def _has_pump(self, resources: list[dict[str, Any]]) -> bool:
        record = parse_record({"screen": resources}, None, lambda _code: False)
        return bool(active_pumps(record, self.terms, implants(record, self.terms),
                                 completed(record, self.terms, "itb-pump-removal")))

    async def chart(self, patient_id: str) -> Resolved:
        """The patient-view prefetch of one patient, fetched as the service fills gaps."""
        context = {"patientId": patient_id, "userId": WORKLIST_USER}
        return await resolve(patient_view().templates(self.settings), context, None,
                             self.base, self.token, self.client,
                             self.limits.patient_budget_seconds)

    async def exported_charts(self, group_id: str) -> AsyncIterator[tuple[str, Resolved]]:
        """Each member with an ITB pump and the chart the export gives them; BulkUnavailable
        when the export cannot be used."""
        files = await bulk.group_export(
            self.client, self.base, self.token, group_id, EXPORT_TYPES,
            timeout_s=self.limits.export_timeout_seconds,
            poll_max_s=self.limits.export_poll_max_seconds)
        held: dict[str, dict[str, list[dict[str, Any]]]] = {}
        medications: dict[str, dict[str, Any]] = {}
        pump_files = [f for f in files if f.resource_type in ("Device", "Procedure")]
        for file in pump_files:
            async for resource in self._read(file):
                if self._wanted(resource):
                    _hold(held, resource)
        candidates = {p for p, by_key in held.items()
                      if self._has_pump([r for rs in by_key.values() for r in rs])}
        held = {p: held[p] for p in candidates}
        for file in files:
            if file in pump_files:
                continue
            async for resource in self._read(file):
                if file.resource_type == "Medication":
                    medications[f"Medication/{resource.get('id')}"] = resource
                elif patient_id_of(resource) in candidates and self._wanted(resource):
                    _hold(held, resource)
        for patient_id in sorted(held):
            keys = held.pop(patient_id)  # released as soon as it is read
            keys["medications"] = _referenced(keys, medications)
            yield patient_id, _resolved(keys)

    def _read(self, file: bulk.ExportFile) -> AsyncIterator[dict[str, Any]]:
        return bulk.resources(self.client, file, self.token, self.limits.export_timeout_seconds)

    def _wanted(self, resource: Mapping[str, Any]) -> bool:
        """What the parser would keep: an export holds every observation (the prefetch query
        asks for the rules' codes only) and every unrelated problem, drug and procedure."""
        rtype = str(resource.get("resourceType"))
        if rtype == "Observation":
            code = resource.get("code")
            return isinstance(code, dict) and self.terms.observation_filter(code)
        return self.keeps(rtype, resource, {})


def _group(resources: Iterable[object]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        if isinstance(r, dict) and (pid := patient_id_of(r)) is not None:
            out.setdefault(pid, []).append(r)
    return out


def _hold(held: dict[str, dict[str, list[dict[str, Any]]]], resource: dict[str, Any]
          ) -> None:
    key = KEY_OF_TYPE.get(str(resource.get("resourceType")))
    pid = patient_id_of(resource)
    if key is not None and pid is not None:
        held.setdefault(pid, {}).setdefault(key, []).append(resource)


def _referenced(keys: Mapping[str, list[dict[str, Any]]],
                medications: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = set()
    for resources in keys.values():
        for r in resources:
            ref = r.get("medicationReference")
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                wanted.add(local_reference(ref["reference"]))
    return [medications[m] for m in sorted(wanted) if m in medications]


def _resolved(keys: Mapping[str, list[dict[str, Any]]]) -> Resolved:
    """An exported chart as if every patient-view key had been prefetched."""
    all_keys = (*patient_view().prefetch_keys, "medications")
    resources: dict[str, tuple[object, ...]] = {key: tuple(keys.get(key, ()))
                                                for key in all_keys}
    return dataclasses.replace(Resolved(resources), supplied=tuple(resources))
