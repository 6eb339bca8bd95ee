"""The discovery document: every service of the registry, as CDS Hooks lists it."""

from __future__ import annotations

from cds_service.config import Settings
from cds_service.hooks.models import Discovery, ServiceDefinition
from cds_service.services import SERVICES

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
                prefetch=s.templates(settings),
                usageRequirements=USAGE,
            )
            for s in SERVICES
        ]
    )
