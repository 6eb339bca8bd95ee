"""The governance measures as SQL aggregates over the facts tables (schema.gov_*).

Every query groups in the database and returns one row per group, never a row per record.
Counts are grouped by day (a few hundred rows) and added up into weeks or months here, since a
day lies in one period; what does not add up (distinct people, percentiles) is asked per period.
The same SQL runs on SQLite and PostgreSQL: periods are precomputed columns, percentiles are
nearest-rank picks (LIMIT 1 OFFSET k-1 along an index on the period and the duration), day
differences are integer ordinals.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, distinct, func, select
from sqlalchemy.engine import Connection

from cds_service.audit.database import AuditDatabase
from cds_service.audit.facts import NO_REASON, period_of_day
from cds_service.audit.measures import (
    CardKind,
    CardMeasures,
    CatalogueVersion,
    Governance,
    GovernanceQuery,
    Latency,
    PeriodMeasures,
)
from cds_service.audit.models import utc_now
from cds_service.audit.outcomes import count_if, in_range, outcome_measures
from cds_service.audit.schema import gov_call, gov_card, gov_feedback

PERCENTILES = (50, 90, 99)
Key = tuple[str, str, str, str, str]  # service, rule, outcome, tier, rule_version


def _card_filters(q: GovernanceQuery) -> list[ColumnElement[bool]]:
    conds = in_range(gov_card, q)
    for column, value in (("rule", q.rule), ("outcome", q.outcome), ("tier", q.tier),
                          ("rule_version", q.rule_version)):
        if value is not None:
            conds.append(gov_card.c[column] == value)
    return conds


class _Reader:
    def __init__(self, conn: Connection, q: GovernanceQuery) -> None:
        self.conn = conn
        self.q = q
        self.periods: dict[str, PeriodMeasures] = {}
        self.totals = PeriodMeasures(period="all")
        self.kinds: dict[Key, CardKind] = {}
        self.service_calls: dict[str, int] = {}
        self.versions: dict[str, tuple[str, int]] = {}  # in the slice: first day, calls

    def at(self, period: str) -> PeriodMeasures:
        found = self.periods.get(period)
        if found is None:
            found = self.periods[period] = PeriodMeasures(period=period)
        return found

    def on(self, day: str) -> PeriodMeasures:
        return self.at(period_of_day(day, self.q.period))

    def rows(self, statement: Any) -> Iterable[Any]:
        return self.conn.execute(statement).all()

    # -- calls ------------------------------------------------------------------------------

    def calls(self) -> None:
        c = gov_call.c
        conds = in_range(gov_call, self.q)
        group = (c.day, c.service_id, c.catalogue_version)
        for row in self.rows(select(
                *group, func.count(), count_if(c.http_status == 412),
                count_if(c.http_status >= 500)).where(*conds).group_by(*group)):
            for m in (self.on(row[0]).calls, self.totals.calls):
                m.calls += row[3]
                m.status_412 += int(row[4])
                m.status_5xx += int(row[5])
            self.service_calls[row[1]] = self.service_calls.get(row[1], 0) + row[3]
            if row[2] is not None:
                first_day, calls = self.versions.get(row[2], (row[0], 0))
                self.versions[row[2]] = (min(first_day, row[0]), calls + row[3])
        # A (user, day) pair lies in one period: user-days add up from each day's users.
        for row in self.rows(select(c.day, func.count(distinct(c.user_key))).where(
                *conds, c.user_key.is_not(None)).group_by(c.day)):
            self.on(row[0]).calls.user_days += row[1]
            self.totals.calls.user_days += row[1]
        p = c[self.q.period]
        # One count per query: each walks its own (period, person) index in order.
        for row in self.rows(select(p, func.count(distinct(c.patient_key)))
                             .where(*conds).group_by(p)):
            self.at(row[0]).calls.patients = row[1]
        for row in self.rows(select(p, func.count(distinct(c.user_key)))
                             .where(*conds).group_by(p)):
            self.at(row[0]).calls.users = row[1]
        self.totals.calls.patients = self.distinct(c.patient_key, conds)
        self.totals.calls.users = self.distinct(c.user_key, conds)

    def distinct(self, column: Any, conds: list[ColumnElement[bool]]) -> int:
        # COUNT over SELECT DISTINCT rather than COUNT(DISTINCT): PostgreSQL sorts for the
        # latter even along an index, and hashes the former (half the time on 200k calls).
        people = select(column).where(*conds, column.is_not(None)).distinct().subquery()
        return int(self.conn.execute(select(func.count()).select_from(people)).scalar_one())

    def _percentiles(self, count: int, conds: list[ColumnElement[bool]]) -> Latency:
        if count == 0:
            return Latency()
        picks = [select(gov_call.c.duration_ms).where(*conds).order_by(gov_call.c.duration_ms)
                 .limit(1).offset((pct * count + 99) // 100 - 1).scalar_subquery()
                 for pct in PERCENTILES]
        [values] = self.rows(select(*picks))
        return Latency(**{f"p{pct}": v for pct, v in zip(PERCENTILES, values, strict=True)})

    def latency(self) -> None:
        conds = in_range(gov_call, self.q)
        p = gov_call.c[self.q.period]
        for period, m in self.periods.items():
            m.calls.latency_ms = self._percentiles(m.calls.calls, [p == period, *conds])
        self.totals.calls.latency_ms = self._percentiles(self.totals.calls.calls, conds)

    # -- cards and their feedback ---------------------------------------------------------

    def kind(self, key: Key) -> CardMeasures:
        found = self.kinds.get(key)
        if found is None:
            found = self.kinds[key] = CardKind(service=key[0], rule=key[1], outcome=key[2],
                                               tier=key[3], rule_version=key[4])
        return found.measures

    def measures(self, row: Any) -> tuple[CardMeasures, ...]:
        """The card measures a day-and-kind row adds to: its period's, the totals', its kind's."""
        return self.on(row[0]).cards, self.totals.cards, self.kind(tuple(row[1:6]))

    def cards(self) -> None:
        c = gov_card.c
        group = (c.day, c.service_id, c.rule, c.outcome, c.tier, c.rule_version)
        accepted = c.response_outcome == "accepted"
        for row in self.rows(select(
                *group, func.count(), count_if(c.n_suggestions > 0), count_if(accepted),
                count_if(c.response_outcome == "overridden"),
                count_if(and_(accepted, c.response_accepted > 0, c.n_suggestions > 0)),
        ).where(*_card_filters(self.q)).group_by(*group)):
            counts = [int(v) for v in row[6:]]
            for by_rule in (self.on(row[0]).cards_by_rule, self.totals.cards_by_rule):
                by_rule[row[2]] = by_rule.get(row[2], 0) + counts[0]
            for m in self.measures(row):
                m.cards += counts[0]
                m.with_suggestions += counts[1]
                m.accepted += counts[2]
                m.overridden += counts[3]
                m.suggestion_taken += counts[4]
        reason = c.response_reason
        for row in self.rows(select(*group, reason, func.count()).where(
                *_card_filters(self.q), c.response_outcome == "overridden"
        ).group_by(*group, reason)):
            for m in self.measures(row):
                key = row[6] or NO_REASON
                m.override_reasons[key] = m.override_reasons.get(key, 0) + row[7]

    def reason_labels(self) -> dict[str, str]:
        f = gov_feedback.c
        return {str(r[0]): str(r[1]) for r in self.rows(
            select(f.reason_code, func.min(f.reason_display)).where(
                f.flags == "", f.reason_code.is_not(None), f.reason_display.is_not(None)
            ).group_by(f.reason_code))}

    def flagged(self) -> None:
        f = gov_feedback.c
        for row in self.rows(select(f.day, f.flags, func.count()).where(
                *in_range(gov_feedback, self.q), f.flags != "").group_by(f.day, f.flags)):
            for m in (self.on(row[0]).flagged_feedback, self.totals.flagged_feedback):
                m.total += row[2]
                for flag in str(row[1]).split(","):
                    m.by_flag[flag] = m.by_flag.get(flag, 0) + row[2]

    def catalogue_versions(self) -> list[CatalogueVersion]:
        v = gov_call.c.catalogue_version
        first = {r[0]: str(r[1]) for r in self.rows(
            select(v, func.min(gov_call.c.received_at)).where(v.is_not(None)).group_by(v))}
        return sorted((CatalogueVersion(version=version, first_seen=first[version],
                                        first_period=period_of_day(day, self.q.period),
                                        calls=calls)
                       for version, (day, calls) in self.versions.items()),
                      key=lambda cv: (cv.first_seen, cv.version))

    def finish(self) -> Governance:
        for m in [*self.periods.values(), self.totals]:
            m.cards.finish(m.calls.calls, m.calls.user_days)
            m.outcomes.finish()
            m.cards_by_rule = dict(sorted(m.cards_by_rule.items()))
            m.flagged_feedback.by_flag = dict(sorted(m.flagged_feedback.by_flag.items()))
        for key, kind in self.kinds.items():
            kind.measures.finish(self.service_calls.get(key[0], 0), self.totals.calls.user_days)
        return Governance(
            query=self.q, generated_at=utc_now(), totals=self.totals,
            periods=[self.periods[k] for k in sorted(self.periods)],
            card_kinds=[self.kinds[k] for k in sorted(self.kinds)],
            catalogue_versions=self.catalogue_versions(), reason_labels=self.reason_labels())


def governance(database: AuditDatabase, q: GovernanceQuery) -> Governance:
    """Every measure of the slice ``q``, in one read-only transaction (one snapshot)."""
    database.ensure_schema()
    with database.reading() as conn:
        reader = _Reader(conn, q)
        reader.calls()
        reader.latency()
        reader.cards()
        reader.flagged()
        outcome_measures(conn, q, reader.at, reader.on, reader.totals)
        return reader.finish()


def recorded_days(database: AuditDatabase) -> tuple[date, date] | None:
    database.ensure_schema()
    with database.reading() as conn:
        first, last = conn.execute(select(func.min(gov_call.c.day),
                                          func.max(gov_call.c.day))).one()
    if first is None or last is None:
        return None
    return date.fromisoformat(first), date.fromisoformat(last)
