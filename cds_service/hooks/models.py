"""CDS Hooks 2.0 wire models.

Input models tolerate unknown fields (EHRs and the Sandbox add their own); output models
refuse them, enforce the spec's invariants, and serialise without null/empty values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

Indicator = Literal["info", "warning", "critical"]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]

# The spec says summary "< 140 characters".
SUMMARY_MAX = 139


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready dict with every null, empty string, empty list and empty object removed."""
        cleaned = prune(self.model_dump(mode="json", by_alias=True, exclude_none=True))
        assert isinstance(cleaned, dict)
        return cleaned


def prune(value: Any) -> Any:
    """Drop ``None``, ``""``, ``[]`` and ``{}`` recursively (the spec forbids them on the wire)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            cleaned = prune(item)
            if cleaned is None or cleaned == "" or cleaned == [] or cleaned == {}:
                continue
            out[key] = cleaned
        return out
    if isinstance(value, list):
        items = [prune(item) for item in value]
        return [i for i in items if not (i is None or i == "" or i == [] or i == {})]
    return value


# ---------------------------------------------------------------- shared pieces


class Coding(_Out):
    code: NonEmpty
    system: NonEmpty | None = None
    display: NonEmpty | None = None


class OverrideReason(Coding):
    """An override reason: the spec requires system, code and display."""

    system: NonEmpty
    display: NonEmpty


class Source(_Out):
    label: NonEmpty
    url: NonEmpty | None = None
    icon: NonEmpty | None = None
    topic: Coding | None = None


class Action(_Out):
    type: Literal["create", "update", "delete"]
    description: NonEmpty
    resource: dict[str, Any] | None = None
    resourceId: NonEmpty | None = None

    @model_validator(mode="after")
    def _shape(self) -> Action:
        if self.type in ("create", "update"):
            if not self.resource or "resourceType" not in self.resource:
                raise ValueError(f"a {self.type} action needs a full FHIR resource")
        elif not self.resourceId:
            raise ValueError("a delete action needs resourceId")
        return self


class Suggestion(_Out):
    label: NonEmpty
    uuid: NonEmpty | None = None
    isRecommended: bool | None = None
    actions: list[Action] = Field(default_factory=list)


class Link(_Out):
    label: NonEmpty
    url: NonEmpty
    type: Literal["absolute", "smart"]
    appContext: NonEmpty | None = None

    @model_validator(mode="after")
    def _app_context_only_on_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only allowed on smart links")
        return self


class Card(_Out):
    uuid: NonEmpty | None = None
    summary: Annotated[str, StringConstraints(min_length=1, max_length=SUMMARY_MAX)]
    detail: NonEmpty | None = None
    indicator: Indicator
    source: Source
    suggestions: list[Suggestion] = Field(default_factory=list)
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[OverrideReason] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _selection_behavior(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when a card has suggestions")
        return self


class CdsResponse(_Out):
    cards: list[Card] = Field(default_factory=list)
    systemActions: list[Action] = Field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        body.setdefault("cards", [])  # the one empty value the spec allows
        return body


# ---------------------------------------------------------------- requests


class FhirAuthorization(_In):
    access_token: SecretStr
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None


class PatientViewContext(_In):
    userId: NonEmpty
    patientId: NonEmpty
    encounterId: str | None = None

    # The context field holding resources the user is about to commit (draft orders, proposed
    # appointments): the parser reads them leniently, as drafts.
    PROPOSALS: ClassVar[str | None] = None

    def proposals(self) -> Any:
        return getattr(self, self.PROPOSALS) if self.PROPOSALS else None


class OrderSignContext(PatientViewContext):
    # Kept raw on purpose: the parser repairs the Sandbox's quirks instead of rejecting them.
    draftOrders: Any = None
    PROPOSALS: ClassVar[str | None] = "draftOrders"


class OrderSelectContext(OrderSignContext):
    selections: list[str] = Field(default_factory=list)

    @field_validator("selections", mode="before")
    @classmethod
    def _lenient_selections(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value


class AppointmentBookContext(PatientViewContext):
    """CDS Hooks Library appointment-book 1.0: the appointments being booked, a Bundle of
    proposed Appointments, kept raw and read as leniently as draft orders."""

    appointments: Any
    PROPOSALS: ClassVar[str | None] = "appointments"


HookContext = PatientViewContext | OrderSelectContext | OrderSignContext | AppointmentBookContext

CONTEXT_MODELS: dict[str, type[PatientViewContext]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
    "appointment-book": AppointmentBookContext,
}


class CdsRequest(_In):
    hook: NonEmpty
    hookInstance: UUID
    fhirServer: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_authorization(self) -> CdsRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return self

    def access_token(self) -> str | None:
        if self.fhirAuthorization is None:
            return None
        return self.fhirAuthorization.access_token.get_secret_value()


# ---------------------------------------------------------------- feedback


class AcceptedSuggestion(_In):
    id: NonEmpty


class ReasonCoding(_In):
    code: str | None = None
    system: str | None = None
    display: str | None = None


class FeedbackReason(_In):
    reason: ReasonCoding | None = None
    userComment: str | None = None


class FeedbackItem(_In):
    card: NonEmpty
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] = Field(default_factory=list)
    overrideReason: FeedbackReason | None = None
    outcomeTimestamp: datetime

    @field_validator("outcomeTimestamp", mode="before")
    @classmethod
    def _instant_text(cls, value: Any) -> Any:
        # FHIR instants are strings; pydantic's lax mode would read 0 as 1970-01-01.
        if not isinstance(value, str | datetime):
            raise ValueError("outcomeTimestamp must be an ISO 8601 instant")
        return value

    @field_validator("outcomeTimestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("outcomeTimestamp needs a timezone offset")
        return value


class FeedbackRequest(_In):
    feedback: Annotated[list[FeedbackItem], Field(min_length=1)]


# ---------------------------------------------------------------- discovery


class ServiceDefinition(_Out):
    hook: NonEmpty
    id: NonEmpty
    title: NonEmpty | None = None
    description: NonEmpty
    prefetch: dict[str, str] | None = None
    usageRequirements: NonEmpty | None = None


class Discovery(_Out):
    services: list[ServiceDefinition]
