"""Outcome measures from the audit trail: empty and overdue pumps, refills, replacements.

Definitions are in measures.OutcomeMeasures. An episode or a pump needs its whole history to
be judged (the refill that closed an episode may come after the range), so the history is read
unfiltered by time and the range picks episodes and pumps by the day of their first card.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy.engine import Connection

from cds_service.audit.facts import BATTERY_RULE, REFILL_RULE
from cds_service.audit.measures import GovernanceQuery, PeriodMeasures
from cds_service.audit.schema import gov_card

At = Callable[[str], PeriodMeasures]  # a period, or a day, to the measures it adds to


def count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _days(column: Any, q: GovernanceQuery) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if q.since is not None:
        conds.append(column >= q.since.isoformat())
    if q.until is not None:
        conds.append(column < q.until.isoformat())
    return conds


def in_range(table: Any, q: GovernanceQuery) -> list[ColumnElement[bool]]:
    """The days and the service of the slice, on a facts table."""
    conds = _days(table.c.day, q)
    if q.service is not None:
        conds.append(table.c.service_id == q.service)
    return conds


def _pump_cards(conn: Connection, q: GovernanceQuery, at: At, on: At,
                totals: PeriodMeasures) -> None:
    c = gov_card.c
    conds = [*in_range(gov_card, q), c.device_ref.is_not(None), c.patient_key.is_not(None)]
    refill = c.rule == REFILL_RULE
    for row in conn.execute(select(
            c.day, count_if(and_(refill, c.outcome == "overdue")),
            count_if(and_(refill, c.outcome == "empty"))).where(*conds).group_by(c.day)):
        for o in (on(row[0]).outcomes, totals.outcomes):
            o.overdue_cards += int(row[1])
            o.empty_cards += int(row[2])
    p = c[q.period]
    for row in conn.execute(select(p, func.count(distinct(c.patient_key)))
                            .where(*conds).group_by(p)):
        at(row[0]).outcomes.pump_patients = row[1]
    # COUNT over SELECT DISTINCT: see governance._Reader.distinct.
    people = select(c.patient_key).where(*conds).distinct().subquery()
    totals.outcomes.pump_patients = conn.execute(
        select(func.count()).select_from(people)).scalar_one()


def _refills(conn: Connection, q: GovernanceQuery, on: At, totals: PeriodMeasures) -> None:
    c = gov_card.c
    service = [c.service_id == q.service] if q.service is not None else []
    episodes = select(
        c.patient_key, c.device_ref, c.last_refill_day,
        func.min(c.day_no).label("start_day"), func.min(c.alarm_day).label("alarm_day"),
        func.min(c.day).label("first_day"),
    ).where(c.rule == REFILL_RULE, c.last_refill_day.is_not(None), c.patient_key.is_not(None),
            c.device_ref.is_not(None), *service
            ).group_by(c.patient_key, c.device_ref, c.last_refill_day).subquery()
    e = episodes.c
    following = select(episodes, func.lead(e.last_refill_day).over(
        partition_by=(e.patient_key, e.device_ref), order_by=e.last_refill_day
    ).label("next_refill")).subquery()
    n = following.c
    for row in conn.execute(select(
            n.first_day, func.count(), func.count(n.next_refill),
            func.sum(n.next_refill - n.start_day), count_if(n.next_refill <= n.alarm_day),
    ).where(*_days(n.first_day, q)).group_by(n.first_day)):
        for o in (on(row[0]).outcomes, totals.outcomes):
            o.refill_episodes += row[1]
            o.refills_recorded += row[2]
            o.days_to_refill_total += int(row[3] or 0)
            o.refilled_by_alarm_date += int(row[4])


def _replacements(conn: Connection, q: GovernanceQuery, on: At, totals: PeriodMeasures
                  ) -> None:
    c = gov_card.c
    service = [c.service_id == q.service] if q.service is not None else []
    before_eos = or_(c.outcome == "booked", and_(c.booked_day.is_not(None),
                                                  c.eos_day.is_not(None),
                                                  c.booked_day <= c.eos_day))
    pumps = select(
        func.min(c.day).label("first_day"), func.max(c.booked).label("booked"),
        func.max(case((before_eos, 1), else_=0)).label("before_eos"),
    ).where(c.rule == BATTERY_RULE, c.patient_key.is_not(None), c.device_ref.is_not(None),
            *service).group_by(c.patient_key, c.device_ref).subquery()
    for row in conn.execute(select(
            pumps.c.first_day, func.count(), func.sum(pumps.c.booked),
            func.sum(pumps.c.before_eos)
    ).where(*_days(pumps.c.first_day, q)).group_by(pumps.c.first_day)):
        for o in (on(row[0]).outcomes, totals.outcomes):
            o.pumps_with_battery_card += row[1]
            o.replacements_booked += int(row[2])
            o.booked_before_end_of_service += int(row[3])


def outcome_measures(conn: Connection, q: GovernanceQuery, at: At, on: At,
                     totals: PeriodMeasures) -> None:
    """``at`` maps a period to its measures, ``on`` a day to its period's."""
    _pump_cards(conn, q, at, on, totals)
    _refills(conn, q, on, totals)
    _replacements(conn, q, on, totals)
