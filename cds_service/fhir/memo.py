"""What parsing gave, remembered by the exact content it was given.

``ValidationMemo``: per raw resource, what validating it gave.
``RecordMemo``: per whole chart (every prefetch key, and the draft orders), the PatientRecord.

Validation with fhir.resources costs 0.3-0.6 ms per resource and is most of a call, yet an EHR
sends the same chart again and again: patient-view fires on every chart opening, and
order-select on every change to the order being written, each time with the same prefetch. The
outcome of validating (the fact, or the model for resources whose fact depends on others, the
repairs, or the rejection) depends only on the resource's JSON and the reference it is cited
by, so it is kept under a digest of exactly those. A changed resource (new ``meta.versionId``,
an edited dose, anything) has another digest and is validated afresh; nothing is ever served
for content that differs by a single byte after key sorting.

The memo is bounded (least recently used out) and per process; entries are immutable facts or
read-only models, so sharing them between calls is safe.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from cds_service.fhir.record import PatientRecord

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Remembered:
    fact: Any | None  # the domain fact
    model: Any | None  # the validated R4B model, for facts that need other resources (AdverseEvent)
    repairs: tuple[str, ...]
    error: str | None  # why the resource was rejected (fact and model both None)
    medication_ref: str | None = None  # "Medication/x" a medication use names outside itself


@dataclass(slots=True)
class MemoStats:
    hits: int = 0
    misses: int = 0


class _Lru(Generic[V]):
    """A bounded, thread-safe map from digest to value; least recently used out."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.stats = MemoStats()
        self._entries: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return found

    def put(self, key: bytes, value: V) -> None:
        if self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _digest(*parts: bytes) -> bytes:
    return hashlib.blake2b(b"\0".join(parts), digest_size=20).digest()


class ValidationMemo(_Lru[Remembered]):
    @staticmethod
    def key(ref: str, raw: Mapping[str, Any]) -> bytes | None:
        """Digest of the reference and the resource's JSON; None when the resource cannot be
        serialised (it is then validated every time). Keys are not sorted: the same EHR sends
        the same key order, and another order only costs a second validation."""
        try:
            body = orjson.dumps(raw)
        except (TypeError, orjson.JSONEncodeError):
            return None
        return _digest(ref.encode("utf-8", "surrogatepass"), body)


class RecordMemo(_Lru[PatientRecord]):
    """A chart opened again (patient-view on every opening; order-select on every change to
    the order with the same prefetch) gives the same record: it is remembered under the
    SHA-256 of every prefetch key (which the audit record computes anyway) and of the draft
    orders. Only charts that came whole in the prefetch are remembered: anything fetched from
    the FHIR server is read afresh."""

    @staticmethod
    def key(service_id: str, prefetch_sha256: Mapping[str, str], draft_orders: object | None
            ) -> bytes | None:
        """The service decides which prefetch keys are read, so it is part of the key."""
        try:
            drafts = orjson.dumps(draft_orders)
        except (TypeError, orjson.JSONEncodeError):
            return None
        digests = orjson.dumps(sorted(prefetch_sha256.items()))
        return _digest(service_id.encode(), digests, drafts)
