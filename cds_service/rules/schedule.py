"""Every active pump's refill and battery picture, card or no card: what the clinic worklist
lists. The refill and battery rules compute it (``refill.pumps``, ``battery.pumps``), so a
worklist row carries exactly the outcome, tier and dates the patient-view cards give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cds_service.config import BatterySettings, RefillSettings
from cds_service.fhir.record import PatientRecord
from cds_service.rules import battery as _battery
from cds_service.rules import refill as _refill
from cds_service.rules.index import ChartIndex
from cds_service.rules.pump import Pump
from cds_service.terminology import Terminology


@dataclass(frozen=True, slots=True)
class PumpSchedule:
    pump: Pump
    refill: _refill.PumpRefill
    battery: _battery.PumpBattery


def schedule(record: PatientRecord, now: datetime, refill: RefillSettings,
             battery: BatterySettings, terms: Terminology) -> list[PumpSchedule]:
    """One entry per active ITB pump (none for a deceased patient, as no card is given)."""
    chart = ChartIndex.for_rules(record, terms)
    if chart is None:
        return []
    refills = _refill.pumps(chart, now, refill)
    batteries = _battery.pumps(chart, now, battery)
    return [PumpSchedule(r.pump, r, b) for r, b in zip(refills, batteries, strict=True)]
