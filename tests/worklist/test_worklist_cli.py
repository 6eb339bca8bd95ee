"""itb-cds worklist: the token from a file (sent as the bearer token, never printed), the file
written, a one-line summary, a progress bar on a terminal, and one line on stderr for a
mistake."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bench.panel import GROUP_ID
from bench.panel_server import PanelStore
from cds_service.cli import main
from cds_service.config import Settings
from cds_service.worklist import Panel
from cds_service.worklist.command import run_worklist
from cds_service.worklist.formats import Format
from tests.worklist.conftest import TOKEN

AT = "2026-06-15T09:00:00Z"


def itb_cds(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(["worklist", *args])
    return int(exit_.value.code or 0)


def test_writes_the_rows_and_says_what_it_read(panel_url: str, tmp_path: Path,
                                               exported: Panel, store: PanelStore,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    out = tmp_path / "worklist.json"
    # The session's panel store has seen the token already (the shared export): only what
    # this run sends counts here.
    seen = set(store.authorizations)
    store.authorizations.clear()
    try:
        assert itb_cds("--fhir-server", panel_url, "--token-file", str(token_file),
                       "--group", GROUP_ID, "--at", AT, "--format", "json",
                       "--output", str(out)) == 0
        sent = set(store.authorizations)
    finally:
        store.authorizations |= seen
    assert json.loads(out.read_text()) == [r.model_dump(mode="json") for r in exported.rows]
    err = capsys.readouterr().err
    pumps = len(exported.rows)
    assert err.startswith(f"{pumps} active pumps (") and "150 patients" in err
    assert TOKEN not in err
    assert sent == {f"Bearer {TOKEN}"}  # the token from the file, on every request


@pytest.mark.parametrize(("args", "message"), [
    (("--bearer-token", "a", "--token-file", "{file}"), "not both"),
    (("--format", "pdf"), "--format 'pdf'"),
    (("--group", "no/such"), "the group must be a FHIR id"),
    (("--at", "yesterday"), "--at 'yesterday'"),
])
def test_a_mistake_is_one_line_on_stderr(panel_url: str, tmp_path: Path, args: tuple[str, ...],
                                        message: str, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    filled = [a.replace("{file}", str(token_file)) for a in args]
    assert itb_cds("--fhir-server", panel_url, *filled) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("itb-cds: ") and message in err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar(panel_url: str, tmp_path: Path) -> None:
    terminal = Terminal()
    out = tmp_path / "worklist.html"
    from datetime import datetime

    line = run_worklist(Settings(), panel_url, TOKEN, GROUP_ID,
                        datetime.fromisoformat(AT), Format.HTML, out, err=terminal)
    assert "reading charts" in terminal.getvalue()
    assert "active pumps" in line and out.read_text().startswith("<!doctype html>")
