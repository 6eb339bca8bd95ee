"""How cards read: whole days in words, numbers as computed, tables that render, override
reasons that fit the card, each reminder once (independent review, card-text items)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cds_service.catalogue import Catalogue, NumberView, blank_line_before_tables, days_in_words
from cds_service.rules.finding import (
    Evidence,
    EvidenceLabel,
    Finding,
    MissingInput,
    Number,
    Tier,
    missing_input,
    words,
)

CARDS = Path(__file__).resolve().parents[2] / "cards"
NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(CARDS)


def render(catalogue: Catalogue, finding: Finding) -> str:
    [card] = catalogue.render([finding], patient_id="p", now=NOW, terminology_versions={})
    return card.summary + "\n" + (card.detail or "")


@pytest.mark.parametrize(("days", "words"), [
    (152, "in 152 days"), (1, "in 1 day"), (0, "today"), (-1, "1 day ago"), (-5, "5 days ago"),
])
def test_days_are_whole_days_in_words(days: int, words: str) -> None:
    assert days_in_words(days) == words
    assert str(NumberView(days, "d", None)) == words


def test_numbers_show_as_computed_and_instants_with_their_time() -> None:
    assert str(NumberView(1.25, None, None)) == "1.25"
    assert str(NumberView(133.3333, "mcg/day", None)) == "133.333 mcg/day"
    assert str(NumberView("2026-06-16T14:00:00Z", None, None)) == "2026-06-16 14:00 UTC"


def test_a_table_always_has_a_blank_line_before_it() -> None:
    text = "Some text.\n| a | b |\n|---|---|\n| 1 | 2 |\n\nMore."
    assert blank_line_before_tables(text) == (
        "Some text.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nMore.")


def trial_finding(outcome: str, tier: Tier, *numbers: Number, notes: tuple[str, ...] = ()
                  ) -> Finding:
    return Finding(
        rule="itb-trial-outcome", rule_version="1.0.0", outcome=outcome, tier=tier,
        evidence=(Evidence(EvidenceLabel.TRIAL_PROCEDURE, "Procedure/t", date="2026-06-14",
                           words=words(name="Baclofen screening trial")),),
        numbers=(Number("trialDate", "2026-06-14"), Number("trialDoseMcg", 50.0, "mcg"),
                 *numbers), notes=notes)


def test_negative_next_step_reads_well_and_gives_the_time(catalogue: Catalogue) -> None:
    text = render(catalogue, trial_finding(
        "negative-next-step", Tier.INFO, Number("masMeanDrop", 0.25),
        Number("nextDoseMcg", 75.0, "mcg"), Number("earliestRepeatDate", "2026-06-15"),
        Number("earliestRepeatAt", "2026-06-15T08:00:00Z")))
    assert "at 50 mcg was **negative**" in text
    assert "no sooner than 2026-06-15 08:00 UTC" in text
    assert "| 0.25 |" in text
    for i, line in enumerate(lines := text.split("\n")):
        if line.startswith("|") and not lines[i - 1].startswith("|"):
            assert lines[i - 1] == "", f"no blank line before table at {line!r}"


def test_positive_card_after_overdose_says_why_it_suggests_nothing(
        catalogue: Catalogue) -> None:
    text = render(catalogue, trial_finding("positive", Tier.INFO,
                                           notes=("overdose-review-first",)))
    assert "overdose" in text.lower() and "suggests no next step" in text


def candidacy_finding(outcome: str, failed: int) -> Finding:
    return Finding(rule="itb-candidacy", rule_version="1.0.0", outcome=outcome,
                   tier=Tier.WARNING if outcome == "contraindicated" else Tier.INFO,
                   numbers=(Number("failedAgents", failed),
                            Number("eligibleFromDate", "2026-12-01"),
                            Number("tbiOnsetDate", "2025-12-01")))


@pytest.mark.parametrize(("failed", "words"), [(1, "(1 agent)"), (2, "(2 agents)")])
def test_failed_agents_are_counted_in_words(catalogue: Catalogue, failed: int,
                                            words: str) -> None:
    text = render(catalogue, candidacy_finding("candidate", failed))
    assert words in text and "agent(s)" not in text


def overrides(catalogue: Catalogue, finding: Finding) -> set[str]:
    [card] = catalogue.render([finding], patient_id="p", now=NOW, terminology_versions={})
    return {o.code for o in card.overrideReasons}


def test_override_reasons_fit_the_card(catalogue: Catalogue) -> None:
    dq = Finding(rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data",
                 tier=Tier.INFO, blocks="itb-candidacy", missing=(missing_input(
                     MissingInput.ORAL_DAILY_DOSE, agent="baclofen", ref="MedicationRequest/m"),))
    assert "pump-not-active" not in overrides(catalogue, dq)
    pump_dq = Finding(rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data",
                      tier=Tier.INFO, missing=(MissingInput.PUMP_DAILY_DOSE,), blocks="itb-refill",
                      device_ref="Device/pump")
    assert "pump-not-active" in overrides(catalogue, pump_dq)
    assert "patient-declines" not in overrides(catalogue, candidacy_finding(
        "contraindicated", 1))
    assert "patient-declines" in overrides(catalogue, candidacy_finding("candidate", 1))


def test_the_backup_prescription_reminder_appears_once(catalogue: Catalogue) -> None:
    finding = Finding(
        rule="itb-refill", rule_version="1.0.0", outcome="due-soon", tier=Tier.WARNING,
        numbers=(Number("dueDate", "2026-06-20"), Number("daysUntilDue", 5, "d"),
                 Number("alarmDate", "2026-06-20"), Number("emptyDate", "2026-06-30")),
        notes=("no-backup-oral-baclofen",), device_ref="Device/pump")
    text = render(catalogue, finding)
    assert len(re.findall("No active backup oral baclofen prescription", text)) == 1
    assert "(in 5 days)" in text and " d)" not in text


def test_missing_inputs_and_evidence_are_said_in_the_cards_words(catalogue: Catalogue) -> None:
    # The rules emit codes and chart words; the card (and its itb-cds.finding) says them.
    finding = Finding(
        rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data", tier=Tier.INFO,
        blocks="itb-candidacy", missing=(
            missing_input(MissingInput.ORAL_DAILY_DOSE, agent="tizanidine",
                          ref="MedicationRequest/t1"),),
        evidence=(Evidence(EvidenceLabel.MEDICATION, "MedicationRequest/t1",
                           value_label=EvidenceLabel.DOSE_NOT_COMPUTABLE,
                           words=words(name="", kind="MedicationRequest", status="")),))
    [card] = catalogue.render([finding], patient_id="p", now=NOW, terminology_versions={})
    said = "daily dose of oral tizanidine (MedicationRequest/t1): dose and frequency"
    assert f"- {said}" in (card.detail or "")
    assert card.extension["itb-cds.finding"]["missing"] == [said]  # type: ignore[index]
    assert ("| Medication (MedicationRequest, no status) |  | daily dose not computable | "
            "MedicationRequest/t1 |") in (card.detail or "")


def test_a_pump_without_a_model_is_called_an_itb_pump(catalogue: Catalogue) -> None:
    finding = Finding(
        rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data", tier=Tier.INFO,
        blocks="itb-battery", missing=(MissingInput.IMPLANT_DATE,), device_ref="Device/p",
        evidence=(Evidence(EvidenceLabel.PUMP, "Device/p", value="active",
                           words=words(model="")),))
    text = render(catalogue, finding)
    assert "- implant date of the pump (the implant procedure)" in text
    assert "| Pump: ITB pump |  | active | Device/p |" in text
