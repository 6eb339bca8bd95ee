#!/usr/bin/env python3
"""What a rule change did to the scenarios, measured against an earlier version of the code.

    .venv/bin/python scripts/scenario_changes.py --ref <git-ref>

Both versions of the code answer today's fixtures (``scripts/compare_responses.py dump``, the
ref checked out in a temporary worktree). Every scenario must get its expected cards from
the working tree. Then:

- a scenario added since the ref either **fails on the ref** (the change made it pass) or
  passes there too (it shows behaviour that already held);
- a scenario the ref already had is byte-identical, differs only in version strings (and
  in value sets added to the versions every card lists), or has other changed text, which
  is printed line by line.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_responses import ROOT, capture  # a sibling script, not a package

VERSION = re.compile(r"\d+\.\d+\.\d+")

Keys = Counter[tuple[str, str, str]]


def _keys(body: str) -> Keys | None:
    try:
        cards = json.loads(body).get("cards", [])
    except (ValueError, AttributeError):
        return None
    return Counter((c["extension"]["itb-cds.finding"]["rule"],
                    c["extension"]["itb-cds.finding"]["outcome"], c["indicator"])
                   for c in cards)


def _normalised(body: str, new_value_sets: set[str]) -> Any:
    """The answer with version strings blanked and the value sets the ref did not have
    dropped from the version maps."""
    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items() if k not in new_value_sets}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return VERSION.sub("V", x) if isinstance(x, str) else x
    return walk(json.loads(body))


def _fixtures() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(ROOT.glob("fixtures/*/*.json")):
        if not path.name.endswith(".bundle.json"):
            data = json.loads(path.read_text())
            out[data["id"]] = data
    return out


def _ids_at(ref: str) -> set[str]:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", ref,
                             "fixtures"], check=True, capture_output=True, text=True).stdout
    return {Path(p).stem for p in listed.split() if p.endswith(".json")
            and not p.endswith(".bundle.json") and p.count("/") == 2}


def _value_sets_at(ref: str) -> set[str]:
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", ref,
                             "cds_service/terminology/data/valuesets/"],
                            check=True, capture_output=True, text=True).stdout
    return {Path(p).stem for p in listed.split()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", required=True)
    ref = parser.parse_args().ref
    old, new = capture(ref)
    fixtures, before = _fixtures(), _ids_at(ref)
    added_sets = {p.stem for p in (ROOT / "cds_service/terminology/data/valuesets").glob(
        "*.yaml")} - _value_sets_at(ref)
    wrong, fails, holds = [], [], []
    same = versions_only = 0
    changed: list[tuple[str, list[str]]] = []
    for sid, fixture in fixtures.items():
        expected = Counter((e["rule"], e["outcome"], e["indicator"])
                           for e in fixture["expected"])
        got_old, got_new = _keys(old[sid]["body"]), _keys(new[sid]["body"])
        if got_new != expected:
            wrong.append(sid)
        elif sid not in before:
            (holds if got_old == expected else fails).append((sid, dict(got_old or {})))
        elif old[sid] == new[sid]:
            same += 1
        else:
            a = _normalised(old[sid]["body"], added_sets)
            b = _normalised(new[sid]["body"], added_sets)
            if a == b:
                versions_only += 1
            else:
                lines = [line for line in difflib.unified_diff(
                    json.dumps(a, indent=1, sort_keys=True).splitlines(),
                    json.dumps(b, indent=1, sort_keys=True).splitlines(), lineterm="", n=0)
                    if line[:1] in "+-" and not line.startswith(("+++", "---"))]
                changed.append((sid, lines))
    for sid in wrong:
        print(f"WRONG on the tree: {sid}")
    print(f"new scenarios: {len(fails) + len(holds)}; fail on {ref}: {len(fails)}; "
          f"pass there too: {len(holds)}")
    for sid, got in fails:
        print(f"  fails on {ref}: {sid} (there: {got or 'no card'})")
    for sid, _ in holds:
        print(f"  passes on {ref}: {sid}")
    print(f"scenarios {ref} had: {same + versions_only + len(changed)}; byte-identical: "
          f"{same}; versions only: {versions_only}; other text: {len(changed)}")
    for sid, lines in changed:
        print(f"  text changed: {sid}")
        for line in lines:
            print(f"    {line[:300]}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
