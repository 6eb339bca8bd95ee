"""Battery / replacement: EOS by model, ERI, tiers, constant-flow pumps, missing implant date."""

from __future__ import annotations

import pytest

from cds_service.config import Settings
from cds_service.fhir.record import ServiceRequestFact
from cds_service.rules.battery import battery, end_of_service
from cds_service.rules.finding import MissingInput, Tier
from cds_service.terminology import Terminology
from tests.rules.charts import CPT, at, coded, indexed, observation, procedure, pump_device, record


def implant(day: str, code: str = "62362") -> object:
    return procedure(CPT, code, day, "Procedure/implant", devices=("Device/pump",))


def test_eos_is_implant_plus_service_life_capped_by_eri() -> None:
    assert end_of_service(at("2019-03-01"), 7, None, 90) == at("2026-03-01")
    assert end_of_service(at("2019-03-01"), 7, at("2025-01-01"), 90) == at("2025-04-01")


@pytest.mark.parametrize(("device", "eos"), [
    (pump_device(model="8637-40"), "2026-09-01"),  # SynchroMed II: 7 years
    (pump_device(model=None, name="Prometra II"), "2029-09-01"),  # 10 years
])
def test_eos_by_model(device: object, eos: str, settings: Settings, terms: Terminology) -> None:
    rec = record(devices=(device,), procedures=(implant("2019-09-01"),))
    found = battery(indexed(rec, terms), at("2026-06-15"), settings.battery)
    if eos.startswith("2029"):
        assert found == []  # more than a year away
    else:
        assert found[0].number("endOfServiceDate").value == eos  # type: ignore[union-attr]


@pytest.mark.parametrize(("now", "outcome", "tier"), [
    ("2025-02-28", None, None),
    ("2025-03-01", "notice", Tier.INFO),  # exactly 12 months before EOS
    ("2025-09-01", "plan", Tier.WARNING),  # exactly 6 months before EOS
    ("2026-03-01", "end-of-service", Tier.CRITICAL),
])
def test_tiers(now: str, outcome: str | None, tier: Tier | None, settings: Settings,
               terms: Terminology) -> None:
    rec = record(devices=(pump_device(),), procedures=(implant("2019-03-01"),))
    found = battery(indexed(rec, terms), at(now), settings.battery)
    assert [(f.outcome, f.tier) for f in found] == ([] if outcome is None else [(outcome, tier)])


def test_eri_is_critical_and_caps_eos(settings: Settings, terms: Terminology) -> None:
    eri = observation("pump-eri", True, "2024-01-10", "Observation/eri")
    rec = record(devices=(pump_device(),), procedures=(implant("2020-03-01"),),
                 observations=(eri,))
    f = battery(indexed(rec, terms), at("2024-01-15"), settings.battery)[0]
    assert (f.outcome, f.tier) == ("eri", Tier.CRITICAL)
    assert f.number("endOfServiceDate").value == "2024-04-09"  # type: ignore[union-attr]


def test_booked_replacement_lowers_warning(settings: Settings, terms: Terminology) -> None:
    req = ServiceRequestFact("ServiceRequest/r", "active", "order",
                             coded("urn:itb-cds:codes", "itb-pump-replacement"),
                             occurrence=at("2025-12-01"))
    rec = record(devices=(pump_device(),), procedures=(implant("2019-03-01"),),
                 service_requests=(req,))
    f = battery(indexed(rec, terms), at("2025-10-01"), settings.battery)[0]
    assert (f.outcome, f.tier, f.suggest) == ("booked", Tier.INFO, False)
    assert battery(indexed(rec, terms), at("2026-03-02"), settings.battery)[0].tier is Tier.CRITICAL


def test_constant_flow_pump_has_no_battery_card(settings: Settings, terms: Terminology) -> None:
    rec = record(devices=(pump_device(model=None, name="Codman 3000 constant-flow pump"),),
                 procedures=(implant("2010-01-01", "62361"),))
    assert battery(indexed(rec, terms), at("2026-06-15"), settings.battery) == []


def test_non_programmable_implant_code_without_a_model(settings: Settings, terms: Terminology
                                                       ) -> None:
    rec = record(procedures=(procedure(CPT, "62361", "2010-01-01", "Procedure/implant"),))
    assert battery(indexed(rec, terms), at("2026-06-15"), settings.battery) == []


def test_unknown_model_is_assumed_programmable_with_seven_years(settings: Settings,
                                                                terms: Terminology) -> None:
    rec = record(procedures=(procedure(CPT, "62360", "2019-03-01", "Procedure/implant",
                                       display="Intrathecal pump implantation"),))
    f = battery(indexed(rec, terms), at("2026-01-01"), settings.battery)[0]
    assert {"programmable-assumed", "service-life-assumed"} <= set(f.notes)
    assert f.number("endOfServiceDate").value == "2026-03-01"  # type: ignore[union-attr]


def test_missing_implant_date_is_a_data_quality_card(settings: Settings, terms: Terminology
                                                     ) -> None:
    chart = indexed(record(devices=(pump_device(),)), terms)
    f = battery(chart, at("2026-01-01"), settings.battery)[0]
    assert (f.rule, f.blocks) == ("itb-data-quality", "itb-battery")
    assert f.missing == (MissingInput.IMPLANT_DATE,)
