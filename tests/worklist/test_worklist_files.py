"""The worklist's files: JSON is the rows, CSV the same flat, and the iCalendar feed parses
with the library that wrote it and round-trips every event (a due refill with its alarm date
as an alarm, an end of service with the latest safe replacement day as an alarm)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import orjson
from icalendar import Calendar

from cds_service.catalogue import Catalogue
from cds_service.config import Settings
from cds_service.worklist import Panel, WorklistRow
from cds_service.worklist.formats import CSV_COLUMNS, Format, render
from cds_service.worklist.page import timeline

SETTINGS = Settings()
CATALOGUE = Catalogue.load(SETTINGS.cards_dir)


def test_json_is_the_list_of_rows(exported: Panel) -> None:
    rows = orjson.loads(render(exported, Format.JSON, CATALOGUE, SETTINGS))
    assert [WorklistRow.model_validate(r) for r in rows] == exported.rows
    assert set(rows[0]) == {"patient", "device", "model", "refill", "battery", "gaps"}
    assert set(rows[0]["refill"]) == {"outcome", "tier", "lastRefillDate", "alarmDate",
                                      "emptyDate", "dueDate", "booked"}


def test_csv_is_the_same_rows_flat(exported: Panel) -> None:
    text = render(exported, Format.CSV, CATALOGUE, SETTINGS).decode("utf-8")
    read = list(csv.DictReader(io.StringIO(text)))
    assert tuple(read[0]) == CSV_COLUMNS
    assert len(read) == len(exported.rows)
    for line, row in zip(read, exported.rows, strict=True):
        assert line["patient"] == row.patient and line["device"] == row.device
        assert line["refill.dueDate"] == ((row.refill.dueDate or "") if row.refill else "")
        assert line["battery.eosDate"] == ((row.battery.eosDate or "") if row.battery else "")
        assert line["gaps"] == "; ".join(g.flat() for g in row.gaps)


def test_the_calendar_round_trips_every_event(exported: Panel) -> None:
    written = render(exported, Format.ICS, CATALOGUE, SETTINGS)
    feed = Calendar.from_ical(written)
    events = {str(e["UID"]): e for e in feed.walk("VEVENT")}
    expected = {}
    rows = {}
    for row in exported.rows:
        pump = (row.device or "").replace("/", "-")
        if row.refill and row.refill.dueDate:
            uid = f"refill-{row.patient}-{pump}@itb-cds"
            expected[uid], rows[uid] = (row.refill.dueDate, row.refill.alarmDate), row
        if row.battery and row.battery.eosDate:
            safe = date.fromisoformat(row.battery.eosDate) - timedelta(
                days=SETTINGS.booking.replacement_margin_days)
            uid = f"replacement-{row.patient}-{pump}@itb-cds"
            expected[uid], rows[uid] = (row.battery.eosDate, safe.isoformat()), row
    assert set(events) == set(expected)
    for uid, (day, alarm_day) in expected.items():
        event = events[uid]
        assert event.decoded("DTSTART") == date.fromisoformat(day)
        assert event.decoded("DTEND") == date.fromisoformat(day) + timedelta(days=1)
        summary, text = str(event["SUMMARY"]), str(event["DESCRIPTION"])
        row = rows[uid]
        assert row.patient in summary and (row.model or "") in summary
        assert "Patient/" not in summary + text and "itb-" not in summary + text
        assert all(line.split(": ", 1)[0] for line in text.splitlines())  # every line named
        [alarm] = event.walk("VALARM")
        assert str(alarm["DESCRIPTION"]).endswith(f": {summary.split(': ', 1)[1]}")
        assert alarm.decoded("TRIGGER") == datetime.fromisoformat(alarm_day).replace(
            tzinfo=UTC)
        assert str(alarm["ACTION"]) == "DISPLAY"
    # Written again from what was read, the feed is the bytes the worklist wrote.
    assert feed.to_ical() == written


def test_the_timeline_counts_refills_and_replacements_per_week(exported: Panel) -> None:
    today = ANCHOR_DAY
    chart = timeline(exported.rows, today, 180)
    assert len(chart.bars) == 1 + 26  # already due, then 26 weeks
    due = [r.refill.dueDate for r in exported.rows if r.refill and r.refill.dueDate]
    eos = [r.battery.eosDate for r in exported.rows if r.battery and r.battery.eosDate]

    def within(days: list[str]) -> int:
        return sum(1 for d in days if (date.fromisoformat(d) - today).days < 26 * 7)

    assert sum(b.refills for b in chart.bars) == within(due)
    assert sum(b.replacements for b in chart.bars) == within(eos)
    assert chart.bars[0].refills == sum(1 for d in due if date.fromisoformat(d) < today)
    assert all(b.refill_h >= 0 and b.replacement_y <= b.refill_y for b in chart.bars)


ANCHOR_DAY = date(2026, 6, 15)


def test_csv_cells_from_the_chart_stay_text_in_a_spreadsheet() -> None:
    from cds_service.worklist.formats import to_csv

    row = WorklistRow(patient="p1", device="Device/d1", model="=HYPERLINK(\"x\")")
    [line] = list(csv.DictReader(io.StringIO(to_csv([row]))))
    assert line["model"] == "'=HYPERLINK(\"x\")"
