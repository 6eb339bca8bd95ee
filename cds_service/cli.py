"""``itb-cds``: serve the service, run a fixture without a server, write the wire schema,
and the governance commands under ``itb-cds audit``."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _mount_audit() -> None:
    from cds_service.audit.cli import audit_app

    app.add_typer(audit_app, name="audit", help="Audit log: migrate, verify, export, report.")


_mount_audit()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (ITB_CDS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ITB_CDS_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (one per core).")] = 1,
    access_log: Annotated[bool, typer.Option(
        help="Log every request line (the audit log records every call anyway).")] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the service on embedded defaults (SQLite audit log, demo fixtures). With several
    workers each has its own SO_REUSEPORT socket, so persistent connections spread evenly."""
    from cds_service.profile import settings_or_exit
    from cds_service.serve import GaveUp, ServeOptions
    from cds_service.serve import serve as run_workers

    settings = settings_or_exit("itb-cds serve", host)  # one line per refusal, exit 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        run_workers(ServeOptions(host=host or settings.host, port=port or settings.port,
                                 workers=workers, log_level=log_level, access_log=access_log))
    except GaveUp as exc:
        typer.echo(f"itb-cds serve: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Where to write the JSON Schema.")] = Path(
        "schema/cds-hooks.schema.json"
    ),
) -> None:
    """Write the JSON Schema of the CDS Hooks wire models."""
    from cds_service.hooks.schema import wire_schema

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(wire_schema(), indent=2, sort_keys=True) + "\n")
    typer.echo(f"wrote {out}")


@app.command()
def run(
    fixture: Annotated[Path, typer.Argument(help="A scenario fixture or a CDS Hooks request.")],
    raw_json: Annotated[bool, typer.Option("--json", help="Print the raw CDS response.")] = False,
    at: Annotated[
        str | None,
        typer.Option(help="Evaluate as of this ISO datetime (default: the fixture's anchor)."),
    ] = None,
) -> None:
    """Print the cards a fixture produces, without starting a server."""
    from cds_service.sandbox.demo import run_fixture

    now = datetime.fromisoformat(at) if at else None
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    status, body = asyncio.run(run_fixture(fixture, now))
    if raw_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        typer.echo(_human(status, body))
    raise typer.Exit(0 if status == 200 else 1)


def _human(status: int, body: dict[str, Any]) -> str:
    if status != 200:
        issues = body.get("issue", [])
        return f"HTTP {status}: " + "; ".join(i.get("diagnostics", i["code"]) for i in issues)
    cards = body.get("cards", [])
    if not cards:
        return "No cards."
    lines = []
    for card in cards:
        finding = card.get("extension", {}).get("itb-cds.finding", {})
        lines.append(
            f"[{card['indicator'].upper()}] {card['summary']}\n"
            f"    rule {finding.get('rule')} · outcome {finding.get('outcome')} · "
            f"source {card['source']['label']}"
        )
        for suggestion in card.get("suggestions", []):
            lines.append(f"    ▸ suggestion: {suggestion['label']}")
    return "\n".join(lines)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
