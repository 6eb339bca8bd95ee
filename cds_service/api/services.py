"""Discovery, service invocation and feedback: the CDS Hooks endpoints."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import Response

from cds_service.api.body import read_json
from cds_service.api.errors import ApiError
from cds_service.api.responses import JsonResponse
from cds_service.audit.models import ClientIdentity as AuditClient
from cds_service.audit.models import FeedbackRecord
from cds_service.audit.trace import call_record
from cds_service.auth.tokens import ClientIdentity, Unauthorized
from cds_service.errors import FhirServerNotAllowed, RequiredDataMissing, validation_details
from cds_service.hooks.models import FeedbackItem, FeedbackRequest
from cds_service.runtime import Runtime
from cds_service.services import SERVICES_BY_ID, ServiceSpec

router = APIRouter()
log = logging.getLogger("itb_cds.api")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def client_identity(request: Request) -> ClientIdentity | None:
    rt = runtime(request)
    try:
        return await rt.auth.authenticate(request.headers.get("authorization"), request.url.path)
    except Unauthorized:
        raise ApiError(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"}) from None


Identity = Annotated[ClientIdentity | None, Depends(client_identity)]


def service_or_404(service_id: str) -> ServiceSpec:
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise ApiError(404, f"unknown CDS service: {service_id[:64]}")
    return service


@router.get("/cds-services")
async def discovery(request: Request, _: Identity) -> Response:
    return JsonResponse(runtime(request).discovery)


@router.post("/cds-services/{service_id}")
async def invoke(service_id: str, request: Request, identity: Identity) -> Response:
    rt = runtime(request)
    service = service_or_404(service_id)
    body = await read_json(
        request, max_bytes=rt.settings.max_body_bytes, max_depth=rt.settings.max_json_depth
    )
    client = AuditClient(iss=identity.iss, sub=identity.sub, tenant=identity.tenant) \
        if identity else None
    try:
        result = await rt.engine.invoke(service, body, issuer=identity.iss if identity else None,
                                        tenant=identity.tenant if identity else None)
    except FhirServerNotAllowed:
        log.warning("refused a %s call naming a fhirServer outside the allowlist (issuer %s)",
                    service.id, identity.iss if identity else "-")
        raise
    except RequiredDataMissing as exc:
        # The call happened (queries were sent): it is audited before the 412 leaves.
        record = call_record(exc.trace, client)
        await rt.store.record_call_async(record)
        rt.metrics.observe(service.id, 412, record)
        raise
    record = call_record(result.trace, client)
    # Durable (database or fsync'd spool) before the response leaves.
    await rt.store.record_call_async(record)
    rt.metrics.observe(service.id, 200, record)
    return JsonResponse(result.body, status_code=200, media_type="application/json")


@router.post("/cds-services/{service_id}/feedback")
async def feedback(service_id: str, request: Request, _: Identity) -> Response:
    rt = runtime(request)
    service = service_or_404(service_id)
    body = await read_json(
        request, max_bytes=rt.settings.max_body_bytes, max_depth=rt.settings.max_json_depth
    )
    try:
        parsed = FeedbackRequest.model_validate(body)
    except ValidationError as exc:
        raise ApiError(400, "invalid feedback", details=validation_details(exc.errors())) from None
    received = datetime.now(UTC)
    try:
        records = _feedback_records(service.id, parsed, received)
    except ValidationError as exc:  # the wire model bounds what the record holds; a backstop
        raise ApiError(400, "invalid feedback", details=validation_details(exc.errors())) from None
    summary = await rt.store.record_feedback_async(service.id, records)
    answer: dict[str, object] = {
        "spooled": summary.spooled,
        "stored": summary.stored,
        "duplicates": summary.duplicates,
        "unknownCards": summary.unknown_cards,
    }
    if summary.flagged:
        # Stored all the same, and counted apart: the client learns which items (by their
        # place in the post) did not fit the card they name, and why.
        answer["flags"] = [{"index": f.index, "card": f.card, "flags": list(f.flags)}
                           for f in summary.flagged]
    rt.metrics.feedback(service.id, records)
    return JsonResponse(answer)


def _feedback_records(service_id: str, parsed: FeedbackRequest, received: datetime
                      ) -> list[FeedbackRecord]:
    return [
        FeedbackRecord(
            card_uuid=item.card,
            outcome=item.outcome,
            outcome_timestamp=item.outcomeTimestamp,
            accepted_suggestions=[s.id for s in item.acceptedSuggestions],
            override_reason_code=_reason(item, "code"),
            override_reason_system=_reason(item, "system"),
            override_reason_display=_reason(item, "display"),
            user_comment=item.overrideReason.userComment if item.overrideReason else None,
            service_id=service_id,
            received_at=received,
        )
        for item in parsed.feedback
    ]


def _reason(item: FeedbackItem, attr: str) -> str | None:
    if item.overrideReason is None or item.overrideReason.reason is None:
        return None
    value: str | None = getattr(item.overrideReason.reason, attr)
    return value
