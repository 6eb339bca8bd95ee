"""Value sets as data: code matching with aliases and prefixes, text fallback, the CodeSystem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from fhir.resources.R4B.codesystem import CodeSystem

from cds_service.config import Settings
from cds_service.fhir.record import Coding, Concept
from cds_service.terminology import OBSERVATION_CODES, Terminology, TerminologyError
from cds_service.terminology.terms import DATA_DIR


@pytest.fixture(scope="module")
def terms() -> Terminology:
    return Terminology.load(Settings(mas_alternate_codes=["http://example.org/mas|MAS"]))


def concept(system: str, code: str) -> Concept:
    return Concept((Coding(system, code),))


@pytest.mark.parametrize(("system", "code", "group"), [
    ("http://hl7.org/fhir/sid/icd-10-cm", "G35.B2", "spinal"),  # 2025 MS split: prefix
    ("http://hl7.org/fhir/sid/icd-10", "G80.1", "cerebral"),  # alias
    ("http://hl7.org/fhir/sid/icd-10-cm", "S0690XA", "tbi"),  # no dot
    ("http://snomed.info/sct", "128188000", "cerebral"),
])
def test_spasticity_origin_codes(system: str, code: str, group: str, terms: Terminology) -> None:
    found = terms.match("spasticity-origin", concept(system, code))
    assert found is not None and found.group == group


def test_hcpcs_oid_alias(terms: Terminology) -> None:
    assert terms.match("intrathecal-baclofen",
                       concept("urn:oid:2.16.840.1.113883.6.285", "J0475")) is not None


def test_text_fallback_is_whole_words_and_honours_exclusions(terms: Terminology) -> None:
    assert terms.match_text("spasticity-origin", "Spastic quadriplegia") is not None
    assert terms.match_text("spasticity-origin", "Spastic colon") is None
    assert terms.match_text("oral-route", "table salt") is None
    assert terms.match_text("oral-route", "1 tab by mouth") is not None


def test_unverified_codes_are_flagged() -> None:
    data = yaml.safe_load((DATA_DIR / "valuesets" / "spasticity-origin.yaml").read_text())
    flagged = {c["code"] for c in data["codes"] if c.get("unverified")}
    assert {"90584004", "262521009", "230690007", "127295002"} <= flagged


def test_every_value_set_names_its_version(terms: Terminology) -> None:
    for name in ("spasticity-origin", "dystonia", "oral-antispasticity", "intrathecal-baclofen",
                 "itb-trial-procedure", "itb-pump-implant", "itb-pump-refill",
                 "itb-pump-removal", "itb-pump-device"):
        assert terms.versions[name]


def test_observation_filter_keeps_only_what_rules_read(terms: Terminology) -> None:
    assert terms.observation_filter(
        {"coding": [{"system": "urn:itb-cds:codes", "code": "pump-reservoir-volume"}]})
    assert terms.observation_filter({"coding": [{"system": "http://example.org/mas",
                                                 "code": "MAS"}]})
    assert not terms.observation_filter({"coding": [{"system": "http://loinc.org",
                                                     "code": "8867-4"}]})
    assert not terms.observation_filter({"text": "no coding"})


def test_configured_local_system_is_read_as_ours() -> None:
    terms = Terminology.load(Settings(local_code_system="urn:hospital:itb"))
    assert terms.observation_kind(concept("urn:hospital:itb", "pump-eri")) == "pump-eri"


def test_tables(terms: Terminology) -> None:
    assert terms.max_daily_dose_mg("baclofen", 10) == 60
    assert terms.max_daily_dose_mg("baclofen", 5) == 40
    assert terms.max_daily_dose_mg("baclofen", None) == 80
    model = terms.pump_model("SynchroMed II", "8637-40")
    assert model is not None and model.reservoir_ml == 40 and model.service_life_years == 7
    codman = terms.pump_model("Codman 3000")
    assert codman is not None and not codman.programmable


def test_codesystem_is_valid_r4_and_holds_every_local_code() -> None:
    raw = json.loads((DATA_DIR / "codesystem-itb-cds.json").read_text())
    cs = CodeSystem.model_validate(raw)
    published = {c.code for c in cs.concept or []}
    assert cs.url == "urn:itb-cds:codes"
    assert set(OBSERVATION_CODES) <= published
    used: set[str] = set()
    for path in (DATA_DIR / "valuesets").glob("*.yaml"):
        used |= {c["code"] for c in yaml.safe_load(path.read_text())["codes"]
                 if c["system"] == "local"}
    cards = Path(__file__).resolve().parents[2] / "cards"
    for path in cards.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        # Override reasons in HL7's non-adherence codes are published by HL7, not here.
        used |= {o["code"] for o in data.get("override_reasons", [])
                 if o.get("system", "local") == "local"}
        used |= {s["code"] for o in data.get("outcomes", {}).values()
                 for s in o.get("suggestions", []) if "code" in s}  # a move has no code
        if "rule" in data:
            used.add(data["rule"])
    assert used - published == set()


def test_the_units_table_gives_the_numbers_a_clinic_writes(terms: Terminology) -> None:
    units = terms.units
    # "1/24" of a day is exactly Python's 1/24: the dose arithmetic does not move a bit.
    assert units.time_days["h"] == 1 / 24 and units.time_days["min"] == 1 / 1440
    assert units.time_days["wk"] == 7 and units.time_days["a"] == 365.25
    assert units.timing_per_day["QOD"] == 0.5 and units.timing_per_day["WK"] == 1 / 7
    assert units.mass_mcg["mg"] == 1000 and units.mass_mcg["µg"] == 1
    assert "{tbl}" in units.dose_forms
    found = units.strength_in_text.findall("baclofen 10 mg oral tablet")
    assert found == [("10", "mg")]
    dose = units.trial_dose_in_text.search("Baclofen 50 MICROGRAMS bolus")
    assert dose is not None and dose.group(1) == "50"
    assert units.concentration_mcg_per_ml["mg/ml"] == 1000
    assert units.time_days["minutes"] == pytest.approx(1 / 1440)


@pytest.mark.parametrize(("old", "new"), [
    ("  h: 1/24\n", "  h: 1/0\n"),
    ("  QOD: 1/2\n", "  QOD: half\n"),
    ("strength_text_units: [mg,", "strength_text_units: [mmol, mg,"),
])
def test_a_bad_units_table_fails_at_load(tmp_path: Path, old: str, new: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "tables" / "units.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(TerminologyError, match=r"units\.yaml"):
        Terminology.load(Settings(), data)
