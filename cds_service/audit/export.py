"""Export: FHIR R4 AuditEvent + GuidanceResponse (NDJSON) and CSV for spreadsheets.

AuditEvent follows IHE Basic Audit Log Patterns: a RESTful ``operation`` (the CDS Hooks
service call) with the CDS client and the user as agents, the service as source/observer and
the patient as entity. The GuidanceResponse says what was advised.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from cds_service.audit.models import CallRecord, StoredFeedback
from cds_service.config import Settings

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ITB_AUDIT_SUBTYPE = "urn:itb-cds:audit-event-subtype"
ITB_SERVICE = "urn:itb-cds:cds-service"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
URI = "urn:ietf:rfc:3986"

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
Resource = dict[str, Any]


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fhir_id(prefix: str, value: str) -> str:
    candidate = f"{prefix}-{value}"
    if _FHIR_ID.match(candidate):
        return candidate
    return f"{prefix}-{hashlib.sha256(value.encode('utf-8')).hexdigest()[:48]}"


def _identifier(value: str, fallback_system: str) -> dict[str, str]:
    try:
        return {"system": URI, "value": f"urn:uuid:{uuid.UUID(value)}"}
    except ValueError:
        return {"system": fallback_system, "value": value}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _who(value: str) -> dict[str, Any]:
    # CDS Hooks userId is a FHIR reference ("Practitioner/123"); keep it one where it is.
    if re.fullmatch(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}", value):
        return {"reference": value}
    return {"identifier": {"value": value}}


def _outcome(status: int) -> str:
    if status < 400:
        return "0"  # success
    return "4" if status < 500 else "8"  # minor / serious failure


def _source(settings: Settings, service_id: str | None) -> dict[str, Any]:
    observer: dict[str, Any] = {"display": f"ITB CDS service {service_id or ''}".strip()}
    if service_id:
        observer["identifier"] = {"system": ITB_SERVICE, "value": service_id}
    return {
        "site": settings.public_base_url,
        "observer": observer,
        "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
    }


def _service_agent(service_id: str | None) -> dict[str, Any]:
    who: dict[str, Any] = {"display": service_id or "ITB CDS"}
    if service_id:
        who["identifier"] = {"system": ITB_SERVICE, "value": service_id}
    return {
        "type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]},
        "who": who,
        "requestor": False,
    }


def _call_agents(rec: CallRecord) -> list[dict[str, Any]]:
    client: dict[str, Any] = {
        "type": {"coding": [_coding(DCM, "110153", "Source Role ID")]},
        "requestor": False,
    }
    if rec.client.iss and rec.client.sub:
        client["who"] = {"identifier": {"system": rec.client.iss, "value": rec.client.sub},
                         "display": rec.client.iss}
    else:
        client["who"] = {"display": rec.client.iss or "unauthenticated CDS client"}
    if rec.client.tenant:
        client["altId"] = rec.client.tenant
    agents = [client]
    if rec.user_id:
        agents.append({
            "type": {"coding": [_coding(PARTICIPATION, "IRCP", "information recipient")]},
            "who": _who(rec.user_id),
            "requestor": True,
        })
    agents.append(_service_agent(rec.service_id))
    return agents


def _call_entities(rec: CallRecord) -> list[dict[str, Any]]:
    details = [
        {"type": "hook", "valueString": rec.hook},
        {"type": "hookInstance", "valueString": rec.hook_instance},
        {"type": "httpStatus", "valueString": str(rec.http_status)},
        {"type": "durationMs", "valueString": f"{rec.duration_ms:g}"},
    ]
    for name, keys in (("prefetchSupplied", rec.prefetch_supplied),
                       ("prefetchFetched", rec.prefetch_fetched),
                       ("prefetchMissing", rec.prefetch_missing),
                       ("prefetchFailed", rec.prefetch_failed)):
        if keys:
            details.append({"type": name, "valueString": ",".join(keys)})
    entities: list[dict[str, Any]] = [{
        "what": {"identifier": _identifier(rec.hook_instance, "urn:itb-cds:hook-instance")},
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "name": f"CDS Hooks {rec.hook} call",
        "detail": details,
    }]
    if rec.patient_id:
        entities.append({
            "what": {"reference": f"Patient/{rec.patient_id}"},
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        })
    if rec.encounter_id:
        entities.append({
            "what": {"reference": f"Encounter/{rec.encounter_id}"},
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
        })
    for q in rec.queries:
        query_details = [{"type": "prefetchKey", "valueString": q.key}]
        if q.status is not None:
            query_details.append({"type": "httpStatus", "valueString": str(q.status)})
        if q.latency_ms is not None:
            query_details.append({"type": "latencyMs", "valueString": f"{q.latency_ms:g}"})
        entities.append({
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "24", "Query"),
            "query": base64.b64encode(q.url.encode("utf-8")).decode("ascii"),
            "detail": query_details,
        })
    entities.append({
        "what": {"reference": f"GuidanceResponse/{fhir_id('gr', rec.hook_instance)}"},
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "3", "Report"),
    })
    return entities


def call_audit_event(rec: CallRecord, settings: Settings) -> Resource:
    event: Resource = {
        "resourceType": "AuditEvent",
        "id": fhir_id("call", rec.hook_instance),
        "type": _coding(AUDIT_EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [
            _coding(RESTFUL_INTERACTION, "operation", "operation"),
            _coding(ITB_AUDIT_SUBTYPE, "cds-hooks-service-call",
                    f"CDS Hooks service call ({rec.hook})"),
        ],
        "action": "E",
        "period": {"start": instant(rec.received_at), "end": instant(rec.answered_at)},
        "recorded": instant(rec.answered_at),
        "outcome": _outcome(rec.http_status),
        "purposeOfEvent": [{"coding": [_coding(ACT_REASON, "TREAT", "treatment")]}],
        "agent": _call_agents(rec),
        "source": _source(settings, rec.service_id),
        "entity": _call_entities(rec),
    }
    if rec.error:
        event["outcomeDesc"] = rec.error
    return event


def guidance_response(rec: CallRecord) -> Resource:
    if rec.http_status < 400:
        status = "success"
    elif rec.http_status == 412:
        status = "data-required"
    else:
        status = "failure"
    notes = [
        {"text": f"[{c.indicator}] {c.summary} (card {c.uuid}"
                 + (f"; {c.rule} {c.outcome}" if c.rule else "") + ")"}
        for c in rec.cards
    ] or [{"text": "No cards returned." if status == "success" else (rec.error or status)}]
    resource: Resource = {
        "resourceType": "GuidanceResponse",
        "id": fhir_id("gr", rec.hook_instance),
        "requestIdentifier": _identifier(rec.hook_instance, "urn:itb-cds:hook-instance"),
        "moduleCodeableConcept": {
            "coding": [_coding(ITB_SERVICE, rec.service_id)],
            "text": rec.service_id,
        },
        "status": status,
        "occurrenceDateTime": instant(rec.answered_at),
        "note": notes,
    }
    if rec.patient_id:
        resource["subject"] = {"reference": f"Patient/{rec.patient_id}"}
    if rec.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{rec.encounter_id}"}
    return resource


def call_resources(rec: CallRecord, settings: Settings) -> list[Resource]:
    return [call_audit_event(rec, settings), guidance_response(rec)]


def feedback_audit_event(fb: StoredFeedback, settings: Settings) -> Resource:
    r = fb.record
    details = [
        {"type": "outcome", "valueString": r.outcome},
        {"type": "outcomeTimestamp", "valueString": instant(r.outcome_timestamp)},
        {"type": "unknownCard", "valueString": "true" if fb.unknown_card else "false"},
    ]
    if r.accepted_suggestions:
        details.append({"type": "acceptedSuggestions",
                        "valueString": ",".join(r.accepted_suggestions)})
    if r.override_reason_code or r.override_reason_display:
        reason = "|".join(x or "" for x in (r.override_reason_system, r.override_reason_code))
        details.append({"type": "overrideReason",
                        "valueString": f"{reason} {r.override_reason_display or ''}".strip()})
    entities: list[dict[str, Any]] = [{
        "what": {"identifier": _identifier(r.card_uuid, "urn:itb-cds:card")},
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "name": "CDS Hooks card",
        "detail": details,
    }]
    if fb.hook_instance:
        entities.append({
            "what": {"reference": f"GuidanceResponse/{fhir_id('gr', fb.hook_instance)}"},
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "3", "Report"),
        })
    return {
        "resourceType": "AuditEvent",
        "id": fhir_id("feedback", str(fb.seq)),
        "type": _coding(AUDIT_EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [
            _coding(RESTFUL_INTERACTION, "operation", "operation"),
            _coding(ITB_AUDIT_SUBTYPE, "cds-hooks-feedback", "CDS Hooks card feedback"),
        ],
        "action": "C",
        "recorded": instant(r.received_at),
        "outcome": "0",
        "agent": [_service_agent(r.service_id)],
        "source": _source(settings, r.service_id),
        "entity": entities,
    }


CsvRow = dict[str, str]
CSV_FIELDS = (
    "seq", "kind", "time", "hook_instance", "service_id", "hook", "http_status",
    "duration_ms", "client_iss", "client_sub", "tenant", "user_id", "patient_id",
    "encounter_id", "findings", "cards", "card_uuid", "feedback_outcome", "override_reason",
    "unknown_card", "error",
)


def call_csv_row(seq: int, rec: CallRecord) -> CsvRow:
    return {
        "seq": str(seq),
        "kind": "call",
        "time": instant(rec.received_at),
        "hook_instance": rec.hook_instance,
        "service_id": rec.service_id,
        "hook": rec.hook,
        "http_status": str(rec.http_status),
        "duration_ms": f"{rec.duration_ms:g}",
        "client_iss": rec.client.iss or "",
        "client_sub": rec.client.sub or "",
        "tenant": rec.client.tenant or "",
        "user_id": rec.user_id or "",
        "patient_id": rec.patient_id or "",
        "encounter_id": rec.encounter_id or "",
        "findings": "; ".join(f"{f.rule} {f.outcome}" for f in rec.findings),
        "cards": "; ".join(f"[{c.indicator}] {c.summary}" for c in rec.cards),
        "error": rec.error or "",
    }


def feedback_csv_row(fb: StoredFeedback) -> CsvRow:
    r = fb.record
    return {
        "seq": str(fb.seq),
        "kind": "feedback",
        "time": instant(r.received_at),
        "hook_instance": fb.hook_instance or "",
        "service_id": r.service_id or "",
        "card_uuid": r.card_uuid,
        "feedback_outcome": r.outcome,
        "override_reason": r.override_reason_code or r.override_reason_display or "",
        "unknown_card": "true" if fb.unknown_card else "false",
    }


def spreadsheet_text(value: str) -> str:
    """A CSV cell a spreadsheet keeps as text: a leading = + - @ would make it evaluate the
    cell, and chart text must stay text (every CSV the service writes goes through this)."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def csv_lines(rows: Iterable[CsvRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow({k: spreadsheet_text(v) for k, v in row.items()})
        yield buffer.getvalue()
