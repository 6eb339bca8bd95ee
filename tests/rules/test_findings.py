"""What a finding carries: codes and chart words, never the card's words; a draft keeps what a
rule found in the order it found it."""

from __future__ import annotations

from cds_service.rules.draft import Draft
from cds_service.rules.finding import MissingInput, Tier, missing_input, read_missing


def test_a_missing_input_keeps_any_chart_words() -> None:
    odd = {"agent": "baclofen", "ref": "MedicationRequest/a b&c=d?e%/ü"}
    item = missing_input(MissingInput.ORAL_DAILY_DOSE, **odd)
    assert item.startswith("oral-daily-dose?")
    assert read_missing(item) == ("oral-daily-dose", odd)
    assert read_missing(missing_input(MissingInput.IMPLANT_DATE)) == ("implant-date", {})


def test_a_draft_notes_each_modifier_once_in_order() -> None:
    draft = Draft("itb-refill", "1.0.0")
    draft.note("volume-from-model")
    draft.note("reserve-default", "volume-from-model")
    draft.count("volumeMl", 20.0, "mL", "Observation/v")
    finding = draft.finding("notice", Tier.INFO, device_ref="Device/pump")
    assert finding.notes == ("volume-from-model", "reserve-default")
    assert finding.number("volumeMl") is not None and finding.missing == ()


def test_missing_data_names_the_rule_it_blocks_and_suggests_nothing() -> None:
    draft = Draft("itb-battery", "1.0.0")
    draft.lack(MissingInput.IMPLANT_DATE)
    finding = draft.missing_data(device_ref="Device/pump")
    assert (finding.rule, finding.outcome, finding.tier) == (
        "itb-data-quality", "missing-data", Tier.INFO)
    assert (finding.blocks, finding.missing, finding.suggest) == (
        "itb-battery", ("implant-date",), False)
