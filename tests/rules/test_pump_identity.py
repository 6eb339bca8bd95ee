"""Which procedures and devices belong to the ITB pump (independent review D1, D2, D5, D10).

A removal, refill or device that is not the intrathecal baclofen pump's must not move its
clock: a breast-implant explant, an insulin-pump refill, a duplicate Device row, or a morphine
pain pump.
"""

from __future__ import annotations

from cds_service.config import Settings
from cds_service.fhir.record import Concept, Dosage, MedicationFact, ProcedureFact, Quantity
from cds_service.rules import evaluate
from cds_service.rules.battery import battery
from cds_service.rules.refill import refill
from cds_service.terminology import Terminology
from tests.rules.charts import (
    CPT,
    NOW,
    PATIENT_VIEW,
    RXNORM,
    SNOMED,
    at,
    coded,
    indexed,
    itb_order,
    mL,
    observation,
    procedure,
    pump_device,
    record,
)

IMPLANT = procedure(CPT, "62362", "2024-09-10", "Procedure/implant", devices=("Device/pump",))
# 20 mL of 2000 mcg/mL at 400 mcg/day, reserve 2 mL: alarm 90 d, empty 100 d after the refill.
REFILL = procedure(CPT, "95990", "2026-03-12", "Procedure/refill")
READINGS = (
    observation("pump-reservoir-volume", mL(20), "2026-03-12", "Observation/v"),
    observation("pump-drug-concentration", Quantity(2000, "mcg/mL"), "2026-03-12",
                "Observation/c"),
)


def text_procedure(text: str, performed: str, ref: str, *, devices: tuple[str, ...] = (),
                   code: Concept | None = None) -> ProcedureFact:
    return ProcedureFact(ref, code or Concept(text=text), "completed", at(performed),
                         focal_devices=devices)


def pump_chart(*extra: ProcedureFact, devices: tuple[object, ...] = (pump_device(),),
               medications: tuple[MedicationFact, ...] = (itb_order(400),)):  # type: ignore[no-untyped-def]
    return record(devices=devices, procedures=(IMPLANT, REFILL, *extra),
                  medications=medications, observations=READINGS)


# ------------------------------------------------------------------ D1 removals


def test_a_breast_implant_explant_does_not_remove_the_pump(settings: Settings,
                                                             terms: Terminology) -> None:
    explant = text_procedure("Explant of bilateral breast implants", "2026-06-05", "Procedure/bx",
                             code=coded(CPT, "19328", "Removal of intact breast implant",
                                        "Explant of bilateral breast implants"))
    chart = pump_chart(explant)
    assert indexed(chart, terms).removals == ()
    [finding] = refill(indexed(chart, terms), NOW, settings.refill)
    assert (finding.outcome, finding.tier) == ("overdue", "critical")


def test_explant_alone_in_text_is_no_pump_removal(terms: Terminology) -> None:
    assert terms.match("itb-pump-removal", Concept(text="Hardware explant, left knee")) is None
    assert terms.match("itb-pump-removal", Concept(text="Intrathecal pump explant")) is not None
    assert terms.match("itb-pump-removal", Concept(text="Baclofen pump removal")) is not None


def test_a_cpt_coded_procedure_is_decided_by_its_code(terms: Terminology) -> None:
    port = coded(CPT, "36590", "Removal of tunneled central venous access device with port "
                 "or pump")
    assert terms.match("itb-pump-removal", port) is None


def test_a_procedure_coded_as_another_itb_procedure_is_no_removal(terms: Terminology) -> None:
    # The implant of the new pump mentions the old one's removal: it is an implant.
    swap = ProcedureFact("Procedure/swap", Concept(
        coded(CPT, "62362").codings, "Removal of old pump with new intrathecal pump implant"),
        "completed", at("2026-01-10"))
    assert indexed(record(procedures=(swap,)), terms).removals == ()


def test_a_coded_itb_pump_removal_still_removes_the_pump(terms: Terminology) -> None:
    removal = procedure(CPT, "62365", "2026-05-01", "Procedure/removal")
    assert indexed(pump_chart(removal), terms).pumps == ()


# ------------------------------------------------------------------ D2 refills


