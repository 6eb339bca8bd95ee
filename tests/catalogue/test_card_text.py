"""How cards read: whole days in words ("4 days overdue", not "4 days ago"), numbers as
computed, tables that render, override reasons that fit the card, each reminder once
(independent review, card-text items; issue 16)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cds_service.catalogue import (
    Catalogue,
    NumberView,
    blank_line_before_tables,
    count_of,
    days_in_words,
)
from cds_service.catalogue.text import keep_units
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
    """The card's text, its no-break spaces (number and unit) read as spaces."""
    [card] = catalogue.render([finding], patient_id="p", now=NOW, terminology_versions={})
    return (card.summary + "\n" + (card.detail or "")).replace("\u00a0", " ")


def test_a_number_and_its_unit_are_never_split_across_lines() -> None:
    assert keep_units("80 mg/day, 72 h, in 5 days, 20 mL of 1000 mcg/mL") == (
        "80\u00a0mg/day, 72\u00a0h, in 5\u00a0days, 20\u00a0mL of 1000\u00a0mcg/mL")
    assert keep_units("day 3 midday") == "day 3 midday"
    assert keep_units("SynchroMed II 8637-20, onset 30\u201360 min") == (
        "SynchroMed II 8637\u2060-\u206020, onset 30\u2060\u2013\u206060\u00a0min")


@pytest.mark.parametrize(("days", "words"), [
    (152, "in 152 days"), (1, "in 1 day"), (0, "today"), (-1, "1 day overdue"),
    (-5, "5 days overdue"),
])
def test_days_are_whole_days_in_words(days: int, words: str) -> None:
    assert days_in_words(days) == words
    assert str(NumberView(days, "d", None)) == words


def test_numbers_show_as_computed_and_instants_with_their_time() -> None:
    assert str(NumberView(1.25, None, None)) == "1.25"
    assert str(NumberView(133.3333, "mcg/day", None)) == "133.333 mcg/day"
    # Dates as clinicians write them, unambiguous, and never broken across lines.
    assert str(NumberView("2026-06-16T14:00:00Z", None, None)) == (
        "16\u00a0Jun\u00a02026 14:00\u00a0UTC")
    assert str(NumberView("2026-06-06", None, None)) == "6\u00a0Jun\u00a02026"


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
    assert "no sooner than 15 Jun 2026 08:00 UTC" in text
    assert "- Modified Ashworth, mean drop: 0.25" in text
    for i, line in enumerate(lines := text.split("\n")):
        if line.startswith("- ") and not lines[i - 1].startswith("- "):
            assert lines[i - 1] == "", f"no blank line before the list at {line!r}"


def test_positive_card_after_overdose_says_why_it_suggests_nothing(
        catalogue: Catalogue) -> None:
    text = render(catalogue, trial_finding("positive", Tier.INFO,
                                           notes=("overdose-review-first",)))
    assert "overdose" in text.lower() and "suggests no next step" in text


def candidacy_finding(outcome: str, failed: int) -> Finding:
    return Finding(rule="itb-candidacy", rule_version="1.0.0", outcome=outcome,
                   tier=Tier.WARNING if outcome == "contraindicated" else Tier.INFO,
                   numbers=(Number("failedAgents", failed),
                            Number("failedAgentNames", ", ".join(
                                ("baclofen", "tizanidine")[:failed])),
                            Number("eligibleFromDate", "2026-12-01"),
                            Number("tbiOnsetDate", "2025-12-01")))


@pytest.mark.parametrize(("failed", "words"), [(1, "1 agent"), (2, "2 agents")])
def test_failed_agents_are_counted_in_words(failed: int, words: str) -> None:
    assert count_of(failed, "agent") == words


def test_failed_agents_are_named(catalogue: Catalogue) -> None:
    text = render(catalogue, candidacy_finding("candidate", 2))
    assert "Oral antispasticity therapy has failed (baclofen, tizanidine)." in text


def overrides(catalogue: Catalogue, finding: Finding) -> set[str]:
    [card] = catalogue.render([finding], patient_id="p", now=NOW, terminology_versions={})
    return {o.code for o in card.overrideReasons}


