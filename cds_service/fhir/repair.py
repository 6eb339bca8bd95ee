"""Validation of one raw resource with its fhir.resources R4B model, repairing what is harmless.

EHRs send R4 with vendor additions; R4B models forbid unknown elements and insist on offsets in
dateTimes. Dropping a resource for that would hide clinical facts from the rules, so such
entries are repaired, validated again, and the repair is reported. Anything else is a real
defect and the entry is rejected with a reason.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

_MAX_ROUNDS = 6  # required-field checks run only after field checks pass, so errors come in waves
_NAIVE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass(frozen=True, slots=True)
class Validated:
    model: Any | None  # the R4B model instance, or None when rejected
    repairs: tuple[str, ...] = ()
    error: str | None = None


def validate(
    model_cls: Any,
    raw: dict[str, Any],
    lenient_defaults: Mapping[str, object] | None = None,
) -> Validated:
    """Validate ``raw``; never mutates it. ``lenient_defaults`` fills missing top-level
    required elements (used for draft orders only)."""
    data = raw
    copied = False
    repairs: list[str] = []
    for _ in range(_MAX_ROUNDS):
        try:
            return Validated(model_cls.model_validate(data), tuple(repairs))
        except ValidationError as exc:
            errors = exc.errors()
            if not copied:
                data = copy.deepcopy(raw)
                copied = True
            fixed = _fix(data, errors, lenient_defaults)
            if not fixed:
                return Validated(None, tuple(repairs), _describe(errors))
            repairs.extend(fixed)
    return Validated(None, tuple(repairs), "could not be repaired")


def _describe(errors: list[Any]) -> str:
    parts = [f"{_path(e['loc']) or '(resource)'}: {e['msg']}" for e in errors[:3]]
    more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
    return "; ".join(parts) + more


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _fix(
    data: dict[str, Any], errors: list[Any], lenient_defaults: Mapping[str, object] | None
) -> list[str]:
    """Apply every repair the errors allow; return what was done, or [] when some error is not
    repairable (the entry is then rejected as a whole)."""
    done: list[str] = []
    # Deepest locations first so that deleting an element does not shift a sibling's index.
    for error in sorted(errors, key=lambda e: len(e["loc"]), reverse=True):
        loc: tuple[Any, ...] = tuple(error["loc"])
        kind: str = error["type"]
        value = error.get("input")
        if kind == "extra_forbidden" and loc:
            if not _delete(data, loc):
                return []
            done.append(f"dropped unknown element {_path(loc)}")
        elif kind == "list_type" and isinstance(value, dict) and loc:
            if not _set(data, loc, [value]):
                return []
            done.append(f"wrapped {_path(loc)} in a list")
        elif isinstance(value, str) and _NAIVE_DATETIME.match(value) and loc:
            fixed = value + (":00" if value.count(":") == 1 else "") + "Z"
            if not _set(data, loc, fixed):
                return []
            done.append(f"read {_path(loc)} without offset as UTC")
        elif (
            kind.endswith("missing")
            and lenient_defaults is not None
            and len(loc) == 1
            and loc[0] in lenient_defaults
            and loc[0] not in data
        ):
            data[loc[0]] = copy.deepcopy(lenient_defaults[loc[0]])
            done.append(f"filled missing {loc[0]}")
        else:
            return []
    return done


def _parent(data: Any, loc: tuple[Any, ...]) -> Any:
    node = data
    for part in loc[:-1]:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node


def _delete(data: Any, loc: tuple[Any, ...]) -> bool:
    parent = _parent(data, loc)
    if isinstance(parent, dict) and loc[-1] in parent:
        del parent[loc[-1]]
        return True
    return False


def _set(data: Any, loc: tuple[Any, ...], value: object) -> bool:
    parent = _parent(data, loc)
    last = loc[-1]
    if isinstance(parent, dict) and isinstance(last, str) and last in parent:
        parent[last] = value
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        parent[last] = value
        return True
    return False
