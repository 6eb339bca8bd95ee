"""The hash chain: canonical JSON and SHA-256 links.

Every audit entry (call or feedback, one chain in insertion order) stores
``hash = SHA-256(prev_hash + canonical(body))`` where ``body`` carries the entry's sequence
number, kind, key, time and payload, so an edited, deleted or inserted row breaks a link.
"""

from __future__ import annotations

import hashlib
import json

GENESIS_HASH = "0" * 64


def canonical_json(value: object) -> str:
    """Sorted keys, no whitespace, UTF-8 characters kept (control characters stay escaped)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def link_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def payload_digest(value: object) -> str:
    """SHA-256 of a JSON payload in canonical form: what the log keeps instead of the payload."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
