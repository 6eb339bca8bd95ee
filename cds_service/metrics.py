"""Prometheus metrics with ``prometheus_client``, summed over every worker of a node.

With several workers (``cds_service.serve``) the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before it starts them: each worker writes its counts to files there and a scrape, whichever
worker answers it, adds up all of them. With one process the counts stay in memory. Either
way every app has its own registry, so tests can build as many apps as they like.

What is counted where: the call middleware (``api/observe.py``) counts every CDS Hooks
request by endpoint, service, HTTP status and outcome, and times it, because it also sees the
calls that never reach a route (401, 404, 405, 413, 415); the service route reports what an
answered call found (``observe``): cards by rule and tier, and the FHIR fallback fetches.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from cds_service.audit.models import CallRecord, FeedbackRecord

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds; a call over HTTP takes ~10 ms warm, ~30 ms cold, and the FHIR budget is 2 s.
_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A *_created series per label set doubles the output and nobody graphs it (and the
# multiprocess collector never has it, so one worker and two would differ).
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass
class CallNote:
    """What the route learned about the call in flight, for its metrics and its log line."""

    hook_instance: str | None = None
    cards: Counter[str] = field(default_factory=Counter)  # rule -> cards
    fhir_fetches: int = 0
    fhir_failures: int = 0
    answered: bool = False  # the engine answered (200 or 412), so ``cards`` is the whole story


# Set by the call middleware around each CDS Hooks request; the route fills it in.
CURRENT_CALL: ContextVar[CallNote | None] = ContextVar("itb_cds_current_call", default=None)


def outcome_of(status: int, note: CallNote) -> str:
    """A coarse outcome for dashboards: did the EHR get cards, and if not, why not."""
    if status == 200:
        if not note.answered:
            return "ok"  # discovery, feedback
        return "cards" if sum(note.cards.values()) else "no_cards"
    if status == 412:
        return "required_data_missing"
    if status == 401:
        return "unauthorized"
    return "rejected" if status < 500 else "error"


class _SpoolDepth(Collector):
    """Records waiting in the audit spool for the database, read from the file at each scrape
    (it is one file shared by every worker, so no worker's count could be right alone)."""

    def __init__(self, spool_path: Callable[[], Path]) -> None:
        self._path = spool_path

    def collect(self) -> Iterable[Metric]:
        depth = 0
        try:
            with open(self._path(), "rb") as spool:
                for block in iter(lambda: spool.read(1 << 16), b""):
                    depth += block.count(b"\n")
        except FileNotFoundError:
            pass
        gauge = GaugeMetricFamily("itb_cds_audit_spool_records",
                                  "Audit records spooled while the database was unavailable.")
        gauge.add_metric([], depth)
        yield gauge


class Metrics:
    def __init__(self, spool_path: Path | None = None) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = PromCounter(
            "itb_cds_calls", "CDS Hooks requests by endpoint, service, HTTP status and outcome.",
            ["endpoint", "service", "status", "outcome"], registry=r)
        self.duration = PromHistogram(
            "itb_cds_call_duration_seconds", "Time to the response's first byte.",
            ["endpoint", "service"], buckets=_BUCKETS_S, registry=r)
        self.cards = PromCounter(
            "itb_cds_cards", "Cards returned, by rule and tier (indicator).",
            ["rule", "indicator"], registry=r)
        self.fhir = PromCounter(
            "itb_cds_fhir_fallback_fetches", "FHIR requests made to fill prefetch gaps, by result.",
            ["result"], registry=r)
        self.feedback_items = PromCounter(
            "itb_cds_feedback", "Feedback items received, by service and outcome.",
            ["service", "outcome"], registry=r)
        self._spool = _SpoolDepth(lambda: spool_path or Path(os.devnull))
        if self.multiprocess_dir is None:
            r.register(self._spool)

    def count_call(self, endpoint: str, service: str, status: int | str, outcome: str,
                   seconds: float) -> None:
        self.calls.labels(endpoint, service, str(status), outcome).inc()
        self.duration.labels(endpoint, service).observe(seconds)

    def observe(self, service_id: str, status: int, record: CallRecord | None) -> None:
        """The service route's report of a call the engine answered (200 or 412)."""
        note = CURRENT_CALL.get()
        if note is not None:
            note.answered = True
        if record is None:
            return
        for card in record.cards:
            self.cards.labels(card.rule or "unknown", card.indicator).inc()
        failures = sum(1 for q in record.queries if q.error is not None)
        if record.queries:
            self.fhir.labels("ok").inc(len(record.queries) - failures)
            self.fhir.labels("failed").inc(failures)
        if note is not None:
            note.hook_instance = record.hook_instance
            note.cards.update(card.rule or "unknown" for card in record.cards)
            note.fhir_fetches += len(record.queries)
            note.fhir_failures += failures

    def feedback(self, service_id: str, records: Iterable[FeedbackRecord]) -> None:
        for item in records:
            self.feedback_items.labels(service_id, item.outcome).inc()

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return prometheus_client.generate_latest(self.registry)
        # Every worker's files, added up: the same answer whichever worker is asked.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        registry.register(self._spool)
        return prometheus_client.generate_latest(registry)
