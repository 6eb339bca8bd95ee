"""One service call from validated JSON to response, with its audit record.

The order is the architecture's arrow: wire model → prefetch → record → rules → catalogue →
response → audit. Nothing here knows HTTP; the route turns ``Outcome`` into a response.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from cds_service.api.discovery import ServiceSpec
from cds_service.api.errors import ApiError, operation_outcome
from cds_service.audit.chain import payload_digest
from cds_service.audit.models import CallRecord, CardRecord, FindingRecord, QueryRecord
from cds_service.audit.models import ClientIdentity as AuditClient
from cds_service.audit.models import SkippedEntry as AuditSkipped
from cds_service.auth.tokens import ClientIdentity
from cds_service.catalogue import Catalogue
from cds_service.config import Settings
from cds_service.fhir.client import FhirClient
from cds_service.fhir.memo import RecordMemo, ValidationMemo
from cds_service.fhir.prefetch import Resolved, build_record, required_missing, resolve
from cds_service.fhir.record import PatientRecord
from cds_service.hooks.models import CONTEXT_MODELS, Card, CdsRequest, CdsResponse
from cds_service.rules import RULES, evaluate
from cds_service.rules.relevance import Screen, make_screen
from cds_service.terminology import Terminology

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


@dataclass
class Engine:
    settings: Settings
    terminology: Terminology
    catalogue: Catalogue
    fhir: FhirClient
    clock: Callable[[], datetime]
    screen: Screen = field(init=False)
    validation_memo: ValidationMemo = field(init=False)
    record_memo: RecordMemo = field(init=False)

    def __post_init__(self) -> None:
        self.screen = make_screen(self.terminology)
        self.validation_memo = ValidationMemo(self.settings.validation_memo_entries)
        self.record_memo = RecordMemo(self.settings.record_memo_entries)

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], datetime]) -> Engine:
        """Load the value sets and the card catalogue (a bad one stops here) and open the
        process's FHIR client; ``aclose`` closes it."""
        return cls(
            settings,
            Terminology.load(settings),
            Catalogue.load(settings.cards_dir),
            FhirClient(settings),
            clock,
        )

    async def aclose(self) -> None:
        await self.fhir.aclose()

    def _record(self, service_id: str, resolved: Resolved, draft_orders: object | None,
                prefetch_sha256: dict[str, str]) -> PatientRecord:
        whole = not (resolved.fetched or resolved.failed or resolved.missing
                     or resolved.query_log)
        key = RecordMemo.key(service_id, prefetch_sha256, draft_orders) if whole else None
        if key is not None:
            found = self.record_memo.get(key)
            if found is not None:
                return found
        record = build_record(
            resolved,
            draft_orders,
            self.terminology.observation_filter,
            self.screen,
            self.validation_memo,
        )
        if key is not None:
            self.record_memo.put(key, record)
        return record

    async def invoke(
        self, service: ServiceSpec, body: Any, identity: ClientIdentity | None
    ) -> Outcome:
        received = datetime.now(UTC)
        started = time.perf_counter()
        try:
            request = CdsRequest.model_validate(body)
        except ValidationError as exc:
            details = validation_details(exc)
            raise ApiError(400, "invalid CDS Hooks request", details=details) from None
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
        base = CallRecord(
            hook_instance=str(request.hookInstance),
            service_id=service.id,
            hook=service.hook,
            received_at=received,
            client=AuditClient(
                iss=identity.iss if identity else None,
                sub=identity.sub if identity else None,
                tenant=identity.tenant if identity else None,
            ),
            user_id=context.userId,
            patient_id=context.patientId,
            encounter_id=context.encounterId,
            fhir_server=request.fhirServer,
            prefetch_supplied=list(resolved.supplied),
            prefetch_fetched=list(resolved.fetched),
            prefetch_missing=list(resolved.missing),
            prefetch_failed=[f"{f.key}: {f.reason}" for f in resolved.failed],
            prefetch_sha256={
                key: payload_digest(value) for key, value in (request.prefetch or {}).items()
            },
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
            catalogue_version=self.catalogue.version,
            value_set_versions=self.terminology.versions,
            rule_versions={rule: spec[0] for rule, spec in RULES.items()},
            thresholds=self.settings.thresholds(),
            answered_at=received,
            http_status=0,
        )
        if missing:
            message = "required data could not be obtained: " + ", ".join(missing)
            failures = {f.key: f.reason for f in resolved.failed}
            details = [
                f"{key}: {failures.get(key, 'not in prefetch and no fhirServer')}"
                for key in missing
            ]
            record = base.model_copy(
                update={
                    "answered_at": datetime.now(UTC),
                    "duration_ms": (time.perf_counter() - started) * 1000,
                    "http_status": 412,
                    "error": message,
                }
            )
            return Outcome(412, operation_outcome(412, message, details=details), record)

        draft_orders = getattr(context, "draftOrders", None)
        record_in = self._record(service.id, resolved, draft_orders, base.prefetch_sha256)
        findings = self.catalogue.order(
            evaluate(service.id, record_in, now, self.settings, self.terminology)
        )
        cards = self.catalogue.render(
            findings,
            patient_id=context.patientId,
            now=now,
            terminology_versions=self.terminology.versions,
            unavailable=record_in.unavailable,
        )
        cards = _stable_uuids(cards, str(request.hookInstance))
        wire = CdsResponse(cards=cards).to_wire()
        record = base.model_copy(
            update={
                "answered_at": datetime.now(UTC),
                "duration_ms": (time.perf_counter() - started) * 1000,
                "http_status": 200,
                "skipped": [
                    AuditSkipped(
                        source=f"{s.source}[{s.index}]",
                        reason=f"{s.resource_type or 'entry'}: {s.reason}",
                    )
                    for s in record_in.skipped
                ],
                "findings": [FindingRecord.from_finding(f) for f in findings],
                "cards": [
                    CardRecord(
                        uuid=c.uuid or "",
                        summary=c.summary,
                        indicator=c.indicator,
                        rule=f.rule,
                        outcome=f.outcome,
                        suggestion_uuids=[s.uuid or "" for s in c.suggestions],
                    )
                    for c, f in zip(cards, findings, strict=True)
                ],
            }
        )
        return Outcome(200, wire, record)

