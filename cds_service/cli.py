"""itb-cds: run the service, run a fixture without a server, write the wire schema, and the
governance commands under "itb-cds audit".

Every mistake a user can make (a missing file, a bad date, a setting the service cannot start
with) is answered with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from cds_service.config import Settings
from cds_service.logs import LogFormat, LogLevel, describe

PROG = "itb-cds"
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0]
                  if __doc__ else None)


class UserError(Exception):
    """A mistake in what the user asked for; the message is the whole answer."""


def _prepare_data_dir() -> None:
    # The audit commands open the default database; its folder must exist first (serve
    # creates it in create_app). A settings mistake is reported by the command itself.
    try:
        Settings().ensure_data_dir()
    except ValueError:
        pass


def _mount_audit() -> None:
    from cds_service.audit.cli import audit_app

    app.add_typer(audit_app, name="audit", help="Audit log: migrate, verify, export, report.",
                  callback=_prepare_data_dir)


_mount_audit()


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise UserError(f"settings: {describe(exc)}") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (ITB_CDS_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ITB_CDS_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (one per core).")] = 1,
    access_log: Annotated[bool, typer.Option(
        help="Log every request line (each CDS call is logged anyway).")] = True,
    log_level: Annotated[LogLevel | None, typer.Option(
        case_sensitive=False, help="ITB_CDS_LOG_LEVEL, default info.")] = None,
) -> None:
    """Start the service (settings from ITB_CDS_* variables; see the README).

    With several workers each has its own SO_REUSEPORT socket, so the persistent connections
    of an EHR spread evenly over them.
    """
    from cds_service.auth.trust import load_trust
    from cds_service.profile import refuse_or_exit
    from cds_service.serve import GaveUp, ServeOptions, StartupFailed
    from cds_service.serve import serve as run_workers

    settings = _settings()
    if host is not None or port is not None:  # the audience follows the address actually bound
        overrides: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port))
                                     if v is not None}
        try:
            settings = Settings(**overrides)
        except ValueError as exc:
            raise UserError(f"settings: {describe(exc)}") from None
    refuse_or_exit(f"{PROG} serve", settings, settings.host)  # one line per refusal, exit 2
    load_trust(settings)  # TrustConfigError: JWT mode with nobody trusted, a bad trust file
    try:
        run_workers(ServeOptions(host=settings.host, port=settings.port, workers=workers,
                                 log_level=str(log_level or settings.log_level).lower(),
                                 access_log=access_log, log_format=LogFormat(settings.log_format)))
    except (GaveUp, StartupFailed) as exc:
        raise UserError(str(exc)) from None


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
def rulebook(
    out: Annotated[Path, typer.Option(
        help="Folder for rulebook.md, rulebook.html and the card-gallery.html they link.")
    ] = Path("docs"),
) -> None:
    """Write the rule book, generated from the cards, settings, value sets and registries."""
    from cds_service.rulebook import RuleBookError, write

    try:
        written = write(_settings(), out)
    except RuleBookError as exc:
        raise UserError(str(exc)) from None
    for path in written:
        typer.echo(f"wrote {path}")


terminology_app = typer.Typer(no_args_is_help=True, help="Value sets and tables.")
app.add_typer(terminology_app, name="terminology")


@terminology_app.command("report")
def terminology_report() -> None:
    """Per value set: codes per system, unverified codes, keywords that are the only path to
    their concept."""
    from cds_service.terminology import Terminology
    from cds_service.terminology.coverage import coverage, render

    typer.echo(render(coverage(Terminology.load(_settings()))), nl=False)


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--at {text!r} is not an ISO 8601 date or date-time "
                        "(e.g. 2026-06-15 or 2026-06-15T09:00:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@app.command()
def run(
    file: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, readable=True,
        help="A scenario fixture, a bare CDS Hooks request, or a FHIR Bundle (with --service).")],
    service: Annotated[str | None, typer.Option(
        help="Service id: needed for a Bundle; for a request, instead of its hook's service.")
    ] = None,
    raw_json: Annotated[bool, typer.Option("--json", help="Print the raw CDS response.")] = False,
    at: Annotated[str | None, typer.Option(
        help="Evaluate as of this ISO date-time (a fixture's dates move with it; default: "
             "a fixture's anchor, otherwise now).")] = None,
) -> None:
    """Print the cards a file produces, without starting a server (nothing is audited)."""
    from cds_service.sandbox.demo import request_of, run_request

    settings = _settings()
    spec, request, now = request_of(file, _instant(at) if at else None, service, settings)
    status, body = asyncio.run(run_request(spec, request, now, settings))
    typer.echo(json.dumps(body, indent=2) if raw_json else _human(status, body))
    raise typer.Exit(0 if status == 200 else 1)


@app.command()
def worklist(
    fhir_server: Annotated[str, typer.Option(help="The FHIR server to read the panel from.")],
    bearer_token: Annotated[str | None, typer.Option(
        help="Bearer token for the FHIR server (visible to other users: prefer --token-file).")
    ] = None,
    token_file: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, readable=True, help="A file holding the bearer token.")
    ] = None,
    group: Annotated[str | None, typer.Option(
        help="A FHIR Group id (a clinic's panel); default: every patient with a pump device.")
    ] = None,
    at: Annotated[str | None, typer.Option(help="As of this ISO date-time (default: now).")
                  ] = None,
    fmt: Annotated[str, typer.Option("--format", help="json, csv, ics or html.")] = "json",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Every active ITB pump of a clinic's panel, most urgent first, with the refill and
    battery findings its cards would carry (a progress bar on a terminal)."""
    from cds_service.worklist.command import read_token, run_worklist
    from cds_service.worklist.formats import Format
    from cds_service.worklist.run import WorklistError

    if fmt not in set(Format):
        raise UserError(f"--format {fmt!r}: choose json, csv, ics or html")
    try:
        line = run_worklist(_settings(), fhir_server, read_token(bearer_token, token_file),
                            group, _instant(at) if at else None, Format(fmt), output)
    except WorklistError as exc:
        raise UserError(str(exc)) from None
    typer.echo(line, err=True)


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


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"{PROG}: {message}", err=True)
    raise SystemExit(code)


def _is_user_error(exc: Exception) -> bool:
    # Files and values the user named, and a database URL that leads nowhere; anything else
    # is a bug of ours and keeps its traceback.
    return isinstance(exc, OSError | ValueError | UserError) or (
        type(exc).__module__.startswith("sqlalchemy") and "OperationalError" in type(exc).__name__
    )


def main(argv: list[str] | None = None) -> None:
    try:
        code = app(args=argv, prog_name=PROG, standalone_mode=False)
    except typer.TyperException as exc:  # usage: unknown option, missing file, bad choice
        if type(exc).__name__ == "NoArgsIsHelpError":  # its message is the help text
            typer.echo(exc.format_message(), err=True)
            raise SystemExit(2) from None
        _fail(exc.format_message(), getattr(exc, "exit_code", 2))
    except typer.Abort:
        _fail("aborted", 130)
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        _fail(describe(exc), 1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
