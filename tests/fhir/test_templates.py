"""Prefetch templates: fixed key names per service, rendered only when every token fills."""

from __future__ import annotations

import pytest

from cds_service.config import Settings
from cds_service.fhir.templates import (
    RULE_OBSERVATION_CODES,
    UnfillableTemplateError,
    prefetch_templates,
    render,
)
from cds_service.services import SERVICES_BY_ID

CONTEXT = {"userId": "Practitioner/doc-7", "patientId": "itb-1", "encounterId": "enc-1"}


def test_patient_view_asks_for_every_key_and_order_hooks_skip_observations_and_appointments():
    settings = Settings()
    view = SERVICES_BY_ID["itb-patient-view"].templates(settings)
    sign = SERVICES_BY_ID["itb-order-sign"].templates(settings)
    select = SERVICES_BY_ID["itb-order-select"].templates(settings)
    assert view["patient"] == "Patient/{{context.patientId}}"
    assert view["adverseEvents"] == "AdverseEvent?subject=Patient/{{context.patientId}}"
    assert len(view) == 12
    assert set(view) - set(sign) == {"observations", "appointments"}
    assert sign == select


def test_observation_query_lists_every_local_code_the_rules_read_plus_mas_alternates():
    settings = Settings(mas_alternate_codes=["http://example.org/mas|MAS-1"])
    query = prefetch_templates(["observations"], settings)["observations"]
    assert query.startswith("Observation?patient={{context.patientId}}&code=")
    codes = query.split("&code=")[1].split(",")
    assert codes[: len(RULE_OBSERVATION_CODES)] == [
        f"urn:itb-cds:codes|{code}" for code in RULE_OBSERVATION_CODES
    ]
    assert codes[-1] == "http://example.org/mas|MAS-1"


def test_an_unknown_key_is_refused():
    with pytest.raises(KeyError):
        prefetch_templates(["no-such-key"], Settings())


def test_render_fills_context_and_user_tokens():
    template = (
        "X?p={{context.patientId}}&e={{context.encounterId}}&u={{context.userId}}"
        "&pr={{userPractitionerId}}"
    )
    assert render(template, CONTEXT) == "X?p=itb-1&e=enc-1&u=Practitioner/doc-7&pr=doc-7"


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("Encounter/{{context.encounterId}}", {"patientId": "itb-1"}),
        ("RelatedPerson/{{userRelatedPersonId}}", CONTEXT),
        # an id that would smuggle query syntax into the request is not an id
        ("Patient/{{context.patientId}}", {"patientId": "1&_include=*"}),
    ],
)
def test_a_token_without_a_valid_value_is_not_rendered(template, context):
    with pytest.raises(UnfillableTemplateError):
        render(template, context)


