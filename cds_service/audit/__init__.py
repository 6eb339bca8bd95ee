"""The audit log: every call and every feedback item, hash-chained, durable, exportable."""

from cds_service.audit.database import AuditUnavailable
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
from cds_service.audit.store import AuditStore, AuditStoreClosed

__all__ = [
    "AuditStore",
    "AuditStoreClosed",
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
