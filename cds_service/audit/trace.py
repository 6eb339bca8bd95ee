"""A call's trace, as the engine saw it, turned into the record the audit log keeps."""

from __future__ import annotations

from typing import Any

from cds_service.audit.models import (
    CallRecord,
    CardRecord,
    ClientIdentity,
    FindingRecord,
    OfferedReason,
    QueryRecord,
    SkippedEntry,
)
from cds_service.trace import CallTrace


def call_record(trace: CallTrace, client: ClientIdentity | None = None) -> CallRecord:
    """``client`` is who called, from the verified JWT (the engine never sees it)."""
    resolved = trace.resolved
    thresholds: Any = dict(trace.thresholds)  # validated by the record's model
    return CallRecord(
        hook_instance=trace.hook_instance,
        service_id=trace.service_id,
        hook=trace.hook,
        received_at=trace.received_at,
        answered_at=trace.answered_at,
        duration_ms=trace.duration_ms,
        http_status=trace.status,
        error=trace.error,
        client=client or ClientIdentity(),
        user_id=trace.user_id,
        patient_id=trace.patient_id,
        encounter_id=trace.encounter_id,
        fhir_server=trace.fhir_server,
        prefetch_supplied=list(resolved.supplied),
        prefetch_fetched=list(resolved.fetched),
        prefetch_missing=list(resolved.missing),
        prefetch_failed=[f"{f.key}: {f.reason}" for f in resolved.failed],
        prefetch_sha256=dict(trace.prefetch_sha256),
        queries=[
            QueryRecord(
                key=q.key,
                url=q.url,
                status=q.status,
                latency_ms=q.latency_ms,
                pages=q.page,
                error=None if q.outcome == "ok" else q.outcome,
            )
            for q in resolved.query_log
        ],
        skipped=[
            SkippedEntry(
                source=f"{s.source}[{s.index}]",
                reason=f"{s.resource_type or 'entry'}: {s.reason}",
            )
            for s in trace.skipped
        ],
        findings=[FindingRecord.from_finding(f) for f in trace.findings],
        cards=[
            CardRecord(
                uuid=c.uuid or "",
                summary=c.summary,
                indicator=c.indicator,
                rule=f.rule,
                outcome=f.outcome,
                suggestion_uuids=[s.uuid or "" for s in c.suggestions],
                # What the wire offered, so feedback can be checked against this very card.
                override_reasons=[OfferedReason(system=o.system, code=o.code, display=o.display)
                                  for o in c.overrideReasons],
            )
            for c, f in zip(trace.cards, trace.findings, strict=True)
        ],
        catalogue_version=trace.catalogue_version,
        value_set_versions=dict(trace.value_set_versions),
        rule_versions=dict(trace.rule_versions),
        thresholds=thresholds,
    )
