"""One service call from validated JSON to response, with its audit record.

The order is the architecture's arrow: wire model → prefetch → record → rules → catalogue →
response → audit. Nothing here knows HTTP; the route turns ``Outcome`` into a response.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from cds_service.api.auth import ClientIdentity
from cds_service.api.discovery import ServiceSpec
from cds_service.api.errors import ApiError, operation_outcome
from cds_service.audit.models import CallRecord, CardRecord, FindingRecord, QueryRecord
from cds_service.catalogue import Catalogue
from cds_service.config import Settings
from cds_service.fhir.client import FhirClient
from cds_service.fhir.parse import parse_record
from cds_service.fhir.prefetch import Resolved, required_missing, resolve
from cds_service.hooks.models import CONTEXT_MODELS, Card, CdsRequest, CdsResponse
from cds_service.rules import evaluate
from cds_service.rules.finding import Finding
from cds_service.terminology import Terminology

log = logging.getLogger("itb_cds.engine")

# Card and suggestion uuids derive from hookInstance so that a retried call (same
# hookInstance, possibly on another worker) returns the same uuids and feedback still joins.
_UUID_NAMESPACE = uuid.UUID("6f1c3c1e-2b7e-4c55-9a53-7b0c5d1e8f11")


def validation_details(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors()[:20]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        out.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
    return out


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    record: CallRecord | None = None
    findings: list[Finding] = field(default_factory=list)


def _stable_uuids(cards: list[Card], hook_instance: str) -> list[Card]:
    out = []
    for i, card in enumerate(cards):
        topic = card.source.topic.code if card.source.topic else ""
        base = f"{hook_instance}:{i}:{topic}"
        suggestions = [
            s.model_copy(update={"uuid": str(uuid.uuid5(_UUID_NAMESPACE, f"{base}:s{j}"))})
            for j, s in enumerate(card.suggestions)
        ]
        out.append(
            card.model_copy(
                update={
                    "uuid": str(uuid.uuid5(_UUID_NAMESPACE, base)),
                    "suggestions": suggestions,
                }
            )
        )
    return out


def _payload_hash(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Engine:
    settings: Settings
    terminology: Terminology
    catalogue: Catalogue
    fhir: FhirClient
    clock: Callable[[], datetime]

    def versions(self) -> dict[str, Any]:
        return {
            "catalogue": self.catalogue.version,
            "valueSets": self.terminology.versions,
            "thresholds": self.settings.thresholds(),
        }

    async def invoke(
        self, service: ServiceSpec, body: Any, identity: ClientIdentity | None
    ) -> Outcome:
        received = datetime.now(UTC)
        started = time.perf_counter()
        try:
            request = CdsRequest.model_validate(body)
        except ValidationError as exc:
            raise ApiError(400, "invalid CDS Hooks request", details=validation_details(exc))
        if request.hook != service.hook:
            raise ApiError(
                400, f"service {service.id} answers hook {service.hook}, not {request.hook}"
            )
        try:
            context = CONTEXT_MODELS[service.hook].model_validate(request.context)
        except ValidationError as exc:
            details = [f"context.{d}" for d in validation_details(exc)]
            raise ApiError(400, f"invalid {service.hook} context", details=details) from None

        resolved: Resolved = await resolve(
            service.id,
            request.context,
            request.prefetch,
            request.fhirServer,
            request.access_token(),
            self.fhir,
            self.settings,
        )
        now = self.clock()
        missing = required_missing(resolved)
        base = dict(
            hook_instance=str(request.hookInstance),
            service_id=service.id,
            hook=service.hook,
            received_at=received,
            client_iss=identity.iss if identity else None,
            client_sub=identity.sub if identity else None,
            client_tenant=identity.tenant if identity else None,
            user_id=context.userId,
            patient_id=context.patientId,
            encounter_id=context.encounterId,
            prefetch_supplied=list(resolved.supplied),
            prefetch_fetched=list(resolved.fetched),
            prefetch_missing=list(resolved.missing),
            prefetch_failed=[f"{k}: {v}" for k, v in resolved.failed.items()],
            fhir_queries=[
                QueryRecord(
                    key=q.key, url=q.url, status=q.status, latency_ms=q.latency_ms,
                    pages=q.pages, error=q.error,
                )
                for q in resolved.queries
            ],
            prefetch_sha256=_payload_hash(request.prefetch) if request.prefetch else None,
            versions=self.versions(),
        )
        if missing:
            message = "required data could not be obtained: " + ", ".join(missing)
            body_412 = operation_outcome(412, message)
            record = CallRecord(
                **base,
                answered_at=datetime.now(UTC),
                duration_ms=(time.perf_counter() - started) * 1000,
                http_status=412,
                error=message,
            )
            return Outcome(412, body_412, record)

        draft_orders = getattr(context, "draftOrders", None)
        record_in = parse_record(
            resolved.resources, draft_orders, self.terminology.observation_filter
        )
        findings = evaluate(service.id, record_in, now, self.settings, self.terminology)
        cards = self.catalogue.render(
            findings,
            patient_id=context.patientId,
            now=now,
            terminology_versions=self.terminology.versions,
        )
        cards = _stable_uuids(cards, str(request.hookInstance))
        response = CdsResponse(cards=cards)
        wire = response.to_wire()
        record = CallRecord(
            **base,
            answered_at=datetime.now(UTC),
            duration_ms=(time.perf_counter() - started) * 1000,
            http_status=200,
            skipped_entries=[
                f"{s.source}[{s.index}] {s.resource_type or '?'}: {s.reason}"
                for s in record_in.skipped
            ],
            findings=[FindingRecord.from_finding(f) for f in findings],
            cards=[
                CardRecord(
                    uuid=c.uuid or "",
                    summary=c.summary,
                    indicator=c.indicator,
                    rule=f.rule,
                    outcome=f.outcome,
                    suggestion_uuids=[s.uuid or "" for s in c.suggestions],
                )
                for c, f in zip(cards, _findings_for_cards(cards, findings), strict=True)
            ],
        )
        return Outcome(200, wire, record, findings)


def _findings_for_cards(cards: list[Card], findings: list[Finding]) -> list[Finding]:
    """The finding behind each card, read back from the card's itb-cds.finding extension."""
    by_key: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        by_key.setdefault((f.rule, f.outcome), []).append(f)
    out = []
    for card in cards:
        ext = (card.extension or {}).get("itb-cds.finding", {})
        bucket = by_key.get((ext.get("rule", ""), ext.get("outcome", "")), [])
        out.append(bucket.pop(0))
    return out
