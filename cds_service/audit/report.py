"""The governance report: per rule and outcome, what was shown and what clinicians did."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cds_service.audit.facts import NO_REASON, NO_RULE
from cds_service.audit.models import CallRecord, Report, ReportRow, StoredFeedback, utc_now


def _reason(fb: StoredFeedback) -> str:
    r = fb.record
    if r.override_reason_code:
        return r.override_reason_code + (f" ({r.override_reason_display})"
                                         if r.override_reason_display else "")
    return r.override_reason_display or NO_REASON


def build_report(calls: Iterable[CallRecord], feedback: Iterable[StoredFeedback], *,
                 since: datetime | None) -> Report:
    # A card's response is its latest feedback: a clinician may override, then accept.
    latest: dict[str, StoredFeedback] = {}
    unknown = 0
    flagged: dict[str, int] = {}
    for fb in feedback:
        if fb.unknown_card:
            unknown += 1
        if fb.flags or fb.unknown_card:
            # Set apart: a response that does not fit its card is not a response to it.
            for flag in fb.flags or ["unknown-card"]:
                flagged[flag] = flagged.get(flag, 0) + 1
            continue
        seen = latest.get(fb.record.card_uuid)
        if seen is None or fb.record.outcome_timestamp >= seen.record.outcome_timestamp:
            latest[fb.record.card_uuid] = fb

    rows: dict[tuple[str, str], ReportRow] = {}
    n_calls = 0
    for call in calls:
        n_calls += 1
        for card in call.cards:
            key = (card.rule or NO_RULE, card.outcome or NO_RULE)
            row = rows.setdefault(key, ReportRow(rule=key[0], outcome=key[1]))
            row.shown += 1
            response = latest.get(card.uuid)
            if response is None:
                row.no_response += 1
            elif response.record.outcome == "accepted":
                row.accepted += 1
            else:
                row.overridden += 1
                reason = _reason(response)
                row.override_reasons[reason] = row.override_reasons.get(reason, 0) + 1
    return Report(
        since=since,
        generated_at=utc_now(),
        calls=n_calls,
        rows=[rows[k] for k in sorted(rows)],
        unknown_card_feedback=unknown,
        flagged_feedback=dict(sorted(flagged.items())),
    )


def format_report(report: Report) -> str:
    """Plain-text table for the terminal."""
    header = ("rule", "outcome", "shown", "accepted", "overridden", "no response")
    lines = [
        f"ITB CDS governance report — {report.calls} calls"
        + (f" since {report.since.isoformat()}" if report.since else ""),
        "",
        f"{header[0]:<24} {header[1]:<28} {header[2]:>6} {header[3]:>9} {header[4]:>11}"
        f" {header[5]:>12}",
    ]
    for row in report.rows:
        lines.append(
            f"{row.rule:<24} {row.outcome:<28} {row.shown:>6} {row.accepted:>9}"
            f" {row.overridden:>11} {row.no_response:>12}"
        )
        for reason, count in sorted(row.override_reasons.items()):
            lines.append(f"{'':<24}   override: {reason}: {count}")
    if report.flagged_feedback:
        lines.append("")
        lines.append("feedback set apart (flagged, not counted above):")
        for flag, count in report.flagged_feedback.items():
            lines.append(f"  {flag}: {count}")
    return "\n".join(lines) + "\n"
