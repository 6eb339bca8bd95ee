"""The OpenAPI document, with the CDS Hooks bodies the routes read and write by hand.

The routes parse their bodies themselves (size, content type and nesting limits come first),
so FastAPI cannot see the models; they are added here from the same wire models that
``itb-cds schema`` writes, with the FHIR OperationOutcome every error carries.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from cds_service.hooks.models import CdsRequest, CdsResponse, Discovery, FeedbackRequest
from cds_service.services import SERVICES_BY_ID

REF = "#/components/schemas/{model}"
ERROR_STATUSES = ("400", "401", "403", "404", "405", "412", "413", "415", "500", "503")
ADMIN_STATUSES = ("400", "401", "404", "409", "429", "500", "503")
FHIR_STATUSES = ("400", "404", "500", "503")
WORKLIST_STATUSES = ("400", "401", "403", "404", "500", "502", "503")
# The media types of the operations that answer something other than JSON on success.
SUCCESS_MEDIA: dict[str, tuple[str, ...]] = {
    "/admin/governance": ("text/html",),
    "/admin/governance.csv": ("text/csv",),
    "/worklist": ("text/html", "application/json", "text/csv", "text/calendar"),
}

OPERATION_OUTCOME: dict[str, Any] = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}
FEEDBACK_SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": ["spooled", "stored", "duplicates", "unknownCards"],
    "properties": {
        **{name: {"type": "integer", "minimum": 0}
           for name in ("spooled", "stored", "duplicates", "unknownCards")},
        # Only when an item did not fit the card it names: stored, flagged, counted apart.
        "flags": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "card", "flags"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "card": {"type": "string"},
                    "flags": {"type": "array", "items": {"type": "string", "enum": [
                        "unknown-card", "other-service", "reason-not-offered",
                        "suggestion-not-on-card"]}},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


def _content(schema: dict[str, Any], *media: str) -> dict[str, Any]:
    return {m: {"schema": schema} for m in media}


def _errors(statuses: tuple[str, ...] = ERROR_STATUSES) -> dict[str, Any]:
    body = {"$ref": "#/components/schemas/OperationOutcome"}
    return {
        code: {
            "description": "FHIR OperationOutcome",
            "content": _content(body, "application/fhir+json", "application/json"),
        }
        for code in statuses
    }


def documented_openapi(app: FastAPI, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (FastAPI's own document) completed with the CDS Hooks bodies and errors."""
    doc = copy.deepcopy(base)
    _, wire = models_json_schema(
        [
            (CdsRequest, "validation"),
            (CdsResponse, "serialization"),
            (FeedbackRequest, "validation"),
            (Discovery, "serialization"),
        ],
        ref_template=REF,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(wire["$defs"])
    schemas["OperationOutcome"] = OPERATION_OUTCOME
    schemas["FeedbackSummary"] = FEEDBACK_SUMMARY
    service_id = {
        "name": "service_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": sorted(SERVICES_BY_ID)},
    }

    def post(body: str, ok: str) -> dict[str, Any]:
        return {
            "parameters": [service_id],
            "requestBody": {
                "required": True,
                "content": _content({"$ref": f"#/components/schemas/{body}"}, "application/json"),
            },
            "responses": {
                "200": {
                    "description": "OK",
                    "content": _content({"$ref": f"#/components/schemas/{ok}"}, "application/json"),
                },
                **_errors(),
            },
        }

    paths = doc["paths"]
    paths["/cds-services/{service_id}"]["post"].update(post("CdsRequest", "CdsResponse"))
    paths["/cds-services/{service_id}/feedback"]["post"].update(
        post("FeedbackRequest", "FeedbackSummary")
    )
    paths["/cds-services"]["get"]["responses"] = {
        "200": {
            "description": "OK",
            "content": _content({"$ref": "#/components/schemas/Discovery"}, "application/json"),
        },
        **_errors(),
    }
    if "/metrics" in paths:
        paths["/metrics"]["get"]["responses"] = {
            "200": {"description": "Prometheus text", "content": _content({}, "text/plain")}
        }
    for path in ("/cds-services/{service_id}", "/cds-services/{service_id}/feedback"):
        paths[path]["post"]["responses"].pop("422", None)  # schema violations answer 400
    for path, media in SUCCESS_MEDIA.items():
        if path in paths:
            paths[path]["get"]["responses"]["200"] = {
                "description": "OK", "content": _content({"type": "string"}, *media)}
    for path, operations in paths.items():
        if path.startswith("/admin/"):  # present only when admin is on (api/admin.py)
            operations["get"]["responses"].update(_errors(ADMIN_STATUSES))
        elif path == "/worklist":  # present only when configured (api/worklist.py)
            operations["get"]["responses"].pop("422", None)
            operations["get"]["responses"].update(_errors(WORKLIST_STATUSES))
        elif path.startswith("/fhir"):  # present only when the sandbox is on
            ok = {"description": "FHIR resource or Bundle",
                  "content": _content({"type": "object"}, "application/fhir+json")}
            operations["get"]["responses"] = {"200": ok, **_errors(FHIR_STATUSES)}
    return doc


def install_openapi(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = documented_openapi(app, original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
