"""The three CDS services (one id per hook: the Sandbox keys services by id)."""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.config import Settings
from cds_service.fhir.templates import prefetch_templates
from cds_service.hooks.models import Discovery, ServiceDefinition


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    id: str
    hook: str
    title: str
    description: str


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        id="itb-patient-view",
        hook="patient-view",
        title="Intrathecal baclofen (ITB) therapy",
        description=(
            "On opening a chart: ITB candidacy after failed oral antispasticity therapy, "
            "screening-trial outcome, pump refill due or overdue, and pump battery/replacement due."
        ),
    ),
    ServiceSpec(
        id="itb-order-select",
        hook="order-select",
        title="ITB candidacy on oral antispasticity orders (select)",
        description=(
            "When an oral antispasticity drug is selected: suggests intrathecal baclofen "
            "evaluation when oral therapy has failed, and flags doses above the labeled maximum."
        ),
    ),
    ServiceSpec(
        id="itb-order-sign",
        hook="order-sign",
        title="ITB candidacy on oral antispasticity orders (sign)",
        description=(
            "When oral antispasticity orders are signed: suggests intrathecal baclofen "
            "evaluation when oral therapy has failed, and flags doses above the labeled maximum."
        ),
    ),
)

SERVICES_BY_ID = {s.id: s for s in SERVICES}

USAGE = (
    "Send prefetch when you can; missing keys are fetched from fhirServer with the bearer "
    "token in fhirAuthorization (read access to the patient's clinical resources)."
)


def discovery_document(settings: Settings) -> Discovery:
    return Discovery(
        services=[
            ServiceDefinition(
                hook=s.hook,
                id=s.id,
                title=s.title,
                description=s.description,
                prefetch=prefetch_templates(s.id, settings),
                usageRequirements=USAGE,
            )
            for s in SERVICES
        ]
    )
