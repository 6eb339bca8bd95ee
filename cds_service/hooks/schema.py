"""JSON Schema of the wire models, as written by ``itb-cds schema`` and checked in tests."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from cds_service.hooks.models import CdsRequest, CdsResponse, Discovery, FeedbackRequest


def wire_schema() -> dict[str, Any]:
    _, schema = models_json_schema(
        [
            (CdsRequest, "validation"),
            (CdsResponse, "serialization"),
            (FeedbackRequest, "validation"),
            (Discovery, "serialization"),
        ],
        title="ITB CDS: CDS Hooks 2.0 wire models",
    )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
