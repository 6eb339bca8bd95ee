"""CDS Hooks 2.0 wire models.

Input models tolerate unknown fields (EHRs and the Sandbox add their own); output models
refuse them, enforce the spec's invariants, and serialise without null/empty values.
"""

from __future__ import annotations

from datetime import UTC, datetime
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

# Every string a client sends is bounded, so no field can carry a megabyte into a log, an
# answer or the audit record. These are bounds of the protocol and of the audit columns, not
# tunables: the JSON Schema publishes them to clients, and the request as a whole is bounded
# by ITB_CDS_MAX_BODY_BYTES. A card id is stored in a 128-character column.
ID_MAX = 256  # ids, references, codes (a FHIR id is at most 64)
CARD_ID_MAX = 128
URL_MAX = 2048
TEXT_MAX = 4096  # display texts, comments, scopes
TOKEN_MAX = 16384  # an access token (a JWT with many claims stays far below)
InId = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX)]
InOptionalId = Annotated[str, StringConstraints(max_length=ID_MAX)]
InUrl = Annotated[str, StringConstraints(max_length=URL_MAX)]
InText = Annotated[str, StringConstraints(max_length=TEXT_MAX)]

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
    scope: InText | None = None
    subject: InOptionalId | None = None
    patient: InOptionalId | None = None

    @field_validator("access_token", mode="before")
    @classmethod
    def _bounded_token(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > TOKEN_MAX:
            raise ValueError(f"access_token is longer than {TOKEN_MAX} characters")
        return value


class PatientViewContext(_In):
    userId: InId
    patientId: InId
    encounterId: InOptionalId | None = None

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
    selections: list[InOptionalId] = Field(default_factory=list)

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
    hook: InId
    hookInstance: UUID
    fhirServer: Annotated[str, StringConstraints(pattern=r"^https?://\S+$",
                                                 max_length=URL_MAX)] | None = None
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
    id: InId


class ReasonCoding(_In):
    code: InOptionalId | None = None
    system: InUrl | None = None
    display: InText | None = None


class FeedbackReason(_In):
    reason: ReasonCoding | None = None
    userComment: InText | None = None


class FeedbackItem(_In):
    card: Annotated[str, StringConstraints(min_length=1, max_length=CARD_ID_MAX)]
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
        try:
            value.astimezone(UTC)  # what the audit stores; 0001-01-01T00:00+01:00 has no UTC
        except OverflowError:
            raise ValueError("outcomeTimestamp is out of range in UTC") from None
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
