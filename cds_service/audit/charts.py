"""The dashboard's charts, drawn on the server as SVG (matplotlib): no script, no CDN, and the
same picture on screen, in print and in the ``--html`` file.

Each chart marks where a catalogue version came into use (a dashed line and a short label,
C1, C2 ..., explained under the charts), so a change of wording or threshold can be seen
against what followed it.
"""

from __future__ import annotations

import io
import itertools
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, cast

from cds_service.audit.measures import Governance, PeriodMeasures

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# matplotlib's rcParams are process-global and read while saving: two requests drawing at
# once must not interleave their settings.
_LOCK = threading.Lock()
# The epoch is fixed so a date's x value is its day count since 1970 (``_x``).
_EPOCH = date(1970, 1, 1)
_RC: dict[str, Any] = {
    "date.epoch": "1970-01-01T00:00:00", "svg.fonttype": "none", "font.size": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    # Bundled with matplotlib; text stays text in the SVG and the browser falls back to its own
    # sans-serif where DejaVu is not installed.
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


@dataclass(frozen=True, slots=True)
class Chart:
    slug: str  # the element id on the page
    title: str
    caption: str
    svg: str


@dataclass(frozen=True, slots=True)
class Marker:
    label: str  # "C1"
    version: str
    day: date


def markers(gov: Governance) -> list[Marker]:
    """The versions first used inside the charted range, on the day they were first used; a
    version already in use before the range is no change seen on the chart."""
    if not gov.periods:
        return []
    start = gov.periods[0].period
    return [Marker(f"C{n}", cv.version, date.fromisoformat(cv.first_seen[:10]))
            for n, cv in enumerate(gov.catalogue_versions, start=1)
            if cv.first_seen[:10] >= start]


def _x(day: date) -> float:
    return float((day - _EPOCH).days)


def _dates(periods: Sequence[PeriodMeasures]) -> list[float]:
    return [_x(date.fromisoformat(p.period)) for p in periods]


def _ys(values: Iterable[float | int | None]) -> list[float]:
    # A period without the measure (nothing to divide) is a gap in the line, not a zero.
    return [math.nan if v is None else float(v) for v in values]


def _draw(slug: str, plot: Callable[[Axes], None], marks: list[Marker], *,
          height: float = 3.0) -> str:
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with _LOCK, rc_context(cast(Any, {**_RC, "svg.hashsalt": slug})):
        # Fixed margins (room for the legend on the right) rather than a layout engine:
        # constrained layout drew each chart twice and took most of the page's time.
        fig = Figure(figsize=(10, height))
        fig.subplots_adjust(left=0.07, right=0.72, bottom=0.2, top=0.92)
        FigureCanvasSVG(fig)
        ax = fig.add_subplot()
        plot(ax)
        ax.xaxis_date()
        for m in marks:
            day = _x(m.day)
            ax.axvline(day, color="#555555", linestyle="--", linewidth=1)
            ax.annotate(m.label, xy=(day, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(2, -10), textcoords="offset points", fontsize=8,
                        color="#333333")
        fig.autofmt_xdate(rotation=30, ha="right")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # Inline in the page: the XML prolog and DOCTYPE belong to a file, not an element.
    return text[text.index("<svg"):]


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def _cards_by_rule(gov: Governance, top: int) -> Callable[[Axes], None]:
    ranked = sorted(gov.totals.cards_by_rule, key=lambda r: -gov.totals.cards_by_rule[r])
    shown, rest = ranked[:top], ranked[top:]

    def plot(ax: Axes) -> None:
        x = _dates(gov.periods)
        for i, rule in enumerate(shown):
            ax.plot(x, _ys(p.cards_by_rule.get(rule, 0) for p in gov.periods), marker=".",
                    color=PALETTE[i % len(PALETTE)], label=rule)
        if rest:
            ax.plot(x, _ys(sum(p.cards_by_rule.get(r, 0) for r in rest) for p in gov.periods),
                    marker=".", color="#999999", label="other rules")
        ax.set_ylabel("cards fired")
        ax.set_ylim(bottom=0)
        _legend(ax)

    return plot


def _overrides(gov: Governance) -> Callable[[Axes], None]:
    reasons = sorted(gov.totals.cards.override_reasons,
                     key=lambda r: -gov.totals.cards.override_reasons[r])

    def plot(ax: Axes) -> None:
        x = _dates(gov.periods)
        width = _bar_width(x)
        bottom = [0.0] * len(x)
        for i, reason in enumerate(reasons):
            counts = _ys(p.cards.override_reasons.get(reason, 0) for p in gov.periods)
            label = gov.reason_labels.get(reason, reason)
            ax.bar(x, counts, width=width, bottom=bottom, color=PALETTE[i % len(PALETTE)],
                   alpha=0.75, label=f"{label}")
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        ax.set_ylabel("cards overridden, by reason")
        rate = ax.twinx()
        rate.plot(x, _ys(_percent(p.cards.override_rate) for p in gov.periods), color="black",
                  marker="o", linewidth=1.5, label="override rate")
        rate.set_ylabel("override rate (%)")
        rate.set_ylim(0, 100)
        rate.grid(False)
        handles, labels = ax.get_legend_handles_labels()
        more = rate.get_legend_handles_labels()
        if handles or more[0]:
            ax.legend(handles + more[0], labels + more[1], loc="upper left",
                      bbox_to_anchor=(1.08, 1.0), fontsize=8, frameon=False)

    return plot


def _latency(gov: Governance) -> Callable[[Axes], None]:
    def plot(ax: Axes) -> None:
        x = _dates(gov.periods)
        for i, name in enumerate(("p50", "p90", "p99")):
            ax.plot(x, _ys(getattr(p.calls.latency_ms, name) for p in gov.periods), marker=".",
                    color=PALETTE[i], label=f"{name} latency")
        ax.set_ylabel("ms")
        ax.set_ylim(bottom=0)
        errors = ax.twinx()
        errors.bar(x, [_rate(p.calls.status_412 + p.calls.status_5xx, p.calls.calls)
                       for p in gov.periods], width=_bar_width(x), color="#d62728", alpha=0.25,
                   label="412 + 5xx (% of calls)")
        errors.set_ylabel("412 + 5xx (%)")
        errors.set_ylim(bottom=0)
        errors.grid(False)
        handles, labels = ax.get_legend_handles_labels()
        more = errors.get_legend_handles_labels()
        ax.legend(handles + more[0], labels + more[1], loc="upper left",
                  bbox_to_anchor=(1.08, 1.0), fontsize=8, frameon=False)

    return plot


def _outcomes(gov: Governance) -> Callable[[Axes], None]:
    def plot(ax: Axes) -> None:
        x = _dates(gov.periods)
        o = [p.outcomes for p in gov.periods]
        ax.plot(x, _ys(v.overdue_per_pump_patient for v in o), marker=".", color=PALETTE[3],
                label="overdue cards / pump patient")
        ax.plot(x, _ys(v.empty_per_pump_patient for v in o), marker=".", color=PALETTE[1],
                label="empty cards / pump patient")
        ax.plot(x, _ys(_share(v.refilled_by_alarm_date, v.refills_recorded) for v in o),
                marker=".", color=PALETTE[2], label="refilled by the alarm date")
        ax.plot(x, _ys(_share(v.booked_before_end_of_service, v.pumps_with_battery_card)
                       for v in o), marker=".", color=PALETTE[0],
                label="replacement booked before EOS")
        ax.set_ylim(bottom=0)
        _legend(ax)

    return plot


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _rate(part: int, whole: int) -> float:
    return 0.0 if whole == 0 else 100.0 * part / whole


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _bar_width(x: list[float]) -> float:
    # x is in days (matplotlib dates): bars fill most of the gap between periods.
    if len(x) < 2:
        return 5.0
    return max(0.6, 0.7 * min(b - a for a, b in itertools.pairwise(x)))


def charts(gov: Governance, *, top_rules: int) -> list[Chart]:
    marks = markers(gov)
    unit = {"day": "day", "week": "week", "month": "month"}[gov.query.period]
    specs: list[tuple[str, str, str, Callable[[Any], None]]] = [
        ("cards-by-rule", f"Cards fired per {unit}, by rule",
         "Every card shown, by the rule that fired it.", _cards_by_rule(gov, top_rules)),
        ("overrides", f"Override rate per {unit}, with its reasons",
         "Bars: cards whose latest fitting response was an override, by reason. Line: "
         "overridden / (accepted + overridden). Flagged feedback is not counted.",
         _overrides(gov)),
        ("latency", f"Latency percentiles and failed calls per {unit}",
         "p50 / p90 / p99 of the recorded call time; bars: 412 and 5xx answers recorded.",
         _latency(gov)),
        ("outcomes", f"Pump outcomes per {unit}",
         "From the trail of refill and battery cards (definitions under the table). The last "
         "two lines are shares (0-1): of recorded refills, of pumps with a battery card.",
         _outcomes(gov)),
    ]
    return [Chart(slug, title, caption, _draw(slug, plot, marks))
            for slug, title, caption, plot in specs]
