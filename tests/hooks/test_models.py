"""Wire models enforce the spec's invariants and serialise cleanly (issue 2)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cds_service.hooks.models import (
    Action,
    Card,
    CdsRequest,
    CdsResponse,
    Coding,
    Discovery,
    FeedbackRequest,
    Link,
    OverrideReason,
    ServiceDefinition,
    Source,
    Suggestion,
    prune,
)
from cds_service.hooks.schema import wire_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "cds-hooks.schema.json"


def full_card() -> Card:
    return Card(
        uuid=str(uuid.uuid4()),
        summary="Refill the pump",
        detail="**V** 20 mL",
        indicator="warning",
        source=Source(label="ITB CDS", url="https://example.org",
                      topic=Coding(system="urn:itb-cds:codes", code="itb-refill", display="R")),
        suggestions=[Suggestion(label="Book refill", uuid=str(uuid.uuid4()), actions=[
            Action(type="create", description="Create a refill request", resource={
                "resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
                "subject": {"reference": "Patient/1"}})])],
        selectionBehavior="at-most-one",
        overrideReasons=[OverrideReason(system="urn:x", code="declined", display="Declined")],
        links=[Link(label="App", url="https://app.example", type="smart", appContext="x")],
        extension={"itb-cds.finding": {"rule": "itb-refill", "outcome": "due-soon"}},
    )


def empty_values(value: Any, path: str = "$") -> list[str]:
    found = []
    if value is None or value == "" or value == [] or value == {}:
        found.append(path)
    if isinstance(value, dict):
        for k, v in value.items():
            found += empty_values(v, f"{path}.{k}")
    if isinstance(value, list):
        for i, v in enumerate(value):
            found += empty_values(v, f"{path}[{i}]")
    return found


@pytest.mark.parametrize(
    "model",
    [
        full_card(),
        CdsResponse(cards=[full_card()]),
        CdsResponse(),
        Discovery(services=[ServiceDefinition(
            hook="patient-view", id="s", description="d",
            prefetch={"patient": "Patient/{{context.patientId}}"})]),
    ],
)
def test_models_round_trip_and_emit_no_empty_values(model: BaseModel) -> None:
    wire = model.to_wire()  # type: ignore[attr-defined]
    again = type(model).model_validate(json.loads(json.dumps(wire)))
    assert again.to_wire() == wire  # type: ignore[attr-defined]
    assert again == type(model).model_validate(wire)
    if isinstance(model, CdsResponse) and not model.cards:
        assert wire == {"cards": []}
    else:
        assert empty_values(wire) == []


def test_request_round_trip_keeps_token_secret() -> None:
    raw = {
        "hook": "patient-view", "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example/fhir",
        "fhirAuthorization": {"access_token": "tok-123", "token_type": "Bearer",
                              "expires_in": 300, "scope": "patient/*.read", "subject": "cds"},
        "context": {"userId": "Practitioner/1", "patientId": "1"}, "prefetch": {"patient": None},
        "extraField": "tolerated",
    }
    request = CdsRequest.model_validate(raw)
    assert request.access_token() == "tok-123"
    assert "tok-123" not in repr(request) and "tok-123" not in str(request.model_dump())
    assert CdsRequest.model_validate(request.model_dump(mode="python")) == request


def test_feedback_round_trip() -> None:
    raw = {"feedback": [{"card": "c1", "outcome": "accepted",
                         "acceptedSuggestions": [{"id": "s1"}],
                         "outcomeTimestamp": "2026-06-15T09:00:00+00:00"}]}
    parsed = FeedbackRequest.model_validate(raw)
    assert FeedbackRequest.model_validate(parsed.model_dump(mode="json")) == parsed


def test_summary_must_be_under_140_characters() -> None:
    Card(summary="x" * 139, indicator="info", source=Source(label="s"))
    with pytest.raises(ValidationError):
        Card(summary="x" * 140, indicator="info", source=Source(label="s"))


def test_suggestions_require_selection_behavior() -> None:
    with pytest.raises(ValidationError, match="selectionBehavior"):
        Card(summary="s", indicator="info", source=Source(label="s"),
             suggestions=[Suggestion(label="x")])


def test_override_reasons_need_system_code_and_display() -> None:
    with pytest.raises(ValidationError):
        OverrideReason.model_validate({"code": "x", "system": "urn:x"})


def test_action_shapes() -> None:
    with pytest.raises(ValidationError):
        Action(type="create", description="d")
    with pytest.raises(ValidationError):
        Action(type="delete", description="d")
    Action(type="delete", description="d", resourceId="ServiceRequest/1")


def test_app_context_only_on_smart_links() -> None:
    with pytest.raises(ValidationError, match="appContext"):
        Link(label="l", url="https://x", type="absolute", appContext="a")


def test_bad_indicator_rejected() -> None:
    with pytest.raises(ValidationError):
        Card.model_validate({"summary": "s", "indicator": "hard-stop", "source": {"label": "x"}})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=20,
)


@given(json_values)
def test_prune_leaves_no_empty_values(value: Any) -> None:
    cleaned = prune({"root": value})
    assert empty_values(cleaned) == [] or cleaned == {}


def test_checked_in_schema_matches_the_models() -> None:
    assert SCHEMA_FILE.exists(), "run `itb-cds schema` and commit schema/cds-hooks.schema.json"
    assert json.loads(SCHEMA_FILE.read_text()) == wire_schema()
