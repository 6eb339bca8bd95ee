"""What the audit log records and answers: pydantic models at the store's boundary.

None of these models has a field that could hold an access token or a prefetch payload:
queries keep their URL (credentials stripped), prefetch keys keep a SHA-256 of their payload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from cds_service.audit.redact import redact_text, redact_url
from cds_service.rules.finding import Finding, NumberValue


def _as_utc(value: datetime) -> datetime:
    # A naive time is read as UTC, the convention of the whole service (see fhir/record.py).
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _redacted_text(value: str | None) -> str | None:
    return None if value is None else redact_text(value)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
RedactedText = Annotated[str | None, AfterValidator(_redacted_text)]
RedactedUrl = Annotated[str, AfterValidator(redact_url)]


def _redacted_url(value: str | None) -> str | None:
    return None if value is None else redact_url(value)


OptionalRedactedUrl = Annotated[str | None, AfterValidator(_redacted_url)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    # extra="forbid": a caller cannot smuggle a token in under a field name nobody reviews.
    # ser_json_inf_nan="constants": the chain serialises records through model_dump_json, and
    # the default would write NaN as null, changing a hashed value silently; NaN is not JSON,
    # so the chain's parser refuses it instead (see entry.canonical_record).
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class ClientIdentity(_Record):
    """Who called, from the verified JWT (never the JWT itself)."""

    iss: str | None = None
    sub: str | None = None
    tenant: str | None = None


class QueryRecord(_Record):
    """One FHIR query the service made to fill a prefetch gap."""

    key: str
    url: RedactedUrl
    status: int | None = None
    latency_ms: float | None = None
    pages: int = 1
    error: RedactedText = None


class SkippedEntry(_Record):
    """A bad entry the parser skipped instead of rejecting the call."""

    source: str  # prefetch key or "draftOrders"
    reason: str
    reference: str | None = None


class FindingRecord(_Record):
    rule: str
    rule_version: str
    outcome: str
    tier: str
    evidence_refs: list[str] = Field(default_factory=list)
    numbers: dict[str, NumberValue] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    device_ref: str | None = None

    @classmethod
    def from_finding(cls, f: Finding) -> FindingRecord:
        return cls(
            rule=f.rule,
            rule_version=f.rule_version,
            outcome=f.outcome,
            tier=str(f.tier),
            evidence_refs=[e.reference for e in f.evidence if e.reference],
            numbers={n.key: n.value for n in f.numbers},
            missing=list(f.missing),
            notes=list(f.notes),
            device_ref=f.device_ref,
        )


class OfferedReason(_Record):
    """An override reason a card offered, as sent on the wire (feedback is checked against it)."""

    system: str
    code: str
    display: str | None = None


class CardRecord(_Record):
    uuid: str
    summary: str
    indicator: str
    rule: str | None = None
    outcome: str | None = None
    suggestion_uuids: list[str] = Field(default_factory=list)
    # None: recorded before cards kept their reasons, so feedback cannot be checked against
    # them; [] is "offered none". None is left out of the stored JSON, so a record without it
    # keeps the bytes (and hashes) it always had.
    override_reasons: list[OfferedReason] | None = None

    @model_serializer(mode="wrap")
    def _omit_unrecorded(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.override_reasons is None:
            data.pop("override_reasons", None)
        return data


ThresholdValue = bool | int | float | str | list[float]


class CallRecord(_Record):
    """One service call. ``hook_instance`` is the key: a retried call is recorded once."""

    hook_instance: str = Field(min_length=1, max_length=64)
    service_id: str
    hook: str
    received_at: UtcDatetime
    answered_at: UtcDatetime
    duration_ms: float | None = None  # filled from the two times when not given
    http_status: int
    error: RedactedText = None

    client: ClientIdentity = Field(default_factory=ClientIdentity)
    user_id: str | None = None
    patient_id: str | None = None
    encounter_id: str | None = None
    fhir_server: OptionalRedactedUrl = None

    prefetch_supplied: list[str] = Field(default_factory=list)
    prefetch_fetched: list[str] = Field(default_factory=list)
    prefetch_missing: list[str] = Field(default_factory=list)
    prefetch_failed: list[str] = Field(default_factory=list)
    prefetch_sha256: dict[str, str] = Field(default_factory=dict)  # key -> payload digest
    queries: list[QueryRecord] = Field(default_factory=list)
    skipped: list[SkippedEntry] = Field(default_factory=list)

    findings: list[FindingRecord] = Field(default_factory=list)
    cards: list[CardRecord] = Field(default_factory=list)

    catalogue_version: str | None = None
    value_set_versions: dict[str, str] = Field(default_factory=dict)
    rule_versions: dict[str, str] = Field(default_factory=dict)
    thresholds: dict[str, dict[str, ThresholdValue]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _duration(self) -> CallRecord:
        if self.duration_ms is None:
            delta = self.answered_at - self.received_at
            self.duration_ms = round(delta.total_seconds() * 1000.0, 3)
        return self


class FeedbackRecord(_Record):
    card_uuid: str = Field(min_length=1, max_length=128)
    outcome: Literal["accepted", "overridden"]
    outcome_timestamp: UtcDatetime
    accepted_suggestions: list[str] = Field(default_factory=list)
    override_reason_code: str | None = None
    override_reason_system: str | None = None
    override_reason_display: str | None = None
    user_comment: str | None = None
    service_id: str | None = None
    received_at: UtcDatetime = Field(default_factory=utc_now)


# Why a feedback item cannot be trusted as a response to the card it names (kept, not dropped).
FeedbackFlag = Literal["unknown-card", "other-service", "reason-not-offered",
                       "suggestion-not-on-card"]
FEEDBACK_FLAGS: tuple[FeedbackFlag, ...] = ("unknown-card", "other-service",
                                            "reason-not-offered", "suggestion-not-on-card")


class StoredFeedback(_Record):
    """A feedback entry as stored: joined to its call, flagged when it does not fit its card."""

    seq: int
    record: FeedbackRecord
    hook_instance: str | None
    unknown_card: bool
    flags: list[FeedbackFlag] = Field(default_factory=list)  # "unknown-card" included


class FlaggedFeedback(_Record):
    """One item of a feedback post that was stored flagged; ``index`` is its place in the post."""

    index: int
    card: str
    flags: list[FeedbackFlag]


class FeedbackSummary(_Record):
    stored: int = 0
    duplicates: int = 0
    unknown_cards: int = 0
    spooled: int = 0  # database unavailable: kept in the spool, counted on replay
    flagged: list[FlaggedFeedback] = Field(default_factory=list)  # stored or duplicate


class VerifyResult(_Record):
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_hash: str | None = None
    keyed: int = 0  # entries whose link is an HMAC (the rest: plain SHA-256, before any key)
    key_ids: list[str] = Field(default_factory=list)  # in the order the chain rotated to them
    spooled: int = 0  # records still in the spool: not in the chain, not covered by it
    rejected: int = 0  # records the database refused, kept beside the spool for a human


class ReportRow(_Record):
    rule: str
    outcome: str
    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    no_response: int = 0
    override_reasons: dict[str, int] = Field(default_factory=dict)


class Report(_Record):
    """Per rule and outcome: what was shown and what clinicians did with it."""

    since: datetime | None
    generated_at: datetime
    calls: int
    rows: list[ReportRow]
    unknown_card_feedback: int = 0
    # Flagged feedback is not counted in the rows: per flag, how many items were set apart.
    flagged_feedback: dict[str, int] = Field(default_factory=dict)
