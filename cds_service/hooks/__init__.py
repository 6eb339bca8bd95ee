"""CDS Hooks wire models (pydantic)."""

from cds_service.hooks.models import (
    CONTEXT_MODELS,
    Action,
    Card,
    CdsRequest,
    CdsResponse,
    Coding,
    Discovery,
    FeedbackItem,
    FeedbackRequest,
    Link,
    OverrideReason,
    PatientViewContext,
    ServiceDefinition,
    Source,
    Suggestion,
)

__all__ = [
    "CONTEXT_MODELS",
    "Action",
    "Card",
    "CdsRequest",
    "CdsResponse",
    "Coding",
    "Discovery",
    "FeedbackItem",
    "FeedbackRequest",
    "Link",
    "OverrideReason",
    "PatientViewContext",
    "ServiceDefinition",
    "Source",
    "Suggestion",
]
