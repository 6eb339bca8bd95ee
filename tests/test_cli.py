"""The itb-cds console script as a user meets it (real subprocesses): every mistake is one
line on stderr and a non-zero exit; ``run`` takes a fixture, a bare request or a bundle; the
help has no raw markup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import load_scenario

ITB_CDS = Path(sys.executable).parent / "itb-cds"
FIXTURE = PROJECT_ROOT / "fixtures" / "refill" / "refill-overdue.json"
BUNDLE = FIXTURE.with_name("refill-overdue.bundle.json")


def itb_cds(tmp_path: Path, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ITB_CDS_")}
    clean.update(ITB_CDS_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run([str(ITB_CDS), *map(str, args)], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "env", "says"), [
    (("run", "no-such-file.json"), {}, "does not exist"),
    (("run", "."), {}, "is a directory"),
    (("run", FIXTURE, "--at", "yesterday"), {}, "--at 'yesterday' is not an ISO 8601"),
    (("run", BUNDLE), {}, "give --service"),
    (("run", BUNDLE, "--service", "itb-nope"), {}, "no service 'itb-nope'"),
    (("run", "broken.json"), {}, "is not JSON"),
    (("serve",), {"ITB_CDS_AUTH_MODE": "jwt"}, "no issuer is trusted"),
    (("serve",), {"ITB_CDS_PORT": "eighty"}, "settings: port"),
    (("serve", "--host", "0.0.0.0"), {"ITB_CDS_AUTH_MODE": "jwt"}, "ITB_CDS_PUBLIC_BASE_URL"),
    (("run", FIXTURE, "--colour"), {}, "No such option: --colour"),
])
def test_a_mistake_is_one_line_on_stderr_and_a_failure(
        tmp_path: Path, args: tuple[str, ...], env: dict[str, str], says: str) -> None:
    (tmp_path / "broken.json").write_text('{"hook": ')
    result = itb_cds(tmp_path, *args, **env)
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("itb-cds: ") and says in line


def cards_of(result: subprocess.CompletedProcess[str]) -> list[tuple[str, str, str]]:
    assert result.returncode == 0, result.stderr
    return [(c["extension"]["itb-cds.finding"]["rule"], c["extension"]["itb-cds.finding"][
        "outcome"], c["indicator"]) for c in json.loads(result.stdout)["cards"]]


def test_a_fixture_its_bare_request_and_its_bundle_give_the_expected_cards(
        tmp_path: Path) -> None:
    scenario = load_scenario(FIXTURE)
    expected = [(e.rule, e.outcome, e.indicator) for e in scenario.expected]
    anchor = scenario.anchor.isoformat()
    bare = tmp_path / "request.json"
    bare.write_text(json.dumps(scenario.request))

    assert cards_of(itb_cds(tmp_path, "run", FIXTURE, "--json")) == expected
    assert cards_of(itb_cds(tmp_path, "run", bare, "--at", anchor, "--json")) == expected
    assert cards_of(itb_cds(tmp_path, "run", BUNDLE, "--service", scenario.service,
                            "--at", anchor, "--json")) == expected


def test_the_help_renders_without_raw_markup(tmp_path: Path) -> None:
    for args in ((), ("run",), ("serve",), ("audit",)):
        result = itb_cds(tmp_path, *args, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout
        assert "`" not in result.stdout, result.stdout
