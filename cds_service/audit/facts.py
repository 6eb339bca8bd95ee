"""The governance facts of an entry (schema.gov_*), and the check of feedback against its card.

A call's facts are derived from its record before the writer's lock is taken
(``FactualCall``); the batch writer adds the seq and inserts them in the entry's transaction.
A feedback item is checked there, against the card it names as its call recorded it: from the
same service, with override reasons and suggestions the card offered. What fails is stored all
the same, flagged, and counted apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import orjson

from cds_service.audit.chain import canonical_json
from cds_service.audit.entry import PreparedCall, feedback_payload, utc_text
from cds_service.audit.models import (
    CallRecord,
    CardRecord,
    FeedbackFlag,
    FeedbackRecord,
    FindingRecord,
)

NO_RULE = "(none)"  # a card without a rule, in counts and reports
NO_REASON = "(no reason given)"  # an override without a reason
REFILL_RULE = "itb-refill"
BATTERY_RULE = "itb-battery"


def person_key(value: str | None) -> str | None:
    """A digest that tells people apart in counts without naming them."""
    if not value:
        return None
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def periods(moment: datetime) -> tuple[str, str, str]:
    """(day, ISO week's Monday, month's first day) of a UTC instant, as ISO dates."""
    day = moment.date()
    week = day - timedelta(days=day.weekday())
    return day.isoformat(), week.isoformat(), day.replace(day=1).isoformat()


def period_of_day(day: str, period: str) -> str:
    """The first day of the day's period ("day", "week" or "month"), as an ISO date."""
    if period == "day":
        return day
    d = date.fromisoformat(day)
    if period == "week":
        return (d - timedelta(days=d.weekday())).isoformat()
    return d.replace(day=1).isoformat()


def day_number(value: object) -> int | None:
    """The ordinal of an ISO date (or date-time) a finding carries; None if it is not one."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10]).toordinal()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class CardCheck:
    """What feedback on a card is checked against."""

    service_id: str
    suggestions: frozenset[str]
    reasons: frozenset[tuple[str, str]] | None  # (system, code); None: not recorded


# gov_call and gov_card rows without their leading seq (known only inside the writer's lock).
CallRow = tuple[object, ...]
CardRow = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class CallFacts:
    call: CallRow
    cards: tuple[CardRow, ...]
    checks: tuple[tuple[str, CardCheck], ...]  # card uuid -> its check


def _bounded(value: str | None) -> str | None:
    # An index key that comes from outside (the chart, or a client's reason code on a card
    # recorded before cards kept their reasons): PostgreSQL refuses index rows over ~2.7 kB.
    return None if value is None else value[:200]


def _finding_for(rec: CallRecord, index: int) -> FindingRecord | None:
    # findings[i] produced cards[i] (audit.trace); a record that does not pair them has none.
    if len(rec.findings) == len(rec.cards):
        return rec.findings[index]
    return None


def _card_row(rec: CallRecord, card: CardRecord, finding: FindingRecord | None,
              day_no: int, common: tuple[object, ...]) -> CardRow:
    rule = card.rule or (finding.rule if finding else None) or NO_RULE
    numbers = finding.numbers if finding else {}
    booked_day = day_number(numbers.get("bookedDate"))
    booked = bool(card.outcome == "booked" or booked_day is not None or (
        finding is not None and "booked-but-critical" in finding.notes))
    reasons = None if card.override_reasons is None else orjson.dumps(
        [[r.system, r.code] for r in card.override_reasons]).decode("utf-8")
    return (
        card.uuid, rec.hook_instance, *common, day_no,
        rule,
        card.outcome or (finding.outcome if finding else None) or NO_RULE,
        finding.tier if finding else card.indicator,
        finding.rule_version if finding else rec.rule_versions.get(rule, ""),
        person_key(rec.patient_id),
        _bounded(finding.device_ref) if finding else None,
        len(card.suggestion_uuids),
        orjson.dumps(card.suggestion_uuids).decode("utf-8"),
        reasons,
        day_number(numbers.get("lastRefillDate")),
        day_number(numbers.get("alarmDate")),
        day_number(numbers.get("endOfServiceDate")),
        booked_day,
        int(booked),
    )


def call_facts(rec: CallRecord) -> CallFacts:
    received = utc_text(rec.received_at)
    day, week, month = periods(rec.received_at)
    common = (rec.service_id, received, day, week, month)
    call = (rec.hook_instance, *common, float(rec.duration_ms or 0.0), rec.http_status,
            person_key(rec.patient_id), person_key(rec.user_id), rec.catalogue_version)
    day_no = rec.received_at.date().toordinal()
    # One row per card uuid, as audit_card keeps them: a uuid twice in one call is one card.
    first = {card.uuid: i for i, card in reversed(list(enumerate(rec.cards)))}
    ordered = sorted(first.items(), key=lambda item: item[1])
    cards = tuple(_card_row(rec, rec.cards[i], _finding_for(rec, i), day_no, common)
                  for _, i in ordered)
    checks = tuple(
        (card.uuid, CardCheck(
            service_id=rec.service_id,
            suggestions=frozenset(card.suggestion_uuids),
            reasons=None if card.override_reasons is None else frozenset(
                (r.system, r.code) for r in card.override_reasons)))
        for card in (rec.cards[i] for _, i in ordered))
    return CallFacts(call=call, cards=cards, checks=checks)


@dataclass(frozen=True, slots=True)
class FactualCall(PreparedCall):
    """A prepared call with its governance facts, derived outside the writer's lock.

    A subclass rather than a field of PreparedCall: entry.py holds what the chain hashes, and
    the facts are not hashed.
    """

    facts: CallFacts

    @classmethod
    def of(cls, record: CallRecord) -> FactualCall:
        plain = PreparedCall.of(record)
        return cls(hook_instance=plain.hook_instance, occurred_at=plain.occurred_at,
                   payload=plain.payload, card_uuids=plain.card_uuids,
                   facts=call_facts(record))


def facts_of(item: PreparedCall) -> CallFacts:
    """The facts of a prepared call. Every writer prepares calls with them (FactualCall.of),
    so the chain's lock is never held to parse a payload back."""
    if not isinstance(item, FactualCall):
        raise TypeError("calls are written as FactualCall.of(record), with their facts")
    return item.facts


