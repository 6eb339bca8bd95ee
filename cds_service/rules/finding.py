"""What a rule returns: findings, rendered into cards by the catalogue, recorded by the audit.

A finding says nothing in words: its evidence rows and missing inputs carry codes, plus the
chart's own words (a drug name, a model, a reference), and the catalogue renders the labels
from cards/*.yaml, where clinical text is reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, quote, urlencode


class Tier(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class EvidenceLabel(StrEnum):
    """Codes of cards/common.yaml ``evidence_labels``: what an evidence row is, or what its
    value says where the value is words rather than the chart's own value."""

    CONDITION = "condition"
    MEDICATION = "medication"
    ORAL_ORDERS_TOGETHER = "oral-orders-together"
    INTOLERANCE = "intolerance"
    ADVERSE_EVENT_WITH = "adverse-event-with"
    BACLOFEN_ALLERGY = "baclofen-allergy"
    TRIAL_PROCEDURE = "trial-procedure"
    TRIAL_BOLUS = "trial-bolus"
    TRIAL_RESPONSE = "trial-response"
    MAS_BEFORE = "mas-before"
    MAS_AFTER = "mas-after"
    PENN_BEFORE = "penn-before"
    PENN_AFTER = "penn-after"
    OVERDOSE_EVENT = "overdose-event"
    OVERDOSE_CONDITION = "overdose-condition"
    OVERDOSE_OBSERVATION = "overdose-observation"
    PUMP = "pump"
    LAST_REFILL = "last-refill"
    IMPLANT_AS_LAST_REFILL = "implant-as-last-refill"
    IMPLANT = "implant"
    PUMP_REMOVAL = "pump-removal"
    ERI = "eri"
    REPLACEMENT_BOOKED = "replacement-booked"
    # The chart entries a pump calculation read its numbers from: each number's source cites
    # one of these, so the card says where a number came from by date, not by resource id.
    RESERVOIR_VOLUME = "reservoir-volume"
    CONCENTRATION = "concentration"
    ITB_ORDER = "itb-order"
    PUMP_DOSE_RECORD = "pump-dose-record"
    RESERVE_VOLUME = "reserve-volume"
    ALARM_DATE = "alarm-date"
    REFILL_BOOKED = "refill-booked"
    PROPOSED_APPOINTMENT = "proposed-appointment"
    # values in words
    STOPPED = "stopped"
    AT_MAXIMUM = "at-maximum"
    RANGE_AT_MAXIMUM = "range-at-maximum"
    INTOLERANCE_RECORD = "intolerance-record"
    ALLERGY_KIND = "allergy-kind"
    DOSE_NOT_COMPUTABLE = "dose-not-computable"
    DRAFT_ORDER = "draft-order"
    DRAFT_ORDER_DOSE = "draft-order-dose"
    ACTIVE_ORDER_DOSE = "active-order-dose"
    REACHED = "reached"


# The codes above that say a row's value in words (the others say what a row is).
VALUE_WORDS = frozenset({
    EvidenceLabel.STOPPED, EvidenceLabel.AT_MAXIMUM, EvidenceLabel.RANGE_AT_MAXIMUM,
    EvidenceLabel.INTOLERANCE_RECORD, EvidenceLabel.ALLERGY_KIND,
    EvidenceLabel.DOSE_NOT_COMPUTABLE, EvidenceLabel.DRAFT_ORDER, EvidenceLabel.DRAFT_ORDER_DOSE,
    EvidenceLabel.ACTIVE_ORDER_DOSE, EvidenceLabel.REACHED,
})


class MissingInput(StrEnum):
    """Codes of cards/data-quality.yaml ``missing``: an input the chart lacks."""

    LAST_REFILL_DATE = "last-refill-date"
    REFILL_VOLUME = "refill-volume"
    PUMP_CONCENTRATION = "pump-concentration"
    PUMP_DAILY_DOSE = "pump-daily-dose"
    IMPLANT_DATE = "implant-date"
    ORAL_DAILY_DOSE = "oral-daily-dose"


