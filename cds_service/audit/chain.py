"""The hash chain: canonical JSON and SHA-256 links.

Every audit entry (call or feedback, one chain in insertion order) stores
``hash = SHA-256(prev_hash + canonical(body))`` where ``body`` carries the entry's sequence
number, kind, key, time and payload, so an edited, deleted or inserted row breaks a link.
"""

from __future__ import annotations

import hashlib
import math

import orjson

GENESIS_HASH = "0" * 64


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, UTF-8 characters kept (control characters stay escaped).

    orjson rather than the json module: the chain serialises every call's record on the
    request path, and orjson does it an order of magnitude faster with the same shape.
    """
    _refuse_non_finite(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def _refuse_non_finite(value: object) -> None:
    # orjson writes NaN/Infinity as null; a hashed record must not change a value silently.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("non-finite number in an audit record")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def link_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def payload_digest(value: object) -> str:
    """SHA-256 of a JSON payload in canonical form: what the log keeps instead of the payload.

    The payload was parsed from JSON, which cannot carry NaN or Infinity, so it skips the
    non-finite walk that ``canonical_json`` does for records built in code.
    """
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()
