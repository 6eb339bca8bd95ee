"""The worklist as files: JSON (the rows), CSV (the same, flat), iCalendar (one event per due
refill and replacement, the alarm dates as alarms) and HTML (``page.py``)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

import orjson
from icalendar import Alarm, Calendar, Event

from cds_service.audit.export import spreadsheet_text
from cds_service.catalogue import Catalogue
from cds_service.catalogue.text import moment_text
from cds_service.config import Settings
from cds_service.worklist.page import html_page
from cds_service.worklist.rows import WorklistRow
from cds_service.worklist.run import Panel


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"
    ICS = "ics"
    HTML = "html"


MEDIA_TYPES = {
    Format.JSON: "application/json",
    Format.CSV: "text/csv; charset=utf-8",
    Format.ICS: "text/calendar; charset=utf-8",
    Format.HTML: "text/html; charset=utf-8",
}
CSV_COLUMNS = ("patient", "device", "model", "refill.outcome", "refill.tier",
               "refill.lastRefillDate", "refill.alarmDate", "refill.emptyDate",
               "refill.dueDate", "refill.booked", "battery.outcome", "battery.tier",
               "battery.eosDate", "gaps")


def render(panel: Panel, fmt: Format, catalogue: Catalogue, settings: Settings) -> bytes:
    if fmt is Format.JSON:
        return orjson.dumps([r.model_dump(mode="json") for r in panel.rows],
                            option=orjson.OPT_INDENT_2)
    if fmt is Format.CSV:
        return to_csv(panel.rows).encode("utf-8")
    if fmt is Format.ICS:
        return to_ics(panel, catalogue, settings)
    return html_page(panel, catalogue, settings).encode("utf-8")


def to_csv(rows: list[WorklistRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        flat = row.model_dump(mode="json")
        flat["gaps"] = "; ".join(g.flat() for g in row.gaps)
        cells = []
        for column in CSV_COLUMNS:
            group, _, field = column.partition(".")
            value = (flat.get(group) or {}).get(field) if field else flat.get(group)
            cells.append(spreadsheet_text(str(value)) if value else "")
        writer.writerow(cells)
    return out.getvalue()


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _alarm(day: date, description: str) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", description)
    # An absolute trigger at the start of the day (RFC 5545: VALUE=DATE-TIME).
    alarm.add("trigger", datetime.combine(day, time(0, 0), UTC),
              parameters={"VALUE": "DATE-TIME"})
    return alarm


def _event(uid: str, day: date, summary: str, lines: list[str], stamp: datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("summary", summary)
    event.add("description", "\n".join(lines))
    return event


def to_ics(panel: Panel, catalogue: Catalogue, settings: Settings) -> bytes:
    """One all-day event per pump's refill due date (an alarm on the low-reservoir alarm
    date) and per battery's end of service (an alarm on the latest safe replacement day).
    UIDs name the pump, not the date, so a calendar that re-reads the feed moves the event."""
    words = catalogue.common.worklist_words
    calendar = Calendar()
    calendar.add("prodid", "-//ITB CDS//clinic worklist//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{catalogue.topic('itb-refill')}; "
                                 f"{catalogue.topic('itb-battery')}")
    margin = timedelta(days=settings.booking.replacement_margin_days)
    for row in panel.rows:
        who = f"{row.patient} ({row.model})" if row.model else row.patient
        pump = (row.device or "").replace("/", "-")
        r, b = row.refill, row.battery
        if r is not None and r.dueDate:
            lines = [f"{words.get(k, k)}: {moment_text(v)}" for k, v in (
                ("dueDate", r.dueDate), ("alarmDate", r.alarmDate),
                ("emptyDate", r.emptyDate), ("bookedDate", r.booked)) if v]
            event = _event(f"refill-{row.patient}-{pump}@itb-cds", _day(r.dueDate),
                           f"{catalogue.topic('itb-refill')}: {who}",
                           [*lines, *(g.said(words) for g in row.gaps)], panel.at)
            if r.alarmDate:
                event.add_component(_alarm(_day(r.alarmDate), f"{words.get('alarmDate')}: {who}"))
            calendar.add_component(event)
        if b is not None and b.eosDate:
            safe = _day(b.eosDate) - margin
            event = _event(f"replacement-{row.patient}-{pump}@itb-cds", _day(b.eosDate),
                           f"{catalogue.topic('itb-battery')}: {who}",
                           [f"{words.get('endOfServiceDate')}: {moment_text(b.eosDate)}",
                            f"{words.get('latestSafeDate')}: {moment_text(safe.isoformat())}"],
                           panel.at)
            event.add_component(_alarm(safe, f"{words.get('latestSafeDate')}: {who}"))
            calendar.add_component(event)
    return bytes(calendar.to_ical())