# The chart's own words (and numbers as written) a label puts in: (("model", "Prometra"),).
Words = tuple[tuple[str, str], ...]


def words(**chart_words: str) -> Words:
    return tuple(chart_words.items())


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of the chart that drove the finding."""

    what: str  # an EvidenceLabel: "pump", "last-refill"
    reference: str | None = None  # "MedicationRequest/123"
    code: str | None = None  # "system|code" that matched, when one did
    date: str | None = None  # ISO 8601 date or dateTime
    value: str | None = None  # the value used as the chart gives it, with its unit: "20 mL"
    value_label: str | None = None  # an EvidenceLabel where the value is words: "stopped"
    words: Words = ()  # what the labels put in


def missing_input(code: MissingInput, **chart_words: str) -> str:
    """A missing input as a finding (and the audit) records it: its code, and the chart words
    its label needs as a query ("oral-daily-dose?agent=baclofen&ref=MedicationRequest/m1")."""
    if not chart_words:
        return str(code)
    return f"{code}?{urlencode(chart_words, safe='/', quote_via=quote)}"


def read_missing(item: str) -> tuple[str, dict[str, str]]:
    """The code and the chart words of a missing input (``missing_input`` read back)."""
    code, _, query = item.partition("?")
    return code, dict(parse_qsl(query, keep_blank_values=True))


# A number behind a decision: value plus unit (e.g. ("V", 20.0, "mL")) or an ISO date string.
NumberValue = float | int | str | bool


class SourceKind(StrEnum):
    """Where a number came from when it is not a chart entry ("Type/id"): a number's source
    is a chart reference or "<kind>" / "<kind>:<detail>" (cards/common.yaml source_labels)."""

    COMPUTED = "computed"  # arithmetic on the other numbers (the card shows it)
    SETTING = "setting"  # detail: the setting's name, "refill.max_interval_days"
    TABLE = "table"  # detail: the terminology table, "oral-max-doses"
    MODEL = "model"  # detail: the pump model of the pump-models table
    LABEL = "label"  # the drug's prescribing information
    ASSUMED = "assumed"  # no model: the assumed value of the pump-models table


def source(kind: SourceKind, detail: str = "") -> str:
    """A number's source that is not a chart entry: "setting:refill.reserve_ml"."""
    return f"{kind}:{detail}" if detail else str(kind)


@dataclass(frozen=True, slots=True)
class Number:
    key: str  # machine key used in itb-cds.finding and by card templates: "volumeMl"
    value: NumberValue
    unit: str | None = None  # "mL", "mcg/mL", "mcg/day", "d"; None for dates and flags
    source: str | None = None  # a chart reference ("Observation/5") or see ``source``


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # "itb-candidacy" | "itb-trial-outcome" | "itb-refill" | "itb-battery" | ...
    rule_version: str
    outcome: str  # one outcome code of the rule (rule book: each rule's "Outcomes and cards")
    tier: Tier
    evidence: tuple[Evidence, ...] = ()
    numbers: tuple[Number, ...] = ()
    missing: tuple[str, ...] = ()  # inputs that were absent: see missing_input
    notes: tuple[str, ...] = ()  # short catalogue keys for modifiers, e.g. "off-label-dystonia"
    reason_refs: tuple[str, ...] = ()  # references the suggestion's reasonReference cites
    blocks: str | None = None  # for itb-data-quality: the rule id this finding blocks
    device_ref: str | None = None  # the pump a refill/battery finding is about
    suggest: bool = True  # False where the card must carry no suggestion
    # A resource of the hook's context the finding is about (a proposed Appointment): the
    # card's suggestion updates it rather than creating a new request.
    target_ref: str | None = None

    def number(self, key: str) -> Number | None:
        for n in self.numbers:
            if n.key == key:
                return n
        return None
