"""Every error leaves as a FHIR OperationOutcome, with no stack trace and no echo of secrets."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cds_service.api.responses import JsonResponse
from cds_service.errors import (
    CdsError,
    FhirServerNotAllowed,
    InvalidRequest,
    RequiredDataMissing,
    validation_details,
)

log = logging.getLogger("itb_cds.api")

# OperationOutcome.issue.code per HTTP status (FHIR R4 issue-type value set).
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    412: "incomplete",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    431: "too-costly",
    429: "throttled",
    500: "exception",
    503: "transient",
}


def operation_outcome(
    status: int, diagnostics: str | None, *, details: list[str] | None = None
) -> dict[str, Any]:
    issues: list[dict[str, Any]] = []
    code = _ISSUE_CODES.get(status, "processing")
    severity = "fatal" if status >= 500 else "error"
    if diagnostics:
        issues.append({"severity": severity, "code": code, "diagnostics": diagnostics})
    else:
        issues.append({"severity": severity, "code": code})
    for detail in details or []:
        issues.append({"severity": "error", "code": code, "diagnostics": detail})
    return {"resourceType": "OperationOutcome", "issue": issues}


class ApiError(Exception):
    """An error with an HTTP status that must reach the client as an OperationOutcome."""

    def __init__(
        self,
        status: int,
        message: str | None,
        *,
        details: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or str(status))
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def outcome_response(
    status: int,
    message: str | None,
    *,
    details: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    return JsonResponse(
        operation_outcome(status, message, details=details),
        status_code=status,
        headers=headers,
        media_type="application/fhir+json",
    )


# The HTTP status of each domain error: the one place the engine's errors meet HTTP.
_DOMAIN_STATUS: dict[type[CdsError], int] = {
    InvalidRequest: 400, RequiredDataMissing: 412, FhirServerNotAllowed: 403}


def domain_error_outcome(exc: CdsError) -> tuple[int, dict[str, Any]]:
    status = next((code for kind, code in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 500)
    return status, operation_outcome(status, exc.message, details=exc.details)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JsonResponse:
        return outcome_response(exc.status, exc.message, details=exc.details, headers=exc.headers)

    @app.exception_handler(CdsError)
    async def _domain_error(_: Request, exc: CdsError) -> JsonResponse:
        status, body = domain_error_outcome(exc)
        return JsonResponse(body, status_code=status, media_type="application/fhir+json")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JsonResponse:
        return outcome_response(400, "invalid request", details=validation_details(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JsonResponse:
        messages = {404: "not found", 405: "method not allowed"}
        message = messages.get(exc.status_code, str(exc.detail) if exc.detail else None)
        return outcome_response(exc.status_code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JsonResponse:
        # The type name only: messages can carry request data.
        log.error("internal error on %s %s: %s", request.method, request.url.path,
                  type(exc).__name__)
        return outcome_response(500, "internal error")
