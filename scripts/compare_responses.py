#!/usr/bin/env python3
"""Byte-for-byte comparison of the service's answers between two versions of the code.

Every scenario fixture (``fixtures/<family>/<id>.json``) is sent to the app in-process at its
anchor instant, with its prefetch; the discovery document and a few error answers are
captured too. ``compare`` runs the same capture on a git ref (checked out in a temporary
worktree, imported from there) and on the working tree, and reports every difference.

    .venv/bin/python scripts/compare_responses.py compare --ref <git-ref>
    .venv/bin/python scripts/compare_responses.py dump --out answers.json

The capture reads the fixture files itself and uses only ``create_app`` and ``Settings``, so
it runs unchanged against older and newer layouts of the package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _requests(fixtures: Path) -> list[tuple[str, str, datetime, Any]]:
    out = []
    for path in sorted(fixtures.glob("*/*.json")):
        if path.name.endswith(".bundle.json"):
            continue
        data = json.loads(path.read_text())
        anchor = datetime.fromisoformat(data["anchor"].replace("Z", "+00:00"))
        out.append((data["id"], data["service"], anchor, data["request"]))
    return out


def dump(out: Path) -> int:
    """Capture every answer of the code importable as ``cds_service`` from the cwd."""
    sys.path.insert(0, os.getcwd())
    from fastapi.testclient import TestClient

    from cds_service.app import create_app
    from cds_service.config import Settings

    print(f"capturing answers of {Path(create_app.__code__.co_filename).parent}", file=sys.stderr)

    now: list[datetime] = [datetime.fromisoformat("2026-06-01T09:00:00+00:00")]
    answers: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'audit.sqlite'}",
            spool_path=Path(tmp) / "audit.spool",
            public_base_url="http://testserver",
        )
        app = create_app(settings, clock=lambda: now[0])
        with TestClient(app) as http:

            def keep(name: str, response: Any) -> None:
                answers[name] = {"status": response.status_code, "body": response.text}

            keep("discovery", http.get("/cds-services"))
            for scenario_id, service, anchor, request in _requests(ROOT / "fixtures"):
                now[0] = anchor
                keep(scenario_id, http.post(f"/cds-services/{service}", json=request))
            keep("error:not-json", http.post(
                "/cds-services/itb-patient-view", content=b"{",
                headers={"content-type": "application/json"}))
            keep("error:no-hook", http.post("/cds-services/itb-patient-view", json={}))
            keep("error:unknown-service", http.post("/cds-services/nope", json={}))
            keep("error:wrong-hook", http.post("/cds-services/itb-patient-view", json={
                "hook": "order-sign", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
                "context": {"userId": "Practitioner/1", "patientId": "p1",
                            "draftOrders": {"resourceType": "Bundle", "type": "collection"}}}))
            keep("error:412", http.post("/cds-services/itb-patient-view", json={
                "hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2eb",
                "context": {"userId": "Practitioner/1", "patientId": "p1"}}))
    out.write_text(json.dumps(answers, indent=1, sort_keys=True))
    return 0


def capture(ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every answer of ``ref`` (checked out in a temporary worktree) and of the working tree,
    both on the working tree's fixtures."""
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                        str(worktree), ref], check=True)
        try:
            results = {}
            for name, cwd in (("ref", worktree), ("tree", ROOT)):
                target = Path(tmp) / f"{name}.json"
                env = dict(os.environ, PYTHONPATH=str(cwd))
                subprocess.run([sys.executable, str(Path(__file__).resolve()), "dump",
                                "--out", str(target)], cwd=cwd, env=env, check=True)
                results[name] = json.loads(target.read_text())
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(worktree)], check=False)
    return results["ref"], results["tree"]


def compare(ref: str) -> int:
    old, new = capture(ref)
    differing = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    for key in differing:
        print(f"DIFFERS {key}:\n  {ref}: {str(old.get(key))[:300]}\n  tree: "
              f"{str(new.get(key))[:300]}")
    print(f"{len(new) - len(differing)} of {len(new)} answers "
          f"byte-identical to {ref}; {len(differing)} differ")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump").add_argument("--out", type=Path, required=True)
    sub.add_parser("compare").add_argument("--ref", required=True)
    args = parser.parse_args()
    if args.command == "dump":
        return dump(args.out)
    return compare(args.ref)


if __name__ == "__main__":
    raise SystemExit(main())
