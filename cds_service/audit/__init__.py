"""The audit log: every call and every feedback item, hash-chained, durable, exportable."""

from cds_service.audit.models import (
    CallRecord,
    CardRecord,
    ClientIdentity,
    FeedbackRecord,
    FeedbackSummary,
    FindingRecord,
    QueryRecord,
    Report,
    SkippedEntry,
    VerifyResult,
)
from cds_service.audit.store import AuditStore, AuditUnavailable

__all__ = [
    "AuditStore",
    "AuditUnavailable",
    "CallRecord",
    "CardRecord",
    "ClientIdentity",
    "FeedbackRecord",
    "FeedbackSummary",
    "FindingRecord",
    "QueryRecord",
    "Report",
    "SkippedEntry",
    "VerifyResult",
]
