"""One service call: a CDS Hooks request in, cards and a typed call trace out.

The order is the architecture's arrow: wire model → prefetch → record → rules → catalogue →
response. Nothing here knows HTTP or the audit store: a call that cannot be answered raises a
domain error (``cds_service.errors``), and the caller records the trace.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from cds_service.audit.chain import payload_digest
from cds_service.catalogue import Catalogue
from cds_service.config import Settings
from cds_service.errors import (
    FhirServerNotAllowed,
    InvalidRequest,
    RequiredDataMissing,
    validation_details,
)
from cds_service.fhir.allowlist import FhirServerPolicy, FhirServerRefused
from cds_service.fhir.client import FhirClient
from cds_service.fhir.memo import RecordMemo, ValidationMemo
from cds_service.fhir.parse import DRAFT_ORDERS, Screen, proposed_resources
from cds_service.fhir.prefetch import Resolved, build_record, required_missing, resolve
from cds_service.fhir.record import PatientRecord
from cds_service.fhir.relevance import make_screen
from cds_service.hooks.models import Card, CdsRequest, CdsResponse, PatientViewContext
from cds_service.rules import RULES, evaluate
from cds_service.rules.finding import Finding
from cds_service.services import ServiceSpec
from cds_service.terminology import Terminology
from cds_service.trace import CallTrace

# Card and suggestion uuids derive from hookInstance so that a retried call (same
# hookInstance, possibly on another worker) returns the same uuids and feedback still joins.
_UUID_NAMESPACE = uuid.UUID("6f1c3c1e-2b7e-4c55-9a53-7b0c5d1e8f11")


@dataclass(frozen=True, slots=True)
class CallResult:
    """A call answered with cards: the wire response and what the audit log records."""

    body: dict[str, Any]
    trace: CallTrace


@dataclass(frozen=True, slots=True)
class _Call:
    """A validated request, and what the trace records of it from the start."""

    request: CdsRequest
    context: PatientViewContext
    received: datetime
    started: float
    digests: dict[str, str]  # prefetch key -> payload SHA-256 (audit record and record memo)


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
    servers: FhirServerPolicy = field(default_factory=FhirServerPolicy)
    screen: Screen = field(init=False)
    validation_memo: ValidationMemo = field(init=False)
    record_memo: RecordMemo = field(init=False)

    def __post_init__(self) -> None:
        self.screen = make_screen(self.terminology)
        self.validation_memo = ValidationMemo(self.settings.validation_memo_entries)
        self.record_memo = RecordMemo(self.settings.record_memo_entries)

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], datetime],
              servers: FhirServerPolicy | None = None) -> Engine:
        """Load the value sets and the card catalogue (a bad one stops here) and open the
        process's FHIR client; ``aclose`` closes it. ``servers``: which FHIR servers may be
        queried (default: the settings' allowlist, without per-issuer entries)."""
        return cls(
            settings,
            Terminology.load(settings),
            Catalogue.load(settings.cards_dir),
            FhirClient(settings),
            clock,
            servers if servers is not None else FhirServerPolicy.for_settings(settings),
        )

    async def aclose(self) -> None:
        await self.fhir.aclose()

    def _record(self, service_id: str, resolved: Resolved, draft_orders: object | None,
                prefetch_sha256: dict[str, str], draft_source: str = DRAFT_ORDERS
                ) -> PatientRecord:
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
            draft_source,
        )
        if key is not None:
            self.record_memo.put(key, record)
        return record

    def _parse(self, service: ServiceSpec, body: Any) -> _Call:
        received = datetime.now(UTC)
        started = time.perf_counter()
        try:
            request = CdsRequest.model_validate(body)
        except ValidationError as exc:
            raise InvalidRequest(
                "invalid CDS Hooks request", validation_details(exc.errors())
            ) from None
        if request.hook != service.hook:
            raise InvalidRequest(
                f"service {service.id} answers hook {service.hook}, not {request.hook}"
            )
        try:
            context = service.context.model_validate(request.context)
        except ValidationError as exc:
            details = validation_details(exc.errors(), prefix="context.")
            raise InvalidRequest(f"invalid {service.hook} context", details) from None
        digests = {key: payload_digest(value) for key, value in (request.prefetch or {}).items()}
        return _Call(request, context, received, started, digests)

    def _trace(self, service: ServiceSpec, call: _Call, resolved: Resolved, status: int, *,
               error: str | None = None, record: PatientRecord | None = None,
               findings: tuple[Finding, ...] = (), cards: tuple[Card, ...] = ()) -> CallTrace:
        request, context = call.request, call.context
        return CallTrace(
            hook_instance=str(request.hookInstance),
            service_id=service.id,
            hook=service.hook,
            received_at=call.received,
            answered_at=datetime.now(UTC),
            duration_ms=(time.perf_counter() - call.started) * 1000,
            status=status,
            user_id=context.userId,
            patient_id=context.patientId,
            encounter_id=context.encounterId,
            fhir_server=request.fhirServer,
            resolved=resolved,
            prefetch_sha256=call.digests,
            catalogue_version=self.catalogue.version,
            value_set_versions=self.terminology.versions,
            rule_versions={rule: spec[0] for rule, spec in RULES.items()},
            thresholds=self.settings.thresholds(),
            error=error,
            skipped=record.skipped if record is not None else (),
            findings=findings,
            cards=cards,
        )

    async def invoke(self, service: ServiceSpec, body: Any, *, issuer: str | None = None,
                     tenant: str | None = None) -> CallResult:
        """Answer one call (``issuer``/``tenant``: the verified caller, which decides the FHIR
        servers it may name). Raises InvalidRequest or FhirServerNotAllowed (nothing done,
        nothing to audit) or RequiredDataMissing (carrying the trace to audit)."""
        call = self._parse(service, body)
        request, context = call.request, call.context
        server = request.fhirServer
        try:
            resolved = await resolve(
                service.templates(self.settings),
                request.context,
                request.prefetch,
                server,
                request.access_token(),
                self.fhir,
                self.settings.fhir_budget_seconds,
                server_allowed=server is None or self.servers.allows(server, issuer, tenant),
            )
        except FhirServerRefused:
            raise FhirServerNotAllowed("fhirServer is not a FHIR server this service may "
                                       "query for this client") from None
        now = self.clock()
        missing = required_missing(resolved, service.required_keys)
        if missing:
            message = "required data could not be obtained: " + ", ".join(missing)
            failures = {f.key: f.reason for f in resolved.failed}
            details = [
                f"{key}: {failures.get(key, 'not in prefetch and no fhirServer')}"
                for key in missing
            ]
            trace = self._trace(service, call, resolved, 412, error=message)
            raise RequiredDataMissing(message, details, trace)

        drafts = context.proposals()
        source = context.PROPOSALS or DRAFT_ORDERS
        record_in = self._record(service.id, resolved, drafts, call.digests, source)
        findings = self.catalogue.order(
            evaluate(service.rules, record_in, now, self.settings, self.terminology)
        )
        # A finding about a proposed resource (appointment-book) suggests moving that resource.
        targets = {f.target_ref for f in findings if f.target_ref}
        subject = record_in.patient.ref if record_in.patient is not None else None
        cards = self.catalogue.render(
            findings,
            patient_id=context.patientId,
            now=now,
            terminology_versions=self.terminology.versions,
            unavailable=record_in.unavailable,
            proposals=proposed_resources(drafts, subject, targets, source) if targets else {},
        )
        cards = _stable_uuids(cards, str(request.hookInstance))
        wire = CdsResponse(cards=cards).to_wire()
        trace = self._trace(service, call, resolved, 200, record=record_in,
                            findings=tuple(findings), cards=tuple(cards))
        return CallResult(wire, trace)
