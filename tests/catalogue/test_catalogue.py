"""The card catalogue: schema enforced at load, summaries fit, cards carry their finding."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.servicerequest import ServiceRequest

from cds_service.catalogue import Catalogue, CatalogueError
from cds_service.hooks.models import SUMMARY_MAX
from cds_service.rules import RULES
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
VERSIONS = {"spasticity-origin": "1.0.0"}
LONG = "X" * 200

TIERS = {
    "candidate": Tier.INFO, "contraindicated": Tier.WARNING, "deferred": Tier.INFO,
    "positive": Tier.INFO, "negative-next-step": Tier.INFO, "negative-final": Tier.WARNING,
    "undocumented": Tier.WARNING, "adverse": Tier.WARNING, "empty": Tier.CRITICAL,
    "overdue": Tier.CRITICAL, "due-soon": Tier.WARNING, "notice": Tier.INFO,
    "booked": Tier.INFO, "end-of-service": Tier.CRITICAL, "eri": Tier.CRITICAL,
    "plan": Tier.WARNING, "missing-data": Tier.INFO, "stale-device": Tier.INFO,
    "booked-late": Tier.WARNING, "booked-after-empty": Tier.CRITICAL,
    "booked-after-eos": Tier.CRITICAL,
}
DATE_KEYS = ("dueDate", "emptyDate", "alarmDate", "stabilityLimitDate", "lastRefillDate",
             "bookedDate", "endOfServiceDate", "implantDate", "eriDate", "trialDate",
             "earliestRepeatDate", "tbiOnsetDate", "eligibleFromDate", "appointmentDate",
             "earlierTrialDate",
             "latestSafeDate")
VALUE_KEYS = ("failedAgents", "trialDoseMcg", "nextDoseMcg", "startingDoseMcgPerDay",
              "daysUntilDue", "serviceLifeYears", "volumeMl", "reserveMl", "draftDailyDoseMg",
              "maxDailyDoseMg", "otherActiveDailyDoseMg", "startingDoseTwiceMcgPerDay",
              "startingDoseOnceMcgPerDay", "concentrationMcgPerMl", "dailyDoseMcgPerDay",
              "alarmAfterDays", "emptyAfterDays", "stabilityDays", "totalDailyDoseMg",
              "eriToEosDays", "daysUntilEndOfService", "replacementMarginDays")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load(CARDS)


def every_finding(notes: bool = True) -> list[Finding]:
    numbers = tuple(Number(k, "2099-12-31") for k in DATE_KEYS) + tuple(
        Number(k, 99999.9, "mcg/day", f"Observation/{LONG}") for k in VALUE_KEYS) + (
        Number("draftAgent", LONG), Number("failedAgentNames", LONG))
    out = []
    for rule, (version, outcomes, note_keys) in RULES.items():
        for outcome in outcomes:
            out.append(Finding(
                rule=rule, rule_version=version, outcome=outcome, tier=TIERS[outcome],
                evidence=(Evidence(EvidenceLabel.CONDITION, "Condition/c1", "s|c", "2026-01-01",
                                   LONG, words=words(name=LONG)),),
                numbers=numbers, notes=note_keys if notes else (),
                missing=(missing_input(MissingInput.ORAL_DAILY_DOSE, agent=LONG,
                                       ref=f"MedicationRequest/{LONG}"),),
                reason_refs=("Condition/c1", "Procedure/p"), blocks="itb-refill",
                device_ref="Device/pump",
            ))
    return out


def test_every_rule_outcome_and_note_has_catalogue_text(catalogue: Catalogue) -> None:
    for rule, (_version, outcomes, notes) in RULES.items():
        family = catalogue._by_rule[rule].spec
        assert set(outcomes) == set(family.outcomes), rule
        assert set(notes) <= set(family.notes), rule
        for outcome in outcomes:
            assert family.outcomes[outcome].indicator == TIERS[outcome].value


def test_cards_render_with_long_values_and_carry_their_finding(catalogue: Catalogue) -> None:
    findings = every_finding()
    cards = catalogue.render(findings, patient_id="p1", now=NOW, terminology_versions=VERSIONS)
    assert len(cards) == len(findings)
    order = {"critical": 0, "warning": 1, "info": 2}
    assert [order[c.indicator] for c in cards] == sorted(order[c.indicator] for c in cards)
    for card in cards:
        assert len(card.summary) <= SUMMARY_MAX
        ext = card.extension["itb-cds.finding"]  # type: ignore[index]
        assert ext["catalogueVersion"] == catalogue.version
        assert ext["valueSetVersions"] == VERSIONS
        assert ext["numbers"]["dueDate"] == "2099-12-31"
        assert ext["numbers"]["volumeMl"] == {"value": 99999.9, "unit": "mcg/day"}
        assert card.source.topic is not None and card.source.topic.code == ext["rule"]
        assert card.overrideReasons and all(o.system for o in card.overrideReasons)
        if card.suggestions:
            assert card.selectionBehavior == "at-most-one"
        wire = card.to_wire()
        assert wire["uuid"]
    # device_ref is set on every finding here: the pump safety reminders are said once, on
    # the first (most urgent) card.
    said = [i for i, c in enumerate(cards) if "**Pump safety**" in (c.detail or "")]
    assert said == [0]


def test_every_suggestion_is_a_valid_r4_service_request(catalogue: Catalogue) -> None:
    cards = catalogue.render(every_finding(), patient_id="p1", now=NOW,
                             terminology_versions=VERSIONS)
    resources = [a.resource for c in cards for s in c.suggestions for a in s.actions]
    assert len(resources) >= 8
    for resource in resources:
        assert resource is not None
        request = ServiceRequest.model_validate(resource)
        assert (request.status, request.intent) == ("draft", "proposal")
        assert request.subject.reference == "Patient/p1"
        assert [r.reference for r in request.reasonReference or []] in ([], ["Condition/c1"])


def test_finding_without_suggest_has_no_suggestions(catalogue: Catalogue) -> None:
    from dataclasses import replace

    finding = replace(every_finding()[0], suggest=False)
    [card] = catalogue.render([finding], patient_id="p1", now=NOW, terminology_versions={})
    assert card.suggestions == [] and card.selectionBehavior is None


def test_backup_prescription_reminder_only_when_noted(catalogue: Catalogue) -> None:
    findings = [f for f in every_finding(notes=False) if f.rule == "itb-refill"][:1]
    [card] = catalogue.render(findings, patient_id="p", now=NOW, terminology_versions={})
    assert "backup oral baclofen" not in (card.detail or "")


def broken(tmp_path: Path, family: str, old: str, new: str) -> Path:
    target = tmp_path / "cards"
    shutil.copytree(CARDS, target)
    path = target / f"{family}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return target


@pytest.mark.parametrize(("family", "old", "new", "message"), [
    ("refill", "indicator: critical", "indicator: severe", "outcomes.empty.indicator"),
    ("battery", "version: 2.1.0", "version: one", "version"),
    ("trial", "outcome of the ITB screening trial of {{ n.trialDate }}",
     "outcome of the ITB screening trial of {{ nope.trialDate }}",
     "outcomes.undocumented.summary"),
    ("candidacy", "summary: \"Reconsider", f"summary: \"{'Long ' * 30}Reconsider",
     "outcomes.deferred.summary"),
    ("refill", "system: hl7", "system: elsewhere", "override_reasons"),
    ("refill", "source: synchromed", "source: nowhere", "source"),
])
def test_a_bad_catalogue_names_file_path_and_problem(tmp_path: Path, family: str, old: str,
                                                     new: str, message: str) -> None:
    with pytest.raises(CatalogueError) as err:
        Catalogue.load(broken(tmp_path, family, old, new))
    assert f"{family}.yaml" in str(err.value) and message in str(err.value)


def test_missing_file_is_a_catalogue_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=r"common\.yaml"):
        Catalogue.load(tmp_path)


@pytest.mark.parametrize(("family", "old", "message"), [
    ("common", "  reached: reached\n", "evidence_labels: no label for ['reached']"),
    ("data-quality", '  implant-date: "implant date of the pump (the implant procedure)"\n',
     "missing inputs ['implant-date']"),
])
def test_a_label_a_rule_can_emit_must_be_in_the_cards(tmp_path: Path, family: str, old: str,
                                                      message: str) -> None:
    with pytest.raises(CatalogueError) as err:
        Catalogue.load(broken(tmp_path, family, old, ""))
    assert message in str(err.value)


def test_a_finding_with_an_unknown_evidence_code_does_not_render(catalogue: Catalogue) -> None:
    finding = replace(every_finding()[0], evidence=(Evidence("Oral baclofen 20 mg TID"),))
    with pytest.raises(CatalogueError, match="no evidence label"):
        catalogue.render([finding], patient_id="p1", now=NOW, terminology_versions={})
