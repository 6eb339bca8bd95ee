"""The terminology coverage report: codes per system, unverified codes, and the
keywords that are still the only path to their concept."""

from __future__ import annotations

import pytest

from cds_service.cli import main
from cds_service.config import Settings
from cds_service.terminology import Terminology
from cds_service.terminology.coverage import coverage

HL7_STATUS_REASON = "http://terminology.hl7.org/CodeSystem/medicationrequest-status-reason"
SNOMED = "http://snomed.info/sct"


def test_every_value_set_is_in_the_report() -> None:
    terms = Terminology.load(Settings())
    assert [c.name for c in coverage(terms)] == list(terms.value_set_names())


def test_stop_reasons_are_coded_and_words_are_only_a_fallback() -> None:
    """The rule book's stop reasons (adverse effect, intolerance, side effect,
    absent or poor response, the named manifestations) each have a code; only concepts with
    no code in the value set remain words only."""
    report = {c.name: c for c in coverage(Terminology.load(Settings()))}
    intolerance = report["intolerance-reason"]
    assert dict(intolerance.codes_per_system)[HL7_STATUS_REASON] == 1
    assert dict(intolerance.codes_per_system)[SNOMED] >= 10
    assert set(intolerance.keyword_only) == {"hepatotoxicity", "liver injury",
                                             "elevated liver enzymes"}
    ineffective = report["ineffective-reason"]
    assert dict(ineffective.codes_per_system)[SNOMED] >= 3
    assert set(ineffective.keyword_only) == {"treatment failure", "therapy failure", "failed"}


def test_the_cli_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["terminology", "report"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "intolerance-reason 1.1.0" in out and HL7_STATUS_REASON in out
    assert out.splitlines()[-1].startswith("Total: ")
