"""``itb-cds audit migrate | verify | export | report``: settings from the environment."""

# No ``from __future__ import annotations`` here: typer reads the annotations at runtime.

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer

from cds_service.audit.keyring import AuditKeyError
from cds_service.audit.report import format_report
from cds_service.audit.store import AuditStore
from cds_service.config import Settings

audit_app = typer.Typer(help="The audit log: migrate, verify, export, report.",
                        no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides ITB_CDS_DATABASE_URL."),
]
Since = Annotated[
    str | None, typer.Option("--since", help="ISO date or date-time (UTC if no offset).")
]
Until = Annotated[
    str | None, typer.Option("--until", help="ISO date or date-time, exclusive.")
]


class ExportFormat(StrEnum):
    FHIR = "fhir"
    CSV = "csv"


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO date or date-time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _store(database_url: str | None) -> AuditStore:
    try:
        return AuditStore(Settings(), database_url=database_url)
    except AuditKeyError as exc:
        typer.echo(f"{exc.setting}: {exc}", err=True)
        raise typer.Exit(code=2) from None


@audit_app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the audit schema, then replay the spool."""
    store = _store(database_url)
    try:
        store.migrate()
    finally:
        store.close()
    typer.echo("audit schema is up to date")


@audit_app.command()
def verify(database_url: DatabaseUrl = None) -> None:
    """Check the hash chain; exit 1 and name the first broken link if it is broken."""
    store = _store(database_url)
    try:
        result = store.verify()
    finally:
        store.close()
    keys = (f", {result.keyed} under audit key(s) {', '.join(result.key_ids)}" if result.keyed
            else ", none under an audit key")
    if result.ok:
        typer.echo(f"chain intact: {result.checked} entries{keys}, head {result.head_hash}")
    else:
        typer.echo(
            f"chain BROKEN at seq {result.first_broken_seq}: {result.reason}"
            f" ({result.checked} entries verified before it)",
            err=True,
        )
    # Not in the chain yet, so not covered by this check: say so rather than stay silent.
    refused = f", {result.rejected} refused (see the .rejected file)" if result.rejected else ""
    typer.echo(f"spool: {result.spooled} record(s) waiting for the database{refused}",
               err=not result.ok)
    if not result.ok:
        raise typer.Exit(code=1)


@audit_app.command()
def export(
    since: Since = None,
    until: Until = None,
    format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.FHIR,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """NDJSON of FHIR R4 AuditEvent + GuidanceResponse, or CSV."""
    store = _store(database_url)
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if format is ExportFormat.FHIR:
            for resource in store.export_fhir(parse_time(since), parse_time(until)):
                out.write(orjson.dumps(resource).decode("utf-8") + "\n")
        else:
            for line in store.export_csv(parse_time(since), parse_time(until)):
                out.write(line)
    finally:
        if output:
            out.close()
        store.close()


Html = Annotated[Path | None, typer.Option(
    "--html", help="Write the governance dashboard (the /admin/governance page) to this file.")]
Period = Annotated[str | None, typer.Option(
    "--period", help="With --html: day, week or month (default: the setting).")]


def _write_html(store: AuditStore, path: Path, since: str | None, period: str | None) -> None:
    # Imported here: the page pulls in matplotlib, which the other commands never need.
    from cds_service.audit.dashboard import render_page
    from cds_service.audit.measures import GovernanceQuery

    start = parse_time(since)
    try:
        query = GovernanceQuery(period=period or store.settings.governance.default_period,
                                since=start.date() if start else None)
    except ValueError as exc:
        raise typer.BadParameter(f"--period must be day, week or month: {period!r}") from exc
    page = render_page(store.governance(query),
                       top_rules=store.settings.governance.chart_rules, links=False)
    path.write_text(page, encoding="utf-8")
    typer.echo(f"governance dashboard written to {path}")


@audit_app.command()
def report(
    since: Since = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    html: Html = None,
    period: Period = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Per rule and outcome: cards shown, accepted, overridden (reasons), no response."""
    store = _store(database_url)
    try:
        if html is not None:
            _write_html(store, html, since, period)
            return
        result = store.report(parse_time(since))
    finally:
        store.close()
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        typer.echo(format_report(result), nl=False)
