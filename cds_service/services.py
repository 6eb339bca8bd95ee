"""The service registry: every CDS service this project offers, in one place.

Discovery, prefetch, the engine, the sandbox and the scenarios read this table; nothing else
lists services. Adding a service is one entry here plus the rules it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from cds_service.config import Settings
from cds_service.fhir.templates import ALL_KEYS, prefetch_templates
from cds_service.hooks.models import (
    AppointmentBookContext,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)

# Keys without which no rule can answer correctly. Candidacy needs the diagnoses and the
# medication history; every pump rule (refill, battery, trial) starts from the pump (devices)
# and its implant/refill/trial procedures, and age comes from the patient. Observations,
# statements, administrations, allergies, adverse events, service requests and appointments
# refine an answer: when they are missing a card says so (PatientRecord.unavailable) instead
# of the call failing.
_REQUIRED = ("patient", "conditions", "medicationRequests", "devices", "procedures")
# Order hooks decide candidacy only: no pump observations and no appointments.
_ORDER_KEYS = tuple(k for k in ALL_KEYS if k not in ("observations", "appointments"))
# appointment-book checks bookings against the pump's refill and battery dates: the pump, its
# procedures, readings and orders (doses, product strengths, the backup oral prescription),
# and the bookings already made; no diagnoses, allergies or adverse events.
_BOOKING_KEYS = tuple(k for k in ALL_KEYS
                      if k not in ("conditions", "allergies", "adverseEvents"))
_BOOKING_REQUIRED = ("patient", "medicationRequests", "devices", "procedures")


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    id: str
    hook: str
    title: str
    description: str
    prefetch_keys: tuple[str, ...]  # names of fhir.templates queries, in prefetch order
    required_keys: tuple[str, ...]  # without these the call answers 412
    rules: tuple[str, ...]  # rule entries (cds_service.rules.RULE_ENTRIES), in order
    context: type[PatientViewContext]  # the hook's context model

    def templates(self, settings: Settings) -> dict[str, str]:
        """The prefetch templates advertised in discovery and rendered for fallback fetches."""
        return prefetch_templates(self.prefetch_keys, settings)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        id="itb-patient-view",
        hook="patient-view",
        title="Intrathecal baclofen (ITB) therapy",
        description=(
            "On opening a chart: ITB candidacy after failed oral antispasticity therapy, "
            "screening-trial outcome, pump refill due or overdue, and pump battery/replacement due."
        ),
        prefetch_keys=ALL_KEYS,
        required_keys=_REQUIRED,
        rules=("candidacy", "trial-outcome", "refill", "battery"),
        context=PatientViewContext,
    ),
    ServiceSpec(
        id="itb-order-select",
        hook="order-select",
        title="ITB candidacy on oral antispasticity orders (select)",
        description=(
            "When an oral antispasticity drug is selected: suggests intrathecal baclofen "
            "evaluation when oral therapy has failed, and flags doses above the labeled maximum."
        ),
        prefetch_keys=_ORDER_KEYS,
        required_keys=_REQUIRED,
        rules=("candidacy-on-order",),
        context=OrderSelectContext,
    ),
    ServiceSpec(
        id="itb-order-sign",
        hook="order-sign",
        title="ITB candidacy on oral antispasticity orders (sign)",
        description=(
            "When oral antispasticity orders are signed: suggests intrathecal baclofen "
            "evaluation when oral therapy has failed, and flags doses above the labeled maximum."
        ),
        prefetch_keys=_ORDER_KEYS,
        required_keys=_REQUIRED,
        rules=("candidacy-on-order",),
        context=OrderSignContext,
    ),
    ServiceSpec(
        id="itb-appointment-book",
        hook="appointment-book",
        title="ITB pump refill and replacement bookings",
        description=(
            "When appointments are booked: warns when an intrathecal baclofen pump refill is "
            "booked after the pump's alarm date or empty date, or a pump replacement after the "
            "battery's end of service, and suggests the latest safe day."
        ),
        prefetch_keys=_BOOKING_KEYS,
        required_keys=_BOOKING_REQUIRED,
        rules=("booking",),
        context=AppointmentBookContext,
    ),
)

SERVICES_BY_ID: dict[str, ServiceSpec] = {s.id: s for s in SERVICES}


def service_for_hook(hook: object) -> ServiceSpec | None:
    """The first service that answers ``hook`` (a bare request names its hook, not a service)."""
    return next((s for s in SERVICES if s.hook == hook), None)