def check_from_row(service_id: str, suggestions: str, reasons: str | None) -> CardCheck:
    """A CardCheck from a stored gov_card row."""
    return CardCheck(
        service_id=service_id,
        suggestions=frozenset(orjson.loads(suggestions)),
        reasons=None if reasons is None else frozenset(
            (str(s), str(c)) for s, c in orjson.loads(reasons)))


def feedback_flags(check: CardCheck | None, service_id: str | None, fb: FeedbackRecord
                   ) -> list[FeedbackFlag]:
    if check is None:
        return ["unknown-card"]
    flags: list[FeedbackFlag] = []
    if service_id is not None and service_id != check.service_id:
        flags.append("other-service")
    given = (fb.override_reason_system, fb.override_reason_code, fb.override_reason_display)
    if check.reasons is not None and any(v is not None for v in given):
        # A reason without a system is matched on its code alone: the card's codes are unique
        # within the card; a reason with no code (a display only) was not one it offered.
        system, code = fb.override_reason_system, fb.override_reason_code
        if code is None or not any(c == code and (system is None or s == system)
                                   for s, c in check.reasons):
            flags.append("reason-not-offered")
    if any(s not in check.suggestions for s in fb.accepted_suggestions):
        flags.append("suggestion-not-on-card")
    return flags


# The card's response becomes this item unless the card has a later one (outcome time, then
# arrival): items may arrive in any order, the latest wins all the same.
UPDATE_RESPONSE = (
    "UPDATE gov_card SET response_outcome = {m}, response_reason = {m}, "
    "response_accepted = {m}, response_at = {m}, response_seq = {m} "
    "WHERE card_uuid = {m} AND hook_instance = {m} AND (response_seq IS NULL "
    "OR response_at < {m} OR (response_at = {m} AND response_seq < {m}))")


def response_row(seq: int, fb: FeedbackRecord, hook_instance: str) -> tuple[object, ...]:
    """The parameters of UPDATE_RESPONSE for a stored item that fits its card."""
    at = utc_text(fb.outcome_timestamp)
    reason = _bounded(fb.override_reason_code)
    return (fb.outcome, reason, len(fb.accepted_suggestions), at, seq, fb.card_uuid,
            hook_instance, at, at, seq)


def feedback_row(seq: int, fb: FeedbackRecord, hook_instance: str | None,
                 flags: list[FeedbackFlag]) -> tuple[object, ...]:
    day, week, month = periods(fb.received_at)
    return (seq, fb.card_uuid, hook_instance, fb.service_id, fb.outcome,
            utc_text(fb.outcome_timestamp), utc_text(fb.received_at), day, week, month,
            fb.override_reason_system, fb.override_reason_code, fb.override_reason_display,
            len(fb.accepted_suggestions), ",".join(flags))


def flagged_feedback_payload(feedback: str, hook_instance: str | None,
                             flags: list[FeedbackFlag]) -> str:
    """The hashed payload of a feedback entry, with the flags of its check.

    ``unknown_card`` already says the one flag older entries could carry, so an item without
    any other flag is stored in exactly the bytes it always was; the others are hashed with it.
    """
    extra = [f for f in flags if f != "unknown-card"]
    if not extra:
        return feedback_payload(feedback, hook_instance)
    return canonical_json({"feedback": orjson.loads(feedback), "flags": extra,
                           "hook_instance": hook_instance, "unknown_card": hook_instance is None})
