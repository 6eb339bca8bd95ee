"""The worklist as a printable HTML page, with a timeline of the refills and replacements due
per week over the next ``worklist.horizon_days``.

The chart is SVG drawn here, on the server: the page loads nothing from anywhere (a hospital
network reaches no CDN, and a printed worklist must not depend on a script having run). Every
chart word and number goes through the template's autoescaping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from functools import cache
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, select_autoescape

from cds_service.catalogue import Catalogue
from cds_service.catalogue.text import moment_text
from cds_service.config import Settings
from cds_service.worklist.rows import WorklistRow

if TYPE_CHECKING:
    from cds_service.worklist.run import Panel

WIDTH, HEIGHT = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 16, 56


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    label: str  # the week's first day, or "overdue"
    refills: int
    replacements: int
    refill_y: float
    refill_h: float
    replacement_y: float
    replacement_h: float
    overdue: bool = False


@dataclass(frozen=True, slots=True)
class Timeline:
    bars: list[Bar]
    ticks: list[tuple[float, int]]  # y position, count
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: float = HEIGHT - BOTTOM

    @property
    def total(self) -> int:
        return sum(b.refills + b.replacements for b in self.bars)


def _counts(rows: list[WorklistRow], today: date, weeks: int
            ) -> tuple[list[int], list[int]]:
    """Per bucket (0: already due, then one per week from today), refills and replacements."""
    refills, replacements = [0] * (weeks + 1), [0] * (weeks + 1)
    for row in rows:
        for day, counts in ((row.refill.dueDate if row.refill else None, refills),
                            (row.battery.eosDate if row.battery else None, replacements)):
            if not day:
                continue
            offset = (date.fromisoformat(day) - today).days
            bucket = 0 if offset < 0 else offset // 7 + 1
            if bucket <= weeks:
                counts[bucket] += 1
    return refills, replacements


def timeline(rows: list[WorklistRow], today: date, horizon_days: int) -> Timeline:
    weeks = math.ceil(horizon_days / 7)
    refills, replacements = _counts(rows, today, weeks)
    top = max(max(a + b for a, b in zip(refills, replacements, strict=True)), 1)
    step = max(1, math.ceil(top / 5))
    top = step * math.ceil(top / step)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / (weeks + 1)
    bars = []
    for i in range(weeks + 1):
        r_h = plot_h * refills[i] / top
        p_h = plot_h * replacements[i] / top
        base = HEIGHT - BOTTOM
        label = "overdue" if i == 0 else (today + timedelta(days=7 * (i - 1))).isoformat()
        bars.append(Bar(x=LEFT + i * slot + slot * 0.15, width=slot * 0.7, label=label,
                        refills=refills[i], replacements=replacements[i],
                        refill_y=base - r_h, refill_h=r_h,
                        replacement_y=base - r_h - p_h, replacement_h=p_h, overdue=i == 0))
    ticks = [(HEIGHT - BOTTOM - plot_h * n / top, n) for n in range(0, top + 1, step)]
    return Timeline(bars, ticks)


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cds_service.worklist", "templates"),
                      autoescape=select_autoescape(default=True), trim_blocks=True,
                      lstrip_blocks=True)
    # The page reads as the cards do: "13 Mar 2026", "due soon".
    env.filters["day"] = lambda value: moment_text(value) if value else ""
    env.filters["words"] = lambda value: str(value or "").replace("-", " ")
    env.filters["short_day"] = lambda value: " ".join(moment_text(value).split("\u00a0")[:2])
    return env


def html_page(panel: Panel, catalogue: Catalogue, settings: Settings) -> str:
    today = panel.at.astimezone(UTC).date()
    horizon = settings.worklist.horizon_days
    tiers = [r.worst() for r in panel.rows]
    return _environment().get_template("worklist.html").render(
        panel=panel,
        rows=panel.rows,
        chart=timeline(panel.rows, today, horizon),
        horizon=horizon,
        today=today.isoformat(),
        refill_topic=catalogue.topic("itb-refill"),
        battery_topic=catalogue.topic("itb-battery"),
        words=catalogue.common.worklist_words,
        counts={t: tiers.count(t) for t in ("critical", "warning", "info")},
        pumps=sum(1 for r in panel.rows if r.device is not None),
    )
