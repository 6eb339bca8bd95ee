"""Refill due / overdue: alarm, empty and stability dates, tiers, bookings, missing data."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cds_service.config import Settings
from cds_service.fhir.record import AppointmentFact, Concept, Quantity
from cds_service.rules import evaluate
from cds_service.rules.finding import Finding, MissingInput, Tier
from cds_service.rules.refill import refill, refill_dates
from cds_service.terminology import Terminology
from tests.rules.charts import (
    CPT,
    LOCAL,
    PATIENT_VIEW,
    at,
    indexed,
    itb_order,
    mL,
    observation,
    procedure,
    pump_device,
    record,
)

IMPLANT = procedure(CPT, "62362", "2024-01-10", "Procedure/implant", devices=("Device/pump",))


def chart(refill_day: str, *, volume: float | None = 20, conc: float = 2000, dose: float = 400,
          extra: tuple[object, ...] = (), **parts: object):  # type: ignore[no-untyped-def]
    refill_proc = procedure(CPT, "95990", refill_day, "Procedure/refill")
    obs = [observation("pump-drug-concentration", Quantity(conc, "mcg/mL"), refill_day,
                       "Observation/c")]
    if volume is not None:
        obs.append(observation("pump-reservoir-volume", mL(volume), refill_day, "Observation/v",
                               part_of=("Procedure/refill",)))
    obs += list(extra)  # type: ignore[arg-type]
    return record(devices=(pump_device(),), procedures=(IMPLANT, refill_proc),
                  medications=(itb_order(dose),), observations=tuple(obs), **parts)


def one(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def test_dates_follow_the_formulas() -> None:
    d = refill_dates(at("2026-01-01"), 20, 2000, 400, 2, 180)
    assert d.alarm == at("2026-01-01") + timedelta(days=(20 - 2) * 2000 / 400)  # 90 days
    assert d.empty == at("2026-01-01") + timedelta(days=100)
    assert d.stability_limit == at("2026-01-01") + timedelta(days=180)
    assert d.due == d.alarm


def test_stability_limit_wins_when_earlier() -> None:
    d = refill_dates(at("2026-01-01"), 40, 2000, 100, 2, 180)  # alarm after 760 days
    assert d.due == d.stability_limit


def test_recorded_alarm_date_wins_over_the_computed_one() -> None:
    d = refill_dates(at("2026-01-01"), 20, 2000, 400, 2, 180, recorded_alarm=at("2026-02-01"))
    assert d.alarm == at("2026-02-01") and d.due == at("2026-02-01")


# Refill on 2026-03-20: alarm 90 days later = 2026-06-18; empty 2026-06-28.
@pytest.mark.parametrize(("now", "outcome", "tier"), [
    ("2026-06-01T09:00", None, None),  # 17 days: nothing yet
    ("2026-06-04T00:00", "notice", Tier.INFO),  # exactly 14 days
    ("2026-06-11T00:00", "due-soon", Tier.WARNING),  # exactly 7 days
    ("2026-06-18T00:00", "overdue", Tier.CRITICAL),  # due now
    ("2026-06-28T00:00", "empty", Tier.CRITICAL),  # empty now
])
def test_tiers_at_the_boundaries(now: str, outcome: str | None, tier: Tier | None,
                                 settings: Settings, terms: Terminology) -> None:
    found = refill(indexed(chart("2026-03-20"), terms), at(now), settings.refill)
    if outcome is None:
        assert found == []
    else:
        f = one(found)
        assert (f.outcome, f.tier) == (outcome, tier)
        assert f.number("dueDate").value == "2026-06-18"  # type: ignore[union-attr]
        assert f.number("emptyDate").value == "2026-06-28"  # type: ignore[union-attr]


def test_recorded_alarm_date_moves_due(settings: Settings, terms: Terminology) -> None:
    alarm = observation("pump-low-reservoir-alarm-date", at("2026-06-20"), "2026-03-20",
                        "Observation/alarm")
    rec = indexed(chart("2026-03-20", extra=(alarm,)), terms)
    f = one(refill(rec, at("2026-06-14"), settings.refill))
    assert f.number("dueDate").value == "2026-06-20"  # type: ignore[union-attr]
    assert "alarm-date-recorded" in f.notes and f.tier is Tier.WARNING


def booked(day: str) -> AppointmentFact:
    return AppointmentFact("Appointment/a", "booked", at(day),
                           (Concept(text="Intrathecal baclofen pump refill"),))


def test_booking_before_due_lowers_warning_to_booked(settings: Settings, terms: Terminology
                                                     ) -> None:
    rec = chart("2026-03-20", appointments=(booked("2026-06-16"),))
    f = one(refill(indexed(rec, terms), at("2026-06-12"), settings.refill))
    assert (f.outcome, f.tier, f.suggest) == ("booked", Tier.INFO, False)
    assert f.number("bookedDate").value == "2026-06-16"  # type: ignore[union-attr]


def test_booking_after_due_does_not_count(settings: Settings, terms: Terminology) -> None:
    rec = chart("2026-03-20", appointments=(booked("2026-06-25"),))
    assert one(refill(indexed(rec, terms), at("2026-06-12"), settings.refill)).outcome == "due-soon"


def test_booking_never_lowers_critical(settings: Settings, terms: Terminology) -> None:
    # Booked for this afternoon (a booking whose start has passed is no booking at all).
    rec = chart("2026-03-20", appointments=(booked("2026-06-18T15:00"),))
    f = one(refill(indexed(rec, terms), at("2026-06-18T12:00"), settings.refill))
    assert f.tier is Tier.CRITICAL and "booked-but-critical" in f.notes


def test_a_booking_whose_start_has_passed_is_no_booking(settings: Settings,
                                                         terms: Terminology) -> None:
    rec = chart("2026-03-20", appointments=(booked("2026-06-14T09:00"),))
    assert one(refill(indexed(rec, terms), at("2026-06-15"), settings.refill)).outcome == (
        "due-soon")
    arrived = AppointmentFact("Appointment/a", "arrived", at("2026-06-15T08:30"),
                              (Concept(text="Intrathecal baclofen pump refill"),))
    rec = chart("2026-03-20", appointments=(arrived,))
    assert one(refill(indexed(rec, terms), at("2026-06-15T09:00"), settings.refill)).outcome == (
        "booked")
    # Days are UTC days: arrived at 23:30 in New York is 04:30 UTC, the same day as 09:00 UTC.
    evening = AppointmentFact("Appointment/a", "arrived",
                              datetime(2026, 6, 14, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
                              (Concept(text="Intrathecal baclofen pump refill"),))
    rec = chart("2026-03-20", appointments=(evening,))
    assert one(refill(indexed(rec, terms), at("2026-06-15T09:00"), settings.refill)).outcome == (
        "booked")


def test_volume_falls_back_to_the_model_reservoir_with_a_note(settings: Settings,
                                                              terms: Terminology) -> None:
    rec = indexed(chart("2026-03-20", volume=None), terms)
    f = one(refill(rec, at("2026-06-12"), settings.refill))
    assert "volume-from-model" in f.notes
    assert f.number("volumeMl").value == 20  # type: ignore[union-attr]


def test_no_dose_gives_a_data_quality_card_and_no_refill_card(settings: Settings,
                                                              terms: Terminology) -> None:
    rec = record(devices=(pump_device(),), procedures=(IMPLANT,))
    f = one(evaluate(PATIENT_VIEW, rec, at("2026-06-12"), settings, terms)[:1])
    assert f.rule == "itb-data-quality" and f.blocks == "itb-refill"
    assert MissingInput.PUMP_DAILY_DOSE in f.missing
    assert MissingInput.PUMP_CONCENTRATION in f.missing
    assert not [x for x in refill(indexed(rec, terms), at("2026-06-12"), settings.refill)
                if x.rule == "itb-refill"]


def test_implant_counts_as_last_refill(settings: Settings, terms: Terminology) -> None:
    rec = record(devices=(pump_device(),), procedures=(IMPLANT,), medications=(itb_order(400),),
                 observations=(observation("pump-drug-concentration", Quantity(2000, "mcg/mL"),
                                           "2024-01-10", "Observation/c"),))
    f = one(refill(indexed(rec, terms), at("2024-04-05"), settings.refill))
    assert "implant-as-last-refill" in f.notes and "volume-from-model" in f.notes


@pytest.mark.parametrize("status", ["inactive", "unknown"])
def test_device_not_active_means_no_pump(status: str, settings: Settings, terms: Terminology
                                         ) -> None:
    rec = record(devices=(pump_device(status=status),), procedures=(IMPLANT,))
    assert refill(indexed(rec, terms), at("2026-06-12"), settings.refill) == []


def test_explanted_pump_means_no_card(settings: Settings, terms: Terminology) -> None:
    removal = procedure(CPT, "62365", "2025-05-01", "Procedure/removal")
    rec = record(procedures=(IMPLANT, removal))
    assert refill(indexed(rec, terms), at("2026-06-12"), settings.refill) == []


def test_backup_oral_baclofen_reminder_when_none_is_active(settings: Settings,
                                                           terms: Terminology) -> None:
    f = one(refill(indexed(chart("2026-03-20"), terms), at("2026-06-12"), settings.refill))
    assert "no-backup-oral-baclofen" in f.notes


def test_local_observation_system_is_the_configured_one(terms: Terminology) -> None:
    assert terms.observation_filter({"coding": [{"system": LOCAL, "code": "pump-eri"}]})
