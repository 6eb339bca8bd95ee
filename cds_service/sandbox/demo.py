"""Running a file through the engine in-process (``itb-cds run``), no server, no audit.

The file is a scenario fixture, a bare CDS Hooks request, or a FHIR Bundle of one patient's
chart (a ``*.bundle.json``): a bundle names no hook, so the service is given, and the
prefetch is what each of the service's queries finds in the bundle.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from cds_service.api.errors import domain_error_outcome
from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.errors import CdsError
from cds_service.fhir.templates import render
from cds_service.sandbox.fhir_server import parse_search
from cds_service.sandbox.fhir_store import FixtureFhirStore
from cds_service.sandbox.scenarios import Scenario, shifted_request
from cds_service.services import SERVICES, SERVICES_BY_ID, ServiceSpec, service_for_hook

CLI_USER = "Practitioner/itb-cds-cli"


class DemoInputError(ValueError):
    """The file cannot be run; the message says why in one line."""


def _service(service_id: str | None, hook: object = None) -> ServiceSpec:
    ids = ", ".join(s.id for s in SERVICES)
    if service_id is not None:
        if service_id not in SERVICES_BY_ID:
            raise DemoInputError(f"no service {service_id!r} (services: {ids})")
        return SERVICES_BY_ID[service_id]
    service = service_for_hook(hook)
    if service is None:
        raise DemoInputError(f"no service answers hook {hook!r}; give --service ({ids})")
    return service


def request_from_bundle(bundle: dict[str, Any], service: ServiceSpec, settings: Settings
                        ) -> dict[str, Any]:
    """A request for ``service`` about the bundle's one Patient; ``draft`` MedicationRequests
    become the order hooks' draft orders, ``proposed`` Appointments appointment-book's
    appointments, everything else answers the prefetch queries."""
    resources = [e["resource"] for e in bundle.get("entry") or []
                 if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    if len(patients) != 1 or not isinstance(patients[0].get("id"), str):
        raise DemoInputError(f"the bundle holds {len(patients)} patients with ids; "
                             "a request is about exactly one")
    drafts = [r for r in resources
              if r.get("resourceType") == "MedicationRequest" and r.get("status") == "draft"]
    proposed = [r for r in resources
                if r.get("resourceType") == "Appointment" and r.get("status") == "proposed"]
    store = FixtureFhirStore(r for r in resources if r not in drafts and r not in proposed)
    context: dict[str, Any] = {"userId": CLI_USER, "patientId": patients[0]["id"]}
    if service.context.PROPOSALS == "appointments":
        context["appointments"] = {"resourceType": "Bundle", "type": "collection",
                                   "entry": [{"resource": a} for a in proposed]}
    elif service.hook != "patient-view":
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": d} for d in drafts]}
    if service.hook == "order-select":
        context["selections"] = [f"MedicationRequest/{d.get('id')}" for d in drafts]
    prefetch: dict[str, Any] = {}
    for key, template in service.templates(settings).items():
        query = render(template, context)
        path, _, params = query.partition("?")
        resource_type, _, resource_id = path.partition("/")
        if resource_id:
            prefetch[key] = store.read(resource_type, resource_id)
            continue
        search = parse_search(resource_type, parse_qsl(params))[0]
        prefetch[key] = {"resourceType": "Bundle", "type": "searchset",
                         "entry": [{"resource": r} for r in store.search(search)]}
    return {"hook": service.hook, "hookInstance": str(uuid.uuid4()), "context": context,
            "prefetch": prefetch}


def request_of(path: Path, now: datetime | None, service_id: str | None = None,
               settings: Settings | None = None) -> tuple[ServiceSpec, dict[str, Any], datetime]:
    """The service, the CDS request in a file, and the *now* to evaluate it at.

    A scenario fixture is evaluated at its anchor by default; given ``now``, its dates are
    shifted so that the story holds on that day. A bare request or a bundle is evaluated now.
    """
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise DemoInputError(f"{path} is not JSON ({exc.args[0]})") from None
    if not isinstance(data, dict):
        raise DemoInputError(f"{path} holds neither a scenario, a request nor a Bundle")
    if "request" in data and "anchor" in data:
        scenario = Scenario.model_validate(data)
        service = _service(service_id or scenario.service)
        if now is None:
            return service, scenario.request, scenario.anchor
        return service, shifted_request(scenario, now), now
    at = now or datetime.now(UTC)
    if data.get("resourceType") == "Bundle":
        if service_id is None:
            raise DemoInputError(f"{path} is a FHIR Bundle, which names no hook: give --service "
                                 f"({', '.join(s.id for s in SERVICES)})")
        service = _service(service_id)
        return service, request_from_bundle(data, service, settings or Settings()), at
    return _service(service_id, data.get("hook")), data, at


async def run_request(service: ServiceSpec, request: dict[str, Any], at: datetime,
                      settings: Settings) -> tuple[int, dict[str, Any]]:
    """The status and body the service would answer ``request`` with at ``at``."""
    engine = Engine.build(settings, lambda: at)
    try:
        result = await engine.invoke(service, request)
    except CdsError as exc:
        return domain_error_outcome(exc)
    finally:
        await engine.aclose()
    return 200, result.body
