"""Time arithmetic shared by the rules (``now`` is always injected, never read here)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; the day is clamped (31 Jan + 1 month = 28/29 Feb)."""
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_years(moment: datetime, years: float) -> datetime:
    """Whole years as calendar years; a fractional remainder as days of 365.25."""
    whole = int(years)
    moved = add_months(moment, whole * 12)
    return moved + timedelta(days=(years - whole) * 365.25)


def add_days(moment: datetime, days: float) -> datetime:
    return moment + timedelta(days=days)


def age_years(birth: date, on: datetime | date) -> int:
    day = on.date() if isinstance(on, datetime) else on
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


def iso_date(moment: datetime) -> str:
    """The calendar date (UTC) a card shows for a moment."""
    return moment.astimezone(UTC).date().isoformat()


def iso_instant(moment: datetime) -> str:
    """An instant in UTC, ISO 8601 / FHIR dateTime with Z ("2026-06-16T14:00:00Z")."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def calendar_days_until(moment: datetime, now: datetime) -> int:
    """Whole days from today to the moment's day (both UTC), as a card shows the date."""
    return (moment.astimezone(UTC).date() - now.astimezone(UTC).date()).days


def aware(moment: datetime) -> datetime:
    """Defensive: the parser promises aware datetimes; naive ones are read as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
