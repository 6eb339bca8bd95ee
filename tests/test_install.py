"""The built wheel runs anywhere: installed into a fresh venv outside the checkout and started
from an empty folder with no ITB_CDS_* setting, it answers discovery and a fixture's cards,
keeps its audit log in the data folder, and leaves the source tree as it was.

What is real and what is borrowed, to keep this one test well under a minute: the wheel is
built from the working tree by pip and setuptools (offline, no build isolation) and installed
by pip, without dependencies, into a new venv; that venv finds the dependencies in the
project's own venv through a .pth line (a .pth in a path added that way is not run, so the
checkout's editable install of cds_service stays invisible, which the test checks).
Installing the runtime dependencies themselves is what ./scripts/serve does on a fresh clone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from cds_service.config import PROJECT_ROOT
from cds_service.sandbox.scenarios import load_scenario, shifted_request
from tests.conftest import free_port

FIXTURE = PROJECT_ROOT / "fixtures" / "refill" / "refill-overdue.json"
DEADLINE_S = 60.0


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], check=True,
                          capture_output=True, text=True).stdout


def copy_of_working_tree(dest: Path) -> Path:
    """Every file git would commit (tracked or new, not ignored), as it is on disk: the wheel
    is built from what is here now, and no stale build/ folder of the checkout leaks in."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the working tree, not yet in the index
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return dest


def run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                            timeout=300, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
    return result


@contextlib.contextmanager
def serving(command: list[str], cwd: Path, env: dict[str, str], url: str, log: Path
            ) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as sink, subprocess.Popen(command, cwd=cwd, env=env,
                                                   stdout=sink, stderr=sink) as process:
        try:
            deadline = time.monotonic() + DEADLINE_S
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(url + "/ready", timeout=2).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the installed service did not start: "
                                         + log.read_text()[-3000:])
                time.sleep(0.1)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_the_wheel_installed_outside_the_checkout_serves_from_an_empty_folder(
        tmp_path: Path) -> None:
    before = git("status", "--porcelain", "--untracked-files=all")
    source = copy_of_working_tree(tmp_path / "src")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
        "--no-build-isolation", "--wheel-dir", tmp_path / "dist", source)
    [wheel] = (tmp_path / "dist").glob("itb_cds-*.whl")

    shipped = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("cards", "fixtures"):
        sources = [p for p in (PROJECT_ROOT / folder).rglob("*") if p.is_file()]
        assert sources
        missing = [p.name for p in sources
                   if f"cds_service/data/{folder}/{p.relative_to(PROJECT_ROOT / folder)}"
                   not in shipped]
        assert missing == [], f"the wheel lacks {folder}/ files: {missing[:5]}"

    empty = tmp_path / "empty"
    empty.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ITB_CDS_", "XDG_", "PYTHON", "PROMETHEUS_"))}
    env["HOME"] = str(home)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", wheel)
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=empty, env=env).stdout.strip())
    (site / "zz_itb_cds_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    where = run(python, "-c", "import cds_service; print(cds_service.__file__)",
                cwd=empty, env=env).stdout
    assert where.startswith(str(site)), f"cds_service was imported from {where}"

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(venv / "bin" / "itb-cds"), "serve", "--port", str(port)]
    log = tmp_path / "serve.log"
    with serving(command, empty, env, url, log), httpx.Client(base_url=url, timeout=30) as http:
        services = {s["id"] for s in http.get("/cds-services").json()["services"]}
        assert services == {"itb-patient-view", "itb-order-select", "itb-order-sign",
                            "itb-appointment-book"}

        scenario = load_scenario(FIXTURE)
        request = shifted_request(scenario, datetime.now(UTC))
        answer = http.post(f"/cds-services/{scenario.service}", json=request)
        assert answer.status_code == 200, answer.text
        found = [(c["extension"]["itb-cds.finding"]["rule"],
                  c["extension"]["itb-cds.finding"]["outcome"], c["indicator"])
                 for c in answer.json()["cards"]]
        assert found == [(e.rule, e.outcome, e.indicator) for e in scenario.expected]

        assert http.get("/sandbox").status_code == 200  # the packaged demo fixtures
        assert http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200

    assert list(empty.iterdir()) == [], "the service wrote into its working directory"
    assert (home / ".local" / "share" / "itb-cds" / "audit.sqlite").is_file()
    assert git("status", "--porcelain", "--untracked-files=all") == before
