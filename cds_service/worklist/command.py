"""``itb-cds worklist``: the run, a progress bar on a terminal, the file written.

The bearer token comes from the option or, better (a command line is visible to every user of
the machine), from a file; it is used for the FHIR server's Authorization header only.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.worklist.formats import Format, render
from cds_service.worklist.run import Panel, Worklist, WorklistError


def read_token(bearer_token: str | None, token_file: Path | None) -> str | None:
    if bearer_token is not None and token_file is not None:
        raise WorklistError("give --bearer-token or --token-file, not both")
    if token_file is None:
        return bearer_token or None
    token = token_file.read_text(encoding="utf-8").strip()
    if not token or any(c.isspace() for c in token):
        raise WorklistError(f"{token_file} does not hold one bearer token")
    return token


async def _run(settings: Settings, fhir_server: str, token: str | None, group: str | None,
               at: datetime, progress: Progress | None) -> tuple[Panel, Engine]:
    engine = Engine.build(settings, lambda: at)
    task = progress.add_task("charts", total=None) if progress is not None else None

    def advance(done: int, total: int | None) -> None:
        if progress is not None and task is not None:
            progress.update(task, completed=done, total=total)

    try:
        panel = await Worklist(engine, settings).run(fhir_server, token, group, at, advance)
    finally:
        await engine.aclose()
    return panel, engine


def run_worklist(settings: Settings, fhir_server: str, token: str | None, group: str | None,
                 at: datetime | None, fmt: Format, output: Path | None,
                 err: TextIO = sys.stderr) -> str:
    """Make the worklist and write it (stdout without ``output``); returns the summary line."""
    moment = at or datetime.now(UTC)
    if err.isatty():
        with Progress(TextColumn("reading charts"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=Console(file=err), transient=True
                      ) as progress:
            panel, engine = asyncio.run(_run(settings, fhir_server, token, group, moment,
                                                progress))
    else:
        panel, engine = asyncio.run(_run(settings, fhir_server, token, group, moment, None))
    body = render(panel, fmt, engine.catalogue, settings)
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        output.write_bytes(body)
    return summary(panel)


def summary(panel: Panel) -> str:
    tiers = [r.worst() for r in panel.rows]
    pumps = sum(1 for r in panel.rows if r.device is not None)
    rate = panel.charts / panel.seconds if panel.seconds else 0.0
    text = (f"{pumps} active pumps ({tiers.count('critical')} critical, "
            f"{tiers.count('warning')} warning, {tiers.count('info')} info) from "
            f"{panel.population} patients, {panel.charts} charts read in {panel.seconds:.1f} s "
            f"({rate:.0f}/s; {panel.source})")
    if panel.unreadable:
        text += f"; {panel.unreadable} charts could not be read"
    return text
