"""How the engine runs rules: named entries, one chart index per call (every resource classified
once), and each rule given its own settings section only."""

from __future__ import annotations

import typing
from dataclasses import replace
from datetime import date

import pytest

from cds_service.config import (
    BatterySettings,
    RefillSettings,
    Settings,
    TrialSettings,
)
from cds_service.fhir.record import Concept, PatientInfo, PatientRecord, Quantity
from cds_service.rules import RULE_ENTRIES, RULE_VERSIONS, RULES, evaluate
from cds_service.rules.booking import BookingSections
from cds_service.rules.candidacy import CandidacySections
from cds_service.rules.index import ChartIndex
from cds_service.terminology import Terminology
from tests.rules.charts import (
    CP,
    CPT,
    NOW,
    PATIENT_VIEW,
    condition,
    itb_order,
    mL,
    observation,
    oral,
    procedure,
    pump_device,
    record,
)

# Candidacy also reads the trial section: which screening trial on file ends its card
# (rule book: itb-candidacy).
SECTIONS = {"candidacy": CandidacySections, "candidacy-on-order": CandidacySections,
            "trial-outcome": TrialSettings, "refill": RefillSettings, "battery": BatterySettings,
            "booking": BookingSections}


def two_pumps() -> PatientRecord:
    """Two pumps with their implants, refills and readings, and a failed oral agent."""
    obs = []
    for k in ("a", "b"):
        obs += [observation("pump-reservoir-volume", mL(20), "2026-03-20", f"Observation/v{k}"),
                observation("pump-drug-concentration", Quantity(2000, "mcg/mL"), "2026-03-20",
                            f"Observation/c{k}"),
                observation("pump-reserve-volume", mL(2), "2026-03-20", f"Observation/r{k}")]
    return record(
        devices=(pump_device("Device/a", "8637-20"), pump_device("Device/b", "8637-40")),
        procedures=(procedure(CPT, "62362", "2020-01-10", "Procedure/ia", devices=("Device/a",)),
                    procedure(CPT, "62362", "2021-01-10", "Procedure/ib", devices=("Device/b",)),
                    procedure(CPT, "95990", "2026-03-20", "Procedure/ra", devices=("Device/a",)),
                    procedure(CPT, "95990", "2026-03-20", "Procedure/rb", devices=("Device/b",))),
        medications=(itb_order(400), oral("baclofen", 20, status="stopped", reason="drowsiness",
                                          ref="MedicationRequest/oral")),
        conditions=(condition(CP),), observations=tuple(obs))


def test_patient_view_runs_its_entries_in_order() -> None:
    assert list(RULE_ENTRIES) == ["candidacy", "candidacy-on-order", "trial-outcome", "refill",
                                  "battery", "booking"]
    assert set(PATIENT_VIEW) < set(RULE_ENTRIES)


def test_each_entry_is_given_only_its_own_settings_section() -> None:
    settings = Settings()
    for name, entry in RULE_ENTRIES.items():
        section = entry.section(settings)
        assert type(section) is SECTIONS[name], name
        hints = typing.get_type_hints(entry.rule)
        assert hints["settings"] is SECTIONS[name], name  # not the whole Settings


def test_the_chart_is_indexed_once_per_call(monkeypatch: pytest.MonkeyPatch,
                                            settings: Settings, terms: Terminology) -> None:
    built: list[PatientRecord] = []
    build = ChartIndex.build

    def counting(record: PatientRecord, terms: Terminology) -> ChartIndex:
        built.append(record)
        return build(record, terms)

    monkeypatch.setattr(ChartIndex, "build", counting)
    chart = two_pumps()
    findings = evaluate(PATIENT_VIEW, chart, NOW, settings, terms)
    assert built == [chart]
    assert {f.rule for f in findings} >= {"itb-refill"}


def test_each_observation_is_classified_once_per_call(monkeypatch: pytest.MonkeyPatch,
                                                      settings: Settings,
                                                      terms: Terminology) -> None:
    # Two pumps, four rules: each reading still goes through the terminology once.
    calls: list[Concept] = []
    kind = terms.observation_kind

    def counting(concept: Concept) -> str | None:
        calls.append(concept)
        return kind(concept)

    monkeypatch.setattr(terms, "observation_kind", counting)
    chart = two_pumps()
    findings = evaluate(PATIENT_VIEW, chart, NOW, settings, terms)
    assert len([f for f in findings if f.rule == "itb-refill"]) == 2
    assert len(calls) == len(chart.observations)


def test_an_unknown_entry_is_a_key_error(settings: Settings, terms: Terminology) -> None:
    with pytest.raises(KeyError, match="itb-patient-view"):
        evaluate(["itb-patient-view"], record(), NOW, settings, terms)


def test_a_deceased_patient_gets_no_findings(settings: Settings, terms: Terminology) -> None:
    chart = two_pumps()
    deceased = replace(chart, patient=PatientInfo("Patient/p1", date(1980, 1, 1),
                                                  deceased=True))
    assert evaluate(PATIENT_VIEW, chart, NOW, settings, terms)
    assert evaluate(PATIENT_VIEW, deceased, NOW, settings, terms) == []


def test_rule_versions_are_those_of_the_rules() -> None:
    assert RULE_VERSIONS == {rule: spec[0] for rule, spec in RULES.items()}
    assert set(RULE_VERSIONS) == {"itb-candidacy", "itb-trial-outcome", "itb-refill",
                                  "itb-battery", "itb-data-quality"}


def test_recorded_thresholds_keep_the_sections_of_1_0_and_add_the_reading_windows() -> None:
    recorded = Settings().thresholds()
    assert recorded["candidacy"] == {"min_failed_agents": 1, "tbi_wait_months": 12,
                                     "min_age_years": 4}
    assert recorded["refill"] == {"reserve_ml": 2.0, "max_interval_days": 180, "warn_days": 7,
                                  "notice_days": 14}
    assert recorded["battery"] == {"warn_months": 6, "notice_months": 12,
                                   "eri_to_eos_days": 90}
    assert "same_trial_hours" not in recorded["trial"]  # type: ignore[operator]
    assert recorded["reading"] == {"trial.same_trial_hours": 12.0,
                                   "trial.bare_dose_max_mcg": 500.0,
                                   "refill.same_visit_days": 1.0,
                                   "candidacy.trial_recent_months": 12,
                                   "trial.overdose_window_hours": 24.0}

