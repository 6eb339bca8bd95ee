"""How card text reads: numbers as computed, whole days in words, chart text kept from becoming
markdown, tables that render."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from cds_service.rules.finding import Finding, Number

_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z")
_NUMBER_DASH = re.compile(r"(?<=\d)([-\u2013])(?=\d)")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NBSP = "\u00a0"
_TABLE_ROW = re.compile(r"^\s*\|")
# A space between a number and its unit: "80 mg/day", "24-72 h" (en dash), "in 5 days".
_NUMBER_UNIT = re.compile(
    r"(?<=\d) (?=(?:mcg/mL|mcg/day|mg/day|mg/mL|mL/day|mcg|mg|mL|h|hours?|min|days?|years?|%)"
    r"(?![\w/]))")


@dataclass(frozen=True, slots=True)
class NumberView:
    value: object
    unit: str | None
    source: str | None
    cite: str = ""  # the source in the card's words ("recorded 2026-03-13", "drug label")

    def __str__(self) -> str:
        if self.unit == "d" and isinstance(self.value, int | float) and not isinstance(
                self.value, bool):
            return days_in_words(self.value)
        if isinstance(self.value, str) and (_INSTANT.fullmatch(self.value)
                                            or _DATE.fullmatch(self.value)):
            return moment_text(self.value)
        if isinstance(self.value, float):
            # As computed (a mean drop of 1.25 is not 1.2), to three decimals at most.
            text = f"{self.value:.3f}".rstrip("0").rstrip(".")
        else:
            text = str(self.value)
        return f"{text} {self.unit}" if self.unit and self.unit not in ("a",) else (
            f"{text} years" if self.unit == "a" else text)


def moment_text(value: str) -> str:
    """A date as clinicians write it, unambiguous in any locale and never broken across
    lines: "16 Jun 2026" (no-break spaces; an ISO date breaks at its hyphens in a narrow
    panel); an instant with its time of day: "16 Jun 2026 14:00 UTC". Anything else as is."""
    found = _DATE.match(value)
    if found is None or not (_INSTANT.fullmatch(value) or _DATE.fullmatch(value)):
        return value
    year, month, day = found.groups()
    text = _NBSP.join((str(int(day)), _MONTHS[int(month) - 1], year))
    if _INSTANT.fullmatch(value):
        text += f" {value[11:16]}{_NBSP}UTC"
    return text


def days_in_words(days: float) -> str:
    """Whole days until a due date, in words: "today", "in 1 day", "in 152 days", and once
    it has passed "5 days overdue" (a clinician reads "5 days ago" as a past event, not as a
    task left undone)."""
    whole = int(days)
    if whole == 0:
        return "today"
    unit = "day" if abs(whole) == 1 else "days"
    return f"in {whole} {unit}" if whole > 0 else f"{-whole} {unit} overdue"


def sourced(number: object) -> str:
    """A number with where it came from: "20 mL (recorded 2026-03-13)"; the source is left
    out when it only repeats the value (a date cited by the same date)."""
    text = str(number)
    cite = number.cite if isinstance(number, NumberView) else ""
    return f"{text} ({cite})" if cite and text not in cite else text


def count_of(number: object, noun: str) -> str:
    """ "1 agent", "2 agents": a count with its noun."""
    value = number.value if isinstance(number, NumberView) else number
    plural = noun if value == 1 else f"{noun}s"
    return f"{number} {plural}"


def keep_units(text: str) -> str:
    """A number and its unit joined by a no-break space, and a range or model number
    ("30-60 min", "8637-20") held together by word joiners around its dash: a narrow panel
    must not show "80" at the end of one line and "mg/day" at the start of the next, nor
    "8637-" and "20" (Chromium breaks after a hyphen between digits)."""
    return _NUMBER_DASH.sub("\u2060\\1\u2060", _NUMBER_UNIT.sub("\u00a0", text))


def blank_line_before_tables(text: str) -> str:
    """Markdown needs a blank line before a table, whatever a template's whitespace did."""
    lines = text.split("\n")
    out: list[str] = []
    for line in lines:
        if _TABLE_ROW.match(line) and out and out[-1].strip() and not _TABLE_ROW.match(out[-1]):
            out.append("")
        out.append(line)
    return "\n".join(out)


def md(text: object) -> str:
    """Chart text inside markdown: keep it from becoming markup."""
    return str(text).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_").replace(
        "\n", " ")


class WorstCaseNumbers(Mapping[str, NumberView]):
    """Every key present, with the longest plausible value: summaries are checked against it."""

    def __getitem__(self, key: str) -> NumberView:
        if key.endswith("Date"):
            return NumberView("2099-12-31", None, "x" * 40, "x" * 40)
        return NumberView(99999.9, "mcg/day", "x" * 40, "x" * 40)

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(("dueDate", "volumeMl"))

    def __len__(self) -> int:
        return 2


def numbers_of(finding: Finding, cite: Callable[[str | None], str]) -> dict[str, NumberView]:
    return {n.key: NumberView(n.value, n.unit, n.source, cite(n.source))
            for n in finding.numbers}


def number_json(n: Number) -> object:
    return {"value": n.value, "unit": n.unit} if n.unit else n.value
