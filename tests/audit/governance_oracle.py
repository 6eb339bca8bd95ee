"""The governance measures computed by brute force, in Python, from the records themselves.

Independent of the facts tables and the SQL: it walks the CallRecords and FeedbackRecords as
they were sent (deduplicating and joining feedback as the chain does), and uses the measures
models only for their shape and their ratios.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from cds_service.audit.entry import utc_text
from cds_service.audit.measures import (
    CardKind,
    CardMeasures,
    CatalogueVersion,
    Governance,
    GovernanceQuery,
    Latency,
    PeriodMeasures,
)
from cds_service.audit.models import CallRecord, CardRecord, FeedbackRecord, FindingRecord
from tests.audit.governance_log import SyntheticLog


def period_of(moment: datetime, period: str) -> str:
    d = moment.date()
    if period == "day":
        return d.isoformat()
    if period == "week":
        return (d - timedelta(days=d.weekday())).isoformat()
    return d.replace(day=1).isoformat()


def iso_day(value: Any) -> int | None:
    try:
        return date.fromisoformat(str(value)[:10]).toordinal() if value is not None else None
    except ValueError:
        return None


@dataclass
class Shown:
    call: CallRecord
    card: CardRecord
    finding: FindingRecord | None

    @property
    def rule(self) -> str:
        return self.card.rule or (self.finding.rule if self.finding else "(none)")

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        f = self.finding
        return (self.call.service_id, self.rule, self.card.outcome or "(none)",
                f.tier if f else self.card.indicator,
                f.rule_version if f else self.call.rule_versions.get(self.rule, ""))

    def number(self, key: str) -> int | None:
        return iso_day(self.finding.numbers.get(key)) if self.finding else None


@dataclass
class Stored:
    seq: int
    record: FeedbackRecord
    hook_instance: str | None
    flags: list[str]


def flags_of(fb: FeedbackRecord, service: str, shown: Shown | None) -> list[str]:
    if shown is None:
        return ["unknown-card"]
    flags = []
    if service != shown.call.service_id:
        flags.append("other-service")
    reason = (fb.override_reason_system, fb.override_reason_code, fb.override_reason_display)
    offered = shown.card.override_reasons
    if offered is not None and any(v is not None for v in reason):
        if fb.override_reason_code is None or not any(
                o.code == fb.override_reason_code
                and fb.override_reason_system in (None, o.system) for o in offered):
            flags.append("reason-not-offered")
    if any(s not in shown.card.suggestion_uuids for s in fb.accepted_suggestions):
        flags.append("suggestion-not-on-card")
    return flags


def chain(log: SyntheticLog) -> tuple[list[Shown], dict[str, Shown], list[Stored]]:
    shown: list[Shown] = []
    first: dict[str, Shown] = {}
    for call in log.calls:
        paired = len(call.findings) == len(call.cards)
        seen: set[str] = set()
        for i, card in enumerate(call.cards):
            if card.uuid in seen:
                continue
            seen.add(card.uuid)
            s = Shown(call, card, call.findings[i] if paired else None)
            shown.append(s)
            first.setdefault(card.uuid, s)
    stored: list[Stored] = []
    keys: set[tuple[str, str, str]] = set()
    seq = len(log.calls)
    for service, items in log.posts:
        for fb in items:
            key = (fb.card_uuid, fb.outcome, utc_text(fb.outcome_timestamp))
            if key in keys:
                continue
            keys.add(key)
            seq += 1
            s = first.get(fb.card_uuid)
            stored.append(Stored(seq, fb, s.call.hook_instance if s else None,
                                 flags_of(fb, service, s)))
    return shown, first, stored


def in_range(moment: datetime, service: str | None, q: GovernanceQuery) -> bool:
    day = moment.date()
    return ((q.since is None or day >= q.since) and (q.until is None or day < q.until)
            and (q.service is None or service == q.service))


def nearest_rank(values: list[float]) -> Latency:
    ordered = sorted(values)
    n = len(ordered)
    return Latency(**{f"p{p}": ordered[math.ceil(p * n / 100) - 1] for p in (50, 90, 99)})


def _calls(log: SyntheticLog, q: GovernanceQuery, at: Any, totals: PeriodMeasures
           ) -> dict[str, int]:
    per_service: dict[str, int] = defaultdict(int)
    durations: dict[str, list[float]] = defaultdict(list)
    people: dict[str, tuple[set[str], set[str], set[tuple[str, str]]]] = {}
    for call in log.calls:
        if not in_range(call.received_at, call.service_id, q):
            continue
        p = period_of(call.received_at, q.period)
        per_service[call.service_id] += 1
        durations[p].append(float(call.duration_ms or 0.0))
        durations["all"].append(float(call.duration_ms or 0.0))
        for key in (p, "all"):
            m = at(key).calls if key != "all" else totals.calls
            m.calls += 1
            m.status_412 += call.http_status == 412
            m.status_5xx += call.http_status >= 500
            patients, users, user_days = people.setdefault(key, (set(), set(), set()))
            if call.patient_id:
                patients.add(call.patient_id)
            if call.user_id:
                users.add(call.user_id)
                user_days.add((call.user_id, call.received_at.date().isoformat()))
    for key, (patients, users, user_days) in people.items():
        m = at(key).calls if key != "all" else totals.calls
        m.patients, m.users, m.user_days = len(patients), len(users), len(user_days)
        m.latency_ms = nearest_rank(durations[key])
    return per_service


def _cards(shown: list[Shown], stored: list[Stored], q: GovernanceQuery, at: Any,
           totals: PeriodMeasures, kinds: dict[Any, CardKind]) -> None:
    latest: dict[tuple[str, str | None], Stored] = {}
    for s in stored:
        if s.flags:
            continue
        key = (s.record.card_uuid, s.hook_instance)
        seen = latest.get(key)
        if seen is None or (s.record.outcome_timestamp, s.seq) > (
                seen.record.outcome_timestamp, seen.seq):
            latest[key] = s
    wanted = {"rule": q.rule, "outcome": q.outcome, "tier": q.tier,
              "rule_version": q.rule_version}
    for s in shown:
        key = s.key
        values = dict(zip(("service", "rule", "outcome", "tier", "rule_version"), key,
                          strict=True))
        if not in_range(s.call.received_at, s.call.service_id, q) or any(
                v is not None and values[k] != v for k, v in wanted.items()):
            continue
        period = at(period_of(s.call.received_at, q.period))
        for by_rule in (period.cards_by_rule, totals.cards_by_rule):
            by_rule[key[1]] = by_rule.get(key[1], 0) + 1
        kind = kinds.setdefault(key, CardKind(service=key[0], rule=key[1], outcome=key[2],
                                              tier=key[3], rule_version=key[4]))
        response = latest.get((s.card.uuid, s.call.hook_instance))
        for m in (period.cards, totals.cards, kind.measures):
            m.cards += 1
            m.with_suggestions += bool(s.card.suggestion_uuids)
            if response is None:
                continue
            if response.record.outcome == "accepted":
                m.accepted += 1
                m.suggestion_taken += bool(response.record.accepted_suggestions
                                           and s.card.suggestion_uuids)
            else:
                m.overridden += 1
                reason = response.record.override_reason_code or "(no reason given)"
                m.override_reasons[reason] = m.override_reasons.get(reason, 0) + 1


def _flagged(stored: list[Stored], q: GovernanceQuery, at: Any, totals: PeriodMeasures
             ) -> None:
    for s in stored:
        if s.flags and in_range(s.record.received_at, s.record.service_id, q):
            for m in (at(period_of(s.record.received_at, q.period)).flagged_feedback,
                      totals.flagged_feedback):
                m.total += 1
                for flag in s.flags:
                    m.by_flag[flag] = m.by_flag.get(flag, 0) + 1


def _pump_cards(shown: list[Shown], q: GovernanceQuery, at: Any, totals: PeriodMeasures
                ) -> None:
    patients: dict[str, set[str]] = defaultdict(set)
    for s in shown:
        device = s.finding.device_ref if s.finding else None
        if device is None or not s.call.patient_id or not in_range(
                s.call.received_at, s.call.service_id, q):
            continue
        p = period_of(s.call.received_at, q.period)
        patients[p].add(s.call.patient_id)
        patients["all"].add(s.call.patient_id)
        for o in (at(p).outcomes, totals.outcomes):
            if s.rule == "itb-refill":
                o.overdue_cards += s.card.outcome == "overdue"
                o.empty_cards += s.card.outcome == "empty"
    for key, who in patients.items():
        (at(key) if key != "all" else totals).outcomes.pump_patients = len(who)


def _refills(shown: list[Shown], q: GovernanceQuery, at: Any, totals: PeriodMeasures) -> None:
    episodes: dict[tuple[str, str], dict[int, list[Shown]]] = defaultdict(
        lambda: defaultdict(list))
    for s in shown:
        last = s.number("lastRefillDate")
        device = s.finding.device_ref if s.finding else None
        if (s.rule == "itb-refill" and last is not None and s.call.patient_id and device
                and (q.service is None or s.call.service_id == q.service)):
            episodes[(s.call.patient_id, device)][last].append(s)
    for by_last in episodes.values():
        order = sorted(by_last)
        for i, last in enumerate(order):
            cards = by_last[last]
            first = min(cards, key=lambda s: s.call.received_at)
            if not in_range(first.call.received_at, first.call.service_id, q):
                continue
            start = min(s.call.received_at.date().toordinal() for s in cards)
            alarms = [a for a in (s.number("alarmDate") for s in cards) if a is not None]
            nxt = order[i + 1] if i + 1 < len(order) else None
            for o in (at(period_of(first.call.received_at, q.period)).outcomes,
                      totals.outcomes):
                o.refill_episodes += 1
                if nxt is not None:
                    o.refills_recorded += 1
                    o.days_to_refill_total += nxt - start
                    o.refilled_by_alarm_date += bool(alarms and nxt <= min(alarms))


def _replacements(shown: list[Shown], q: GovernanceQuery, at: Any, totals: PeriodMeasures
                  ) -> None:
    pumps: dict[tuple[str, str], list[Shown]] = defaultdict(list)
    for s in shown:
        device = s.finding.device_ref if s.finding else None
        if (s.rule == "itb-battery" and s.call.patient_id and device
                and (q.service is None or s.call.service_id == q.service)):
            pumps[(s.call.patient_id, device)].append(s)
    for cards in pumps.values():
        first = min(cards, key=lambda s: s.call.received_at)
        if not in_range(first.call.received_at, first.call.service_id, q):
            continue

        def booked(s: Shown) -> bool:
            return (s.card.outcome == "booked" or s.number("bookedDate") is not None
                    or "booked-but-critical" in (s.finding.notes if s.finding else []))

        def before(s: Shown) -> bool:
            b, e = s.number("bookedDate"), s.number("endOfServiceDate")
            return s.card.outcome == "booked" or (b is not None and e is not None and b <= e)

        for o in (at(period_of(first.call.received_at, q.period)).outcomes, totals.outcomes):
            o.pumps_with_battery_card += 1
            o.replacements_booked += any(booked(s) for s in cards)
            o.booked_before_end_of_service += any(before(s) for s in cards)


def _versions(log: SyntheticLog, q: GovernanceQuery) -> list[CatalogueVersion]:
    first: dict[str, datetime] = {}
    seen: dict[str, tuple[str, int]] = {}
    for call in log.calls:
        v = call.catalogue_version
        if v is None:
            continue
        first[v] = min(first.get(v, call.received_at), call.received_at)
        if in_range(call.received_at, call.service_id, q):
            p = period_of(call.received_at, q.period)
            old = seen.get(v)
            seen[v] = (min(old[0], p) if old else p, (old[1] if old else 0) + 1)
    return sorted((CatalogueVersion(version=v, first_seen=utc_text(first[v]),
                                    first_period=p, calls=n) for v, (p, n) in seen.items()),
                  key=lambda cv: (cv.first_seen, cv.version))


def brute_force(log: SyntheticLog, q: GovernanceQuery) -> Governance:
    shown, _, stored = chain(log)
    periods: dict[str, PeriodMeasures] = {}
    totals = PeriodMeasures(period="all")

    def at(key: str) -> PeriodMeasures:
        return periods.setdefault(key, PeriodMeasures(period=key))

    kinds: dict[Any, CardKind] = {}
    per_service = _calls(log, q, at, totals)
    _cards(shown, stored, q, at, totals, kinds)
    _flagged(stored, q, at, totals)
    _pump_cards(shown, q, at, totals)
    _refills(shown, q, at, totals)
    _replacements(shown, q, at, totals)
    for m in [*periods.values(), totals]:
        m.cards.finish(m.calls.calls, m.calls.user_days)
        m.outcomes.finish()
        m.cards_by_rule = dict(sorted(m.cards_by_rule.items()))
        m.flagged_feedback.by_flag = dict(sorted(m.flagged_feedback.by_flag.items()))
    for key, kind in kinds.items():
        kind.measures.finish(per_service.get(key[0], 0), totals.calls.user_days)
    labels: dict[str, str] = {}
    for s in stored:
        r = s.record
        if not s.flags and r.override_reason_code and r.override_reason_display:
            labels[r.override_reason_code] = min(labels.get(r.override_reason_code,
                                                            r.override_reason_display),
                                                 r.override_reason_display)
    return Governance(query=q, generated_at=datetime.now().astimezone(),
                      totals=totals, periods=[periods[k] for k in sorted(periods)],
                      card_kinds=[kinds[k] for k in sorted(kinds)],
                      catalogue_versions=_versions(log, q), reason_labels=labels)


__all__ = ["CardMeasures", "brute_force"]
