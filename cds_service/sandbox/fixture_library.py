"""The clinical scenario fixtures as the sandbox page and the fixture FHIR server see them:
loaded once, shifted to the service's *today* on demand.

Every scenario's bundle reuses short resource ids (``cond-1`` appears in most of them), so a
single FHIR server over all of them must make ids unique: every resource but the Patient is
served under ``<tag>.<id>``, the tag being derived from the scenario id, and references
inside the scenario are rewritten to match. Patients keep their ids (they are already unique),
so a fixture's request can be pointed at the server unchanged.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cds_service.sandbox.fhir_store import FixtureFhirStore, Resource
from cds_service.sandbox.scenarios import (
    BUNDLE_SUFFIX,
    Scenario,
    load_bundle,
    load_scenarios,
    shifted_bundle,
    shifted_request,
)

FAMILY_ORDER = ("candidacy", "trial", "refill", "battery", "data-quality", "mixed",
                "scheduling")
# The Group of every demo patient, so that the clinic worklist can be tried on the sandbox.
DEMO_GROUP_ID = "itb-demo"


def demo_group(patient_ids: list[str]) -> Resource:
    return {
        "resourceType": "Group",
        "id": DEMO_GROUP_ID,
        "type": "person",
        "actual": True,
        "name": "ITB CDS demo patients (synthetic)",
        "quantity": len(patient_ids),
        "member": [{"entity": {"reference": f"Patient/{p}"}} for p in patient_ids],
    }


def scenario_tag(scenario_id: str) -> str:
    return hashlib.sha256(scenario_id.encode("utf-8")).hexdigest()[:8]


def served_id(scenario_id: str, resource_type: str, resource_id: str) -> str:
    """The id under which the fixture FHIR server serves a scenario's resource."""
    if resource_type == "Patient":
        return resource_id
    return f"{scenario_tag(scenario_id)}.{resource_id}"[:64]


def _rename(value: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in renames:
                out[key] = renames[item]
            else:
                out[key] = _rename(item, renames)
        return out
    if isinstance(value, list):
        return [_rename(item, renames) for item in value]
    return value


def served_resources(scenario_id: str, bundle: Mapping[str, Any]) -> list[Resource]:
    """The bundle's resources with unique ids and their internal references rewritten."""
    resources = [
        entry["resource"]
        for entry in bundle.get("entry", [])
        if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping)
    ]
    renames: dict[str, str] = {}
    for resource in resources:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(rtype, str) and isinstance(rid, str):
            renames[f"{rtype}/{rid}"] = f"{rtype}/{served_id(scenario_id, rtype, rid)}"
    served = []
    for resource in resources:
        copy: Resource = _rename(resource, renames)
        rtype, rid = copy.get("resourceType"), copy.get("id")
        if isinstance(rtype, str) and isinstance(rid, str):
            copy["id"] = served_id(scenario_id, rtype, rid)
        served.append(copy)
    return served


@dataclass(frozen=True)
class _Loaded:
    scenarios: tuple[Scenario, ...]
    by_id: Mapping[str, Scenario]
    bundles: Mapping[str, Mapping[str, Any]]
    patient_ids: frozenset[str]


class FixtureLibrary:
    """Scenarios and bundles under ``root``, read on first use (a missing folder is empty)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._store: tuple[date, FixtureFhirStore] | None = None

    def _load(self) -> _Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._read()
            return self._loaded

    def _read(self) -> _Loaded:
        if not self.root.is_dir():
            return _Loaded(scenarios=(), by_id={}, bundles={}, patient_ids=frozenset())
        scenarios = load_scenarios(self.root)
        # load_bundle wants the scenario's own path; the bundle sits next to it.
        scenario_paths = {
            p.name.removesuffix(BUNDLE_SUFFIX): p.with_name(p.name.removesuffix(BUNDLE_SUFFIX)
                                                           + ".json")
            for p in self.root.rglob(f"*{BUNDLE_SUFFIX}")
        }
        bundles = {
            s.id: load_bundle(scenario_paths[s.id]) for s in scenarios if s.id in scenario_paths
        }
        patients = {s.request.get("context", {}).get("patientId") for s in scenarios}
        return _Loaded(
            scenarios=tuple(sorted(scenarios, key=_family_order)),
            by_id={s.id: s for s in scenarios},
            bundles=bundles,
            patient_ids=frozenset(p for p in patients if isinstance(p, str)),
        )

    def scenarios(self) -> Sequence[Scenario]:
        """Grouped by family (in the order the clinical spec presents them), then by id."""
        return self._load().scenarios

    def scenario(self, scenario_id: str) -> Scenario | None:
        return self._load().by_id.get(scenario_id)

    def is_fixture_patient(self, patient_id: str | None) -> bool:
        return patient_id is not None and patient_id in self._load().patient_ids

    def request(self, scenario: Scenario, now: datetime) -> dict[str, Any]:
        return shifted_request(scenario, now)

    def fhir_store(self, now: datetime) -> FixtureFhirStore:
        """Every bundle's resources, dates shifted to ``now``'s day (rebuilt once a day)."""
        today = now.astimezone(UTC).date()
        loaded = self._load()
        with self._lock:
            if self._store is None or self._store[0] != today:
                resources: list[Resource] = []
                for scenario in loaded.scenarios:
                    bundle = loaded.bundles.get(scenario.id)
                    if bundle is not None:
                        shifted = shifted_bundle(scenario, bundle, now)
                        resources += served_resources(scenario.id, shifted)
                patients = sorted(r["id"] for r in resources if r["resourceType"] == "Patient")
                resources.append(demo_group(patients))
                self._store = (today, FixtureFhirStore(resources))
            return self._store[1]


def _family_order(s: Scenario) -> tuple[int, str]:
    rank = FAMILY_ORDER.index(s.family) if s.family in FAMILY_ORDER else len(FAMILY_ORDER)
    return rank, s.id
