"""Clinical scenario fixtures: the model of ``fixtures/<family>/<id>.json`` and date shifting.

A scenario's expectations hold at its ``anchor``. ``shifted_request`` moves every date in the
request by the whole number of days between the anchor and another day, so that the same
fixture stays valid on any calendar date (fixtures must not rot).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

from cds_service.services import SERVICES_BY_ID

Indicator = Literal["info", "warning", "critical"]
RuleId = Literal[
    "itb-candidacy", "itb-trial-outcome", "itb-refill", "itb-battery", "itb-data-quality"
]
Family = Literal["candidacy", "trial", "refill", "battery", "data-quality", "mixed",
                 "scheduling"]

# The tier each outcome carries (rule book: each rule's "Outcomes and cards").
OUTCOME_INDICATORS: Mapping[str, Mapping[str, Indicator]] = {
    "itb-candidacy": {"candidate": "info", "contraindicated": "warning", "deferred": "info"},
    "itb-trial-outcome": {
        "positive": "info",
        "negative-next-step": "info",
        "negative-final": "warning",
        "undocumented": "warning",
        "adverse": "warning",
    },
    "itb-refill": {
        "empty": "critical",
        "overdue": "critical",
        "due-soon": "warning",
        "notice": "info",
        "booked": "info",
        "booked-late": "warning",  # appointment-book: a proposed refill after the due date
        "booked-after-empty": "critical",
    },
    "itb-battery": {
        "end-of-service": "critical",
        "eri": "critical",
        "plan": "warning",
        "notice": "info",
        "booked": "info",
        "booked-late": "warning",  # appointment-book: a replacement close to end of service
        "booked-after-eos": "critical",
    },
    "itb-data-quality": {"missing-data": "info", "stale-device": "info"},
}

# Tiers an outcome takes in a stated case instead (rule book: itb-candidacy, decision
# order-above-maximum).
RAISED_INDICATORS: Mapping[tuple[str, str], Indicator] = {
    ("itb-candidacy", "candidate"): "warning",
    ("itb-candidacy", "deferred"): "warning",
}

PREFETCH_KEYS: tuple[str, ...] = SERVICES_BY_ID["itb-patient-view"].prefetch_keys

BUNDLE_SUFFIX = ".bundle.json"


class ExpectedCard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: RuleId
    outcome: str
    indicator: Indicator
    # For data-quality cards: the rule whose answer the missing data blocks.
    blocks: RuleId | None = None

    @model_validator(mode="after")
    def _outcome_matches_rule(self) -> ExpectedCard:
        tiers = OUTCOME_INDICATORS[self.rule]
        if self.outcome not in tiers:
            raise ValueError(f"{self.rule} has no outcome {self.outcome!r}")
        allowed = {tiers[self.outcome], RAISED_INDICATORS.get((self.rule, self.outcome))}
        if self.indicator not in allowed:
            raise ValueError(
                f"{self.rule}/{self.outcome} is {tiers[self.outcome]}, not {self.indicator}"
            )
        if (self.blocks is not None) != (self.outcome == "missing-data"):
            raise ValueError("'blocks' belongs on missing-data cards, and only there")
        return self


class MalformedEntry(BaseModel):
    """A prefetch entry that is deliberately invalid FHIR and must be skipped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    index: int


class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    story: str
    family: Family
    service: str  # an id of the service registry
    anchor: AwareDatetime
    expected: list[ExpectedCard]
    request: dict[str, Any]
    malformed: list[MalformedEntry] = []

    @field_validator("service")
    @classmethod
    def _known_service(cls, value: str) -> str:
        if value not in SERVICES_BY_ID:
            raise ValueError(f"not a service of the registry: {value!r}")
        return value


def load_scenario(path: Path) -> Scenario:
    return Scenario.model_validate_json(path.read_bytes())


def load_scenarios(root: Path) -> list[Scenario]:
    """Every scenario under ``root`` (recursively), sorted by id; bundles are skipped."""
    paths = (p for p in root.rglob("*.json") if not p.name.endswith(BUNDLE_SUFFIX))
    return sorted((load_scenario(p) for p in paths), key=lambda s: s.id)


def bundle_path(scenario_path: Path) -> Path:
    return scenario_path.with_name(scenario_path.name.removesuffix(".json") + BUNDLE_SUFFIX)


def load_bundle(scenario_path: Path) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(bundle_path(scenario_path).read_bytes())
    return bundle


# --------------------------------------------------------------------------- date shifting

# FHIR date / dateTime / instant: YYYY, YYYY-MM, YYYY-MM-DD, or a full time with an offset.
# An offset-less time is tolerated (some EHRs send it) and kept offset-less.
_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?P<rest>T(?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:\.\d+)?)?"
    r"(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)?)?)?)?"
)

# Values under these keys are identifiers or codes, never dates, even when they look like one
# (an RxNorm code "1292" is also a valid FHIR year).
_NOT_DATES = frozenset(
    {
        "id",
        "reference",
        "url",
        "fullUrl",
        "system",
        "code",
        "version",
        "display",
        "text",
        "div",
        "value",
        "unit",
        "resourceType",
        "hookInstance",
        "userId",
        "patientId",
        "encounterId",
        "fhirServer",
        "selections",
        "modelNumber",
        "serialNumber",
        "lotNumber",
        "name",
        "family",
        "given",
        "status",
    }
)


def shift_days(anchor: datetime, now: datetime) -> int:
    """Whole calendar days (UTC) from the anchor's date to ``now``'s date."""
    return (now.astimezone(UTC).date() - anchor.astimezone(UTC).date()).days


def shifted_anchor(s: Scenario, now: datetime) -> datetime:
    """The instant at which a request shifted to ``now``'s day must be evaluated."""
    return s.anchor + timedelta(days=shift_days(s.anchor, now))


def shift_date_string(value: str, days: int) -> str:
    """``value`` moved by ``days`` if it is a FHIR date/dateTime/instant, else unchanged.

    Partial dates move from the middle of their period (15th of the month, 2 July of the
    year), so a shift of about a year moves a bare year by one and small shifts keep it.
    """
    match = _DATE.fullmatch(value)
    if match is None or days == 0:
        return value
    year, month, dom = int(match["y"]), match["m"], match["d"]
    try:
        if dom is not None:
            moved = date(year, int(month), int(dom)) + timedelta(days=days)
            return moved.isoformat() + (match["rest"] or "")
        if month is not None:
            moved = date(year, int(month), 15) + timedelta(days=days)
            return f"{moved.year:04d}-{moved.month:02d}"
        moved = date(year, 7, 2) + timedelta(days=days)
        return f"{moved.year:04d}"
    except (ValueError, OverflowError):
        return value  # not a real calendar date (month 13, year 0000 ...): leave it alone


def shift_dates(value: Any, days: int, key: str | None = None) -> Any:
    """A deep copy of a JSON value with every date string shifted by ``days``."""
    if isinstance(value, dict):
        return {k: shift_dates(v, days, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shift_dates(v, days, key) for v in value]
    if isinstance(value, str) and key not in _NOT_DATES:
        return shift_date_string(value, days)
    return value


def shifted_request(s: Scenario, now: datetime) -> dict[str, Any]:
    """The scenario's CDS Hooks request with every date moved to ``now``'s day."""
    shifted: dict[str, Any] = shift_dates(s.request, shift_days(s.anchor, now))
    return shifted


def shifted_bundle(s: Scenario, bundle: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The scenario's FHIR Bundle (see ``load_bundle``) with every date moved likewise."""
    shifted: dict[str, Any] = shift_dates(dict(bundle), shift_days(s.anchor, now))
    return shifted
