"""The layout's seams hold (architecture.md, "Arrows that must never exist"), and no module or
function grows past what a reader takes in at once."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cds_service"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def loaded_after_import(module: str) -> set[str]:
    """Every module a fresh interpreter holds after importing ``module`` alone."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent)
    return set(json.loads(out.stdout))


def imports_of(path: Path) -> set[str]:
    """The cds_service modules a source file imports (``from a import b`` counts a.b too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("cds_service")}


def room(name: str) -> list[Path]:
    target = PACKAGE / name
    return sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_engine_loads_nothing_of_http_or_the_sandbox() -> None:
    loaded = loaded_after_import("cds_service.engine")
    offending = sorted(m for m in loaded if under(m, "cds_service.api", "cds_service.web",
                                                  "cds_service.sandbox", "fastapi", "starlette"))
    assert offending == []


def test_the_rules_load_only_the_record_of_fhir() -> None:
    loaded = loaded_after_import("cds_service.rules")
    fhir = {m for m in loaded if under(m, "cds_service.fhir")}
    assert fhir <= {"cds_service.fhir", "cds_service.fhir.record"}
    assert not [m for m in loaded if under(m, "cds_service.api", "cds_service.audit",
                                           "cds_service.sandbox", "cds_service.web")]


@pytest.mark.parametrize(("source", "forbidden", "allowed"), [
    ("rules", ("cds_service.fhir", "cds_service.api", "cds_service.audit", "cds_service.sandbox",
               "cds_service.engine"), ("cds_service.fhir.record",)),
    ("catalogue", ("cds_service.rules",), ("cds_service.rules.finding",)),
    ("audit", ("cds_service.rules", "cds_service.api"), ("cds_service.rules.finding",)),
    ("engine", ("cds_service.api", "cds_service.sandbox"), ()),
    ("fhir", ("cds_service.api", "cds_service.rules", "cds_service.services"), ()),
    ("terminology", ("cds_service.api", "cds_service.rules", "cds_service.audit"), ()),
    ("hooks", ("cds_service.api",), ()),
    ("auth", ("cds_service.api", "cds_service.audit", "cds_service.sandbox"), ()),
    ("services", ("cds_service.api",), ()),
])
def test_no_forbidden_arrow(source: str, forbidden: tuple[str, ...],
                            allowed: tuple[str, ...]) -> None:
    bad = sorted(
        f"{path.relative_to(PACKAGE)} -> {name}"
        for path in room(source)
        for name in imports_of(path)
        if under(name, *forbidden) and not under(name, *allowed)
        # "from cds_service.fhir import record" names the record module itself
        and not any(name == a.rsplit(".", 1)[0] for a in allowed)
    )
    assert bad == []


def test_the_service_registry_is_the_only_list_of_services() -> None:
    mentions = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if '"itb-order-sign"' in path.read_text() and path.name != "services.py"
    )
    assert mentions == []


def test_no_module_or_function_is_too_long() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE)}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.name}: {length} lines")
    assert too_long == []
