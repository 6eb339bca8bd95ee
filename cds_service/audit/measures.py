"""What the governance dashboard answers: the committee's measures, per period and per card.

Counts come from SQL aggregates (audit.governance); the ratios here are divisions of those
counts, rounded for reading. Definitions a committee asks about are in the field comments.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Period = Literal["day", "week", "month"]
# Filter values are names from the catalogue and the service registry, never free text.
FilterValue = str | None


class _Measure(BaseModel):
    model_config = ConfigDict(extra="forbid")


def ratio(part: int, whole: int, scale: int = 1) -> float | None:
    """``part / whole`` (times ``scale``) to 4 decimals; None when there is nothing to divide."""
    if whole == 0:
        return None
    return round(part * scale / whole, 4)


class GovernanceQuery(_Measure):
    """The slice asked for. Call measures follow ``service`` and the time range only; card and
    feedback measures follow every filter; outcome measures follow pumps, not cards."""

    period: Period = "week"
    since: date | None = None  # UTC days: a committee reads whole days
    until: date | None = None  # exclusive
    service: FilterValue = None
    rule: FilterValue = None
    outcome: FilterValue = None
    tier: FilterValue = None
    rule_version: FilterValue = None


class Latency(_Measure):
    """Nearest-rank percentiles of the recorded call duration (ms)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class CallMeasures(_Measure):
    calls: int = 0
    patients: int = 0  # distinct patients
    users: int = 0  # distinct users
    user_days: int = 0  # distinct (user, day) pairs
    status_412: int = 0
    status_5xx: int = 0
    latency_ms: Latency = Field(default_factory=Latency)


class CardMeasures(_Measure):
    """A card's response is its latest feedback that fits it (flagged feedback is set apart)."""

    cards: int = 0
    per_1000_calls: float | None = None
    per_user_day: float | None = None
    accepted: int = 0
    overridden: int = 0
    no_response: int = 0
    override_rate: float | None = None  # overridden / (accepted + overridden)
    with_suggestions: int = 0  # cards that offered at least one suggestion
    suggestion_taken: int = 0  # of those: accepted with at least one suggestion
    suggestion_acceptance: float | None = None  # suggestion_taken / with_suggestions
    override_reasons: dict[str, int] = Field(default_factory=dict)  # reason code -> cards

    def finish(self, calls: int, user_days: int) -> CardMeasures:
        self.no_response = self.cards - self.accepted - self.overridden
        self.per_1000_calls = ratio(self.cards, calls, 1000)
        self.per_user_day = ratio(self.cards, user_days)
        self.override_rate = ratio(self.overridden, self.accepted + self.overridden)
        self.suggestion_acceptance = ratio(self.suggestion_taken, self.with_suggestions)
        self.override_reasons = dict(sorted(self.override_reasons.items()))
        return self


class OutcomeMeasures(_Measure):
    """What the cards exist for, from the trail of refill and battery cards.

    A pump patient has a card about a pump (refill, battery, or data quality naming one). A
    refill episode is a pump's cards with one last-refill date; it is recorded as refilled
    when a later card of that pump carries a later last-refill date (the date of that refill).
    Episodes and pumps count in the period of their first card.
    """

    pump_patients: int = 0
    overdue_cards: int = 0
    empty_cards: int = 0
    overdue_per_pump_patient: float | None = None
    empty_per_pump_patient: float | None = None
    refill_episodes: int = 0
    refills_recorded: int = 0
    days_to_refill_total: int = 0  # first card of the episode to the recorded refill
    mean_days_to_refill: float | None = None
    refilled_by_alarm_date: int = 0
    pumps_with_battery_card: int = 0
    replacements_booked: int = 0
    booked_before_end_of_service: int = 0

    def finish(self) -> OutcomeMeasures:
        self.overdue_per_pump_patient = ratio(self.overdue_cards, self.pump_patients)
        self.empty_per_pump_patient = ratio(self.empty_cards, self.pump_patients)
        self.mean_days_to_refill = ratio(self.days_to_refill_total, self.refills_recorded)
        return self


class FlaggedCounts(_Measure):
    """Feedback stored but set apart, by the period it was received, per flag."""

    total: int = 0
    by_flag: dict[str, int] = Field(default_factory=dict)


class PeriodMeasures(_Measure):
    period: str  # first day of the period (ISO date); "all" for the totals
    calls: CallMeasures = Field(default_factory=CallMeasures)
    cards: CardMeasures = Field(default_factory=CardMeasures)
    cards_by_rule: dict[str, int] = Field(default_factory=dict)
    outcomes: OutcomeMeasures = Field(default_factory=OutcomeMeasures)
    flagged_feedback: FlaggedCounts = Field(default_factory=FlaggedCounts)


class CardKind(_Measure):
    service: str
    rule: str
    outcome: str
    tier: str
    rule_version: str
    measures: CardMeasures = Field(default_factory=CardMeasures)


class CatalogueVersion(_Measure):
    """A catalogue version as the calls recorded it; ``first_seen`` over the whole log."""

    version: str
    first_seen: str  # UTC instant of the first call that used it
    first_period: str  # the period (within the range) it appears in first
    calls: int  # in the range


class Governance(_Measure):
    query: GovernanceQuery
    generated_at: datetime
    totals: PeriodMeasures
    periods: list[PeriodMeasures]
    card_kinds: list[CardKind]
    catalogue_versions: list[CatalogueVersion]
    reason_labels: dict[str, str] = Field(default_factory=dict)  # reason code -> a display