def test_an_insulin_pump_refill_never_counts(settings: Settings, terms: Terminology) -> None:
    insulin = text_procedure("Insulin pump refill and infusion set change", "2026-06-12",
                             "Procedure/ins", devices=("Device/pump",))
    chart = pump_chart(insulin)
    assert [p.ref for p in indexed(chart, terms).refills_for(frozenset({"Device/pump"}))] == [
        "Procedure/refill"]
    [finding] = refill(indexed(chart, terms), NOW, settings.refill)
    assert finding.outcome == "overdue"


def test_pump_refill_text_needs_itb_context_or_a_link_to_the_pump(terms: Terminology) -> None:
    bare = text_procedure("Pump refill", "2026-06-01", "Procedure/bare")
    linked = text_procedure("Pump refill", "2026-06-02", "Procedure/linked",
                            devices=("Device/pump",))
    itb = text_procedure("Intrathecal baclofen pump refill", "2026-06-03", "Procedure/itb")
    chart = record(procedures=(bare, linked, itb))
    found = [p.ref for p in indexed(chart, terms).refills_for(frozenset({"Device/pump"}))]
    assert found == ["Procedure/linked", "Procedure/itb"]


def test_a_refill_linked_to_the_pump_by_text_resets_the_clock(settings: Settings,
                                                                terms: Terminology) -> None:
    linked = text_procedure("Pump refill", "2026-06-10", "Procedure/linked",
                            devices=("Device/pump",))
    readings = (observation("pump-reservoir-volume", mL(20), "2026-06-10", "Observation/v2"),)
    chart = record(devices=(pump_device(),), procedures=(IMPLANT, REFILL, linked),
                   medications=(itb_order(400),), observations=READINGS + readings)
    assert refill(indexed(chart, terms), NOW, settings.refill) == []  # refilled 5 days ago


# ------------------------------------------------------------------ D5 duplicate devices


def test_two_device_rows_of_one_pump_give_one_refill_and_one_battery_finding(
        settings: Settings, terms: Terminology) -> None:
    duplicate = pump_device("Device/pump-udi")
    chart = pump_chart(devices=(pump_device(), duplicate))
    [pump] = indexed(chart, terms).pumps
    assert pump.ref == "Device/pump" and pump.duplicates == ("Device/pump-udi",)
    assert len(refill(indexed(chart, terms), NOW, settings.refill)) == 1
    assert all(f.rule == "itb-battery"
               for f in battery(indexed(chart, terms), NOW, settings.battery))


def test_two_pumps_with_their_own_implants_stay_two(terms: Terminology) -> None:
    other_implant = procedure(CPT, "62362", "2025-01-10", "Procedure/implant2",
                              devices=("Device/pump2",))
    chart = record(devices=(pump_device(), pump_device("Device/pump2")),
                   procedures=(IMPLANT, other_implant))
    assert len(indexed(chart, terms).pumps) == 2


# ------------------------------------------------------------------ D10 other intrathecal drugs


def morphine() -> MedicationFact:
    return MedicationFact(
        ref="MedicationRequest/mor", kind="MedicationRequest", status="active",
        medication=coded(RXNORM, "1010896", "morphine sulfate 25 MG/ML Injectable Solution"),
        intent="order", dosages=(Dosage(route=coded(SNOMED, "72607000", "Intrathecal route"),
                                        rate=Quantity(2, "mg/d", "mg/d")),))


def test_a_morphine_pain_pump_gives_no_itb_pump_cards(settings: Settings,
                                                      terms: Terminology) -> None:
    chart = pump_chart(medications=(morphine(),))
    assert indexed(chart, terms).pumps == ()
    assert evaluate(PATIENT_VIEW, chart, NOW, settings, terms) == []


def test_a_pump_with_baclofen_among_its_intrathecal_drugs_is_an_itb_pump(
        terms: Terminology) -> None:
    chart = pump_chart(medications=(morphine(), itb_order(400)))
    assert len(indexed(chart, terms).pumps) == 1


def test_a_pump_with_no_intrathecal_drug_on_file_still_counts(terms: Terminology) -> None:
    assert len(indexed(pump_chart(medications=()), terms).pumps) == 1
