"""The governance dashboard as a page (HTML with inline SVG charts), and as CSV.

One self-contained document: no script, no stylesheet or font from elsewhere, so it renders
the same served at /admin/governance, written by ``itb-cds audit report --html`` and printed
for the committee's minutes. The JSON is ``Governance`` itself.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from cds_service.audit.charts import charts, markers
from cds_service.audit.export import spreadsheet_text
from cds_service.audit.measures import Governance, OutcomeMeasures

_TEMPLATES = Environment(
    loader=PackageLoader("cds_service.audit", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

OUTCOME_NOTES = OutcomeMeasures.__doc__ or ""


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "\u2013"  # an en dash: nothing to show
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _pct(value: float | None) -> str:
    return "\u2013" if value is None else f"{100 * value:.1f} %"


def render_page(gov: Governance, *, top_rules: int, links: bool = True) -> str:
    """The page; ``links`` adds the JSON/CSV links and the filter form (not in a file)."""
    template = _TEMPLATES.get_template("governance.html")
    return template.render(
        gov=gov, charts=charts(gov, top_rules=top_rules) if gov.periods else [],
        markers={m.version: m for m in markers(gov)}, links=links, fmt=_fmt, pct=_pct,
        outcome_notes=" ".join(OUTCOME_NOTES.split()),
        query={k: v for k, v in gov.query.model_dump(mode="json").items() if v is not None},
    )


# -- CSV: one measure a row (long format), so a spreadsheet can pivot any way ------------

CSV_FIELDS = ("section", "period", "service", "rule", "outcome", "tier", "rule_version",
              "catalogue_version", "measure", "value")


def _flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flat(f"{prefix}.{key}" if prefix else str(key), inner)
    else:
        yield prefix, value


def _rows(gov: Governance) -> Iterator[dict[str, str]]:
    blank = dict.fromkeys(CSV_FIELDS[2:8], "")
    for section, period in [("period", p) for p in gov.periods] + [("total", gov.totals)]:
        data = period.model_dump(mode="json", exclude={"period"})
        for measure, value in _flat("", data):
            yield {"section": section, "period": period.period, **blank, "measure": measure,
                   "value": "" if value is None else str(value)}
    for kind in gov.card_kinds:
        keys = {"service": kind.service, "rule": kind.rule, "outcome": kind.outcome,
                "tier": kind.tier, "rule_version": kind.rule_version, "catalogue_version": ""}
        for measure, value in _flat("", kind.measures.model_dump(mode="json")):
            yield {"section": "card_kind", "period": "all", **keys, "measure": measure,
                   "value": "" if value is None else str(value)}
    for cv in gov.catalogue_versions:
        for measure, value in (("first_seen", cv.first_seen), ("calls", cv.calls)):
            yield {"section": "catalogue_version", "period": cv.first_period,
                   **{**blank, "catalogue_version": cv.version}, "measure": measure,
                   "value": str(value)}


def render_csv(gov: Governance) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in _rows(gov):
        # Measures are numbers (a negative one is not a formula); every name is guarded.
        writer.writerow({k: v if k == "value" and _is_number(v) else spreadsheet_text(v)
                         for k, v in row.items()})
    return buffer.getvalue()


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
