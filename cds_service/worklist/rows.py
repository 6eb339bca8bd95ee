"""One worklist row per active ITB pump: the refill and battery findings the patient-view cards
would carry (outcome, tier, dates), the data-quality gaps, and the urgency order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cds_service.catalogue import Catalogue
from cds_service.config import Settings
from cds_service.fhir.record import PatientRecord
from cds_service.rules.dates import iso_date
from cds_service.rules.finding import Finding
from cds_service.rules.schedule import PumpSchedule, schedule
from cds_service.terminology import Terminology

Tier = Literal["info", "warning", "critical"]
_RANK = {"critical": 0, "warning": 2, "info": 3}
_UNREADABLE_RANK = 1  # a chart that could not be read: right after the critical rows


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RefillStatus(_Row):
    outcome: str | None = None  # the card's outcome; None: no card (nothing due yet)
    tier: Tier | None = None
    lastRefillDate: str | None = None
    alarmDate: str | None = None
    emptyDate: str | None = None
    dueDate: str | None = None
    booked: str | None = None  # a refill booked on or before the due date


class BatteryStatus(_Row):
    outcome: str | None = None
    tier: Tier | None = None
    eosDate: str | None = None


class Gap(_Row):
    """What keeps a date from being computed, or data that could not be read."""

    about: str | None = None  # the rule it blocks ("itb-refill"); None: the whole chart
    text: str  # in the catalogue's words ("programmed daily dose (mcg/day)")

    def said(self, words: Mapping[str, str]) -> str:
        """For a reader: "Refill: programmed daily dose (mcg/day)" (words: worklist_words)."""
        return f"{words.get(self.about, self.about)}: {self.text}" if self.about else self.text

    def flat(self) -> str:
        """For a file: "itb-refill: programmed daily dose (mcg/day)"."""
        return f"{self.about}: {self.text}" if self.about else self.text


class WorklistRow(_Row):
    patient: str  # the FHIR id of the Patient
    device: str | None = None  # "Device/id" (or the implant Procedure when no Device exists)
    model: str | None = None
    refill: RefillStatus | None = None
    battery: BatteryStatus | None = None  # None: a constant-flow pump has no battery
    gaps: list[Gap] = []  # what to record so the dates can be computed; data not obtained

    def tiers(self) -> list[str]:
        return [t for t in (self.refill.tier if self.refill else None,
                            self.battery.tier if self.battery else None) if t]

    def worst(self) -> str | None:
        """The row's most urgent tier (a pump counts once, under it)."""
        return min(self.tiers(), key=_RANK.__getitem__, default=None)

    def urgency(self) -> tuple[int, str, str]:
        """Critical first, then unreadable charts, warning, info, the rest; then by the
        earliest date to act on (refill due, else end of service)."""
        if self.device is None:
            rank = _UNREADABLE_RANK
        else:
            rank = min((_RANK[t] for t in self.tiers()), default=4 if not self.gaps else 3)
        dates = [d for d in (self.refill.dueDate if self.refill else None,
                             self.battery.eosDate if self.battery else None) if d]
        return rank, min(dates, default="9999-12-31"), self.patient


def sort_rows(rows: Sequence[WorklistRow]) -> list[WorklistRow]:
    return sorted(rows, key=WorklistRow.urgency)


def unreadable(patient_id: str, reasons: Sequence[str]) -> WorklistRow:
    """A candidate whose chart could not be read: listed, so that no pump goes missing."""
    return WorklistRow(patient=patient_id, gaps=[Gap(text=f"chart could not be read: {r}")
                                                 for r in reasons])


def rows_for(patient_id: str, record: PatientRecord, now: datetime, settings: Settings,
             terms: Terminology, catalogue: Catalogue) -> list[WorklistRow]:
    """The rows of one chart: one per active ITB pump, none without one."""
    not_obtained = [catalogue.common.prefetch_labels.get(k, k) for k in record.unavailable]
    out = []
    for pump in schedule(record, now, settings.refill, settings.battery, terms):
        gaps: list[Gap] = []
        refill = _refill(pump, gaps, catalogue)
        battery = _battery(pump, gaps, catalogue)
        if not_obtained:
            gaps.append(Gap(text="not obtained: " + ", ".join(not_obtained)))
        model = pump.pump.model.name if pump.pump.model is not None else None
        out.append(WorklistRow(patient=patient_id, device=pump.pump.ref, model=model,
                               refill=refill, battery=battery, gaps=gaps))
    return out


def _refill(pump: PumpSchedule, gaps: list[Gap], catalogue: Catalogue) -> RefillStatus:
    r = pump.refill
    finding = r.finding
    if finding is not None and finding.blocks is not None:
        gaps += _missing(finding, catalogue)
    last = r.basis.numbers if r.basis is not None else (
        finding.numbers if finding is not None else [])
    return RefillStatus(
        outcome=finding.outcome if finding is not None else None,
        tier=finding.tier.value if finding is not None else None,
        lastRefillDate=next((str(n.value) for n in last if n.key == "lastRefillDate"), None),
        alarmDate=iso_date(r.dates.alarm) if r.dates else None,
        emptyDate=iso_date(r.dates.empty) if r.dates else None,
        dueDate=iso_date(r.dates.due) if r.dates else None,
        booked=iso_date(r.booked[0]) if r.booked else None,
    )


def _battery(pump: PumpSchedule, gaps: list[Gap], catalogue: Catalogue
             ) -> BatteryStatus | None:
    b = pump.battery
    finding = b.finding
    if finding is None and b.end_of_service is None:
        return None  # constant flow: no battery
    if finding is not None and finding.blocks is not None:
        gaps += _missing(finding, catalogue)
    return BatteryStatus(
        outcome=finding.outcome if finding is not None else None,
        tier=finding.tier.value if finding is not None else None,
        eosDate=iso_date(b.end_of_service) if b.end_of_service else None,
    )


def _missing(finding: Finding, catalogue: Catalogue) -> list[Gap]:
    """The data-quality card's missing inputs, in the catalogue's words."""
    return [Gap(about=finding.blocks, text=label) for label in catalogue.missing_labels(finding)]