def test_override_reasons_fit_the_card(catalogue: Catalogue) -> None:
    dq = Finding(rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data",
                 tier=Tier.INFO, blocks="itb-candidacy", missing=(missing_input(
                     MissingInput.ORAL_DAILY_DOSE, agent="baclofen", ref="MedicationRequest/m"),))
    # "Pump not in use" is HL7's cds-not-applicable; "Patient declines" its patient-refuses.
    assert "cds-not-applicable" not in overrides(catalogue, dq)
    pump_dq = Finding(rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data",
                      tier=Tier.INFO, missing=(MissingInput.PUMP_DAILY_DOSE,), blocks="itb-refill",
                      device_ref="Device/pump")
    assert "cds-not-applicable" in overrides(catalogue, pump_dq)
    assert "patient-refuses" not in overrides(catalogue, candidacy_finding(
        "contraindicated", 1))
    assert "patient-refuses" in overrides(catalogue, candidacy_finding("candidate", 1))
    # A dose above the maximum can be overridden for what it is; without it, not.
    plain = candidacy_finding("candidate", 1)
    above = replace(plain, notes=("draft-above-maximum",), numbers=(
        *plain.numbers, Number("draftAgent", "baclofen"),
        Number("totalDailyDoseMg", 140.0, "mg/day"), Number("maxDailyDoseMg", 80.0, "mg/day")))
    assert "expert-contradicts" in overrides(catalogue, above)
    assert "expert-contradicts" not in overrides(catalogue, candidacy_finding("candidate", 1))


def test_override_reasons_are_hl7_codes_where_one_fits(catalogue: Catalogue) -> None:
    [card] = catalogue.render([candidacy_finding("candidate", 1)], patient_id="p", now=NOW,
                              terminology_versions={})
    systems = {o.code: o.system for o in card.overrideReasons}
    hl7 = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
    assert systems["patient-refuses"] == hl7 and systems["risk-benefit-ratio"] == hl7
    [dq] = catalogue.render([Finding(
        rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data", tier=Tier.INFO,
        blocks="itb-candidacy")], patient_id="p", now=NOW, terminology_versions={})
    assert {o.code: o.system for o in dq.overrideReasons}["dose-known-elsewhere"] == (
        "urn:itb-cds:codes")


REFILL_NUMBERS = (
    Number("lastRefillDate", "2026-03-22"), Number("volumeMl", 20.0, "mL"),
    Number("concentrationMcgPerMl", 1000.0, "mcg/mL"),
    Number("dailyDoseMcgPerDay", 200.0, "mcg/day"), Number("reserveMl", 2.0, "mL"),
    Number("alarmAfterDays", 90.0, "days"), Number("alarmDate", "2026-06-20"),
    Number("emptyAfterDays", 100.0, "days"), Number("emptyDate", "2026-06-30"),
    Number("stabilityDays", 180, "days"), Number("stabilityLimitDate", "2026-09-18"),
    Number("dueDate", "2026-06-20"), Number("daysUntilDue", 5, "d"))


def test_the_backup_prescription_reminder_appears_once(catalogue: Catalogue) -> None:
    finding = Finding(
        rule="itb-refill", rule_version="1.0.0", outcome="due-soon", tier=Tier.WARNING,
        numbers=REFILL_NUMBERS, notes=("no-backup-oral-baclofen",), device_ref="Device/pump")
    text = render(catalogue, finding)
    assert len(re.findall("No backup oral baclofen prescription on file", text)) == 1
    assert "(in 5 days)" in text and " d)" not in text


def test_missing_inputs_and_evidence_are_said_in_the_cards_words(catalogue: Catalogue) -> None:
    # The rules emit codes and chart words; the card (and its itb-cds.finding) says them.
    finding = Finding(
        rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data", tier=Tier.INFO,
        blocks="itb-candidacy", missing=(
            missing_input(MissingInput.ORAL_DAILY_DOSE, agent="tizanidine",
                          ref="MedicationRequest/t1"),),
        evidence=(Evidence(EvidenceLabel.MEDICATION, "MedicationRequest/t1", date="2026-01-10",
                           value_label=EvidenceLabel.DOSE_NOT_COMPUTABLE,
                           words=words(name="", kind="MedicationRequest", status="")),))
    [card] = catalogue.render([finding], patient_id="p", now=NOW, terminology_versions={})
    # The order is cited as a clinician would ("order 10 Jan 2026"), never by its id.
    detail = (card.detail or "").replace("\u00a0", " ")
    said = "daily dose of oral tizanidine (order 10 Jan 2026): dose and frequency"
    assert f"- {said}" in detail
    missing = card.extension["itb-cds.finding"]["missing"]  # type: ignore[index]
    assert [m.replace("\u00a0", " ") for m in missing] == [said]
    assert "- Medication, order 10 Jan 2026: daily dose not computable" in detail
    assert "MedicationRequest" not in detail


def test_a_pump_without_a_model_is_called_an_itb_pump(catalogue: Catalogue) -> None:
    finding = Finding(
        rule="itb-data-quality", rule_version="1.0.0", outcome="missing-data", tier=Tier.INFO,
        blocks="itb-battery", missing=(MissingInput.IMPLANT_DATE,), device_ref="Device/p",
        evidence=(Evidence(EvidenceLabel.PUMP, "Device/p", value="active",
                           words=words(model="")),))
    text = render(catalogue, finding)
    assert "- implant date of the pump (the implant procedure)" in text
    assert "- Pump: ITB pump, model not recorded (active)" in text
