"""appointment-book's booking checks at their edges: the latest safe day itself, an overdue
pump, several proposals in one call, proposals that are not being booked, and the move the
suggestion makes. (Each branch end to end is a fixture in fixtures/scheduling/.)"""

from __future__ import annotations

from datetime import date

import pytest

from cds_service.catalogue.moves import moved_to
from cds_service.config import Settings
from cds_service.fhir.record import AppointmentFact, PatientRecord
from cds_service.rules import evaluate
from cds_service.rules.finding import Finding
from cds_service.terminology import Terminology
from tests.rules.charts import (
    CPT,
    LOCAL,
    at,
    coded,
    itb_order,
    mL,
    observation,
    procedure,
    pump_device,
    record,
)

# 20 mL of 2000 mcg/mL at 400 mcg/day, 2 mL reserve: alarm 90 days after the fill, empty
# after 100. Refilled 2026-03-20: due 2026-06-18, empty 2026-06-28.
REFILL = coded(LOCAL, "itb-pump-refill", text="Intrathecal baclofen pump refill")
REPLACEMENT = coded(LOCAL, "itb-pump-replacement", text="Pump replacement")


def chart(*appointments: AppointmentFact, implanted: str = "2024-01-10") -> PatientRecord:
    return record(
        devices=(pump_device(),),
        procedures=(procedure(CPT, "62362", implanted, "Procedure/implant",
                              devices=("Device/pump",)),
                    procedure(CPT, "95990", "2026-03-20", "Procedure/refill",
                              devices=("Device/pump",))),
        observations=(observation("pump-reservoir-volume", mL(20), "2026-03-20", "Observation/v"),
                      observation("pump-reserve-volume", mL(2), "2026-03-20", "Observation/r")),
        medications=(itb_order(400),),
        appointments=appointments,
    )


def proposal(start: str | None, ref: str = "Appointment/new", code: object = REFILL,
             status: str | None = "proposed") -> AppointmentFact:
    return AppointmentFact(ref, status, at(start) if start else None, (code,),  # type: ignore
                           proposed=True)


def booking(chart_: PatientRecord, terms: Terminology, now: str = "2026-06-10T09:00"
            ) -> list[Finding]:
    return evaluate(("booking",), chart_, at(now), Settings(), terms)


def number(f: Finding, key: str) -> object:
    found = f.number(key)
    assert found is not None, key
    return found.value


def test_the_due_date_itself_is_in_time_the_day_after_is_late(terms: Terminology) -> None:
    assert booking(chart(proposal("2026-06-18T16:00")), terms) == []
    [late] = booking(chart(proposal("2026-06-19T08:00")), terms)
    assert (late.rule, late.outcome, late.tier) == ("itb-refill", "booked-late", "warning")
    assert number(late, "latestSafeDate") == number(late, "dueDate") == "2026-06-18"
    assert late.target_ref == "Appointment/new" and late.suggest
    assert "already-due" not in late.notes


def test_the_empty_date_itself_is_critical(terms: Terminology) -> None:
    assert [f.outcome for f in booking(chart(proposal("2026-06-27T10:00")), terms)] == [
        "booked-late"]
    [empty] = booking(chart(proposal("2026-06-28T10:00")), terms)
    assert (empty.outcome, empty.tier) == ("booked-after-empty", "critical")


def test_when_the_pump_is_overdue_today_is_the_latest_safe_day(terms: Terminology) -> None:
    now = "2026-06-22T09:00"  # due four days ago, empty in six
    assert booking(chart(proposal("2026-06-22T15:00")), terms, now) == []
    [late] = booking(chart(proposal("2026-06-24T15:00")), terms, now)
    assert number(late, "latestSafeDate") == "2026-06-22"
    assert "already-due" in late.notes


def test_a_proposal_on_an_empty_pump_gets_no_move_when_no_earlier_day_exists(
        terms: Terminology) -> None:
    [empty] = booking(chart(proposal("2026-07-01T15:00")), terms, "2026-07-01T09:00")
    assert empty.outcome == "booked-after-empty" and not empty.suggest


def test_a_series_of_refills_is_judged_by_its_first(terms: Terminology) -> None:
    series = chart(proposal("2026-06-15T10:00", "Appointment/a"),
                   proposal("2026-09-14T10:00", "Appointment/b"),
                   proposal("2026-12-14T10:00", "Appointment/c"))
    assert booking(series, terms) == []
    late_first = chart(proposal("2026-06-20T10:00", "Appointment/a"),
                       proposal("2026-09-14T10:00", "Appointment/b"))
    assert [f.target_ref for f in booking(late_first, terms)] == ["Appointment/a"]


@pytest.mark.parametrize("kept_out", [
    proposal(None),  # no start: nothing to compare
    proposal("2026-07-30T10:00", status="cancelled"),
    proposal("2026-07-30T10:00", code=coded(LOCAL, "physio", text="Physiotherapy")),
])
def test_proposals_not_checked(kept_out: AppointmentFact, terms: Terminology) -> None:
    assert booking(chart(kept_out), terms) == []


def test_a_stored_appointment_is_no_proposal(terms: Terminology) -> None:
    stored = AppointmentFact("Appointment/old", "booked", at("2026-07-30T10:00"), (REFILL,))
    assert booking(chart(stored), terms) == []


def test_replacement_margin_is_a_setting(terms: Terminology) -> None:
    # Implanted 2019-07-10: end of service 2026-07-10.
    book = chart(proposal("2026-06-25T10:00", code=REPLACEMENT), implanted="2019-07-10")
    [late] = booking(book, terms)
    assert (late.rule, late.outcome) == ("itb-battery", "booked-late")
    assert number(late, "latestSafeDate") == "2026-06-10"  # EOS - 30 d, which is today
    assert "end-of-service-near" not in late.notes
    [inside] = booking(book, terms, "2026-06-15T09:00")  # inside the margin: today
    assert number(inside, "latestSafeDate") == "2026-06-15"
    assert "end-of-service-near" in inside.notes
    early = chart(proposal("2026-07-20T10:00", code=REPLACEMENT), implanted="2019-08-10")
    [cut_close] = booking(early, terms, "2026-06-01T09:00")  # EOS 2026-08-10, margin ahead
    assert number(cut_close, "latestSafeDate") == "2026-07-11"
    assert "end-of-service-near" not in cut_close.notes
    narrow = Settings(booking={"replacement_margin_days": 10})
    assert evaluate(("booking",), book, at("2026-06-10T09:00"), narrow, terms) == []
    [after] = booking(chart(proposal("2026-07-11T10:00", code=REPLACEMENT),
                            implanted="2019-07-10"), terms)
    assert (after.outcome, after.tier) == ("booked-after-eos", "critical")


def test_the_move_keeps_time_offset_and_length() -> None:
    appointment = {"resourceType": "Appointment", "start": "2026-06-25T23:30:00-05:00",
                   "end": "2026-06-26T00:15:00-05:00", "minutesDuration": 45}
    # 23:30 at -05:00 is 04:30 UTC on the 26th: the day moved is the UTC day cards show.
    moved = moved_to(appointment, date(2026, 6, 18))
    assert moved == {"resourceType": "Appointment", "start": "2026-06-17T23:30:00-05:00",
                     "end": "2026-06-18T00:15:00-05:00", "minutesDuration": 45}
    assert moved_to({"start": "2026-06-25T10:00:00Z"}, date(2026, 6, 18)) == {
        "start": "2026-06-18T10:00:00Z"}
    assert moved_to({"resourceType": "Appointment"}, date(2026, 6, 18)) is None
