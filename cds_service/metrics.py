"""Prometheus text-format counters, kept in-process (one set per worker).

Hand-written: four counters and a latency histogram do not justify prometheus_client's
multi-process machinery; each worker exposes its own numbers.
"""

from __future__ import annotations

import threading
from collections import Counter

from cds_service.audit.models import CallRecord

_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, int]] = Counter()
        self.cards: Counter[tuple[str, str]] = Counter()
        self.latency: Counter[tuple[str, float]] = Counter()
        self.latency_sum: dict[str, float] = {}

    def observe(self, service_id: str, status: int, record: CallRecord | None) -> None:
        with self._lock:
            self.calls[(service_id, status)] += 1
            if record is None:
                return
            for card in record.cards:
                self.cards[(card.rule or "unknown", card.indicator)] += 1
            ms = record.duration_ms or 0.0
            self.latency_sum[service_id] = self.latency_sum.get(service_id, 0.0) + ms
            for bound in (*_BUCKETS_MS, float("inf")):
                if ms <= bound:
                    self.latency[(service_id, bound)] += 1

    def render(self) -> str:
        lines = [
            "# HELP itb_cds_calls_total CDS service calls by service and HTTP status.",
            "# TYPE itb_cds_calls_total counter",
        ]
        with self._lock:
            for (service, status), n in sorted(self.calls.items()):
                lines.append(f'itb_cds_calls_total{{service="{service}",status="{status}"}} {n}')
            lines += [
                "# HELP itb_cds_cards_total Cards returned by rule and indicator.",
                "# TYPE itb_cds_cards_total counter",
            ]
            for (rule, indicator), n in sorted(self.cards.items()):
                lines.append(f'itb_cds_cards_total{{rule="{rule}",indicator="{indicator}"}} {n}')
            lines += [
                "# HELP itb_cds_call_duration_ms Time to answer a call, in milliseconds.",
                "# TYPE itb_cds_call_duration_ms histogram",
            ]
            services = sorted({s for s, _ in self.latency})
            for service in services:
                for bound in (*_BUCKETS_MS, float("inf")):
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    n = self.latency[(service, bound)]
                    lines.append(
                        f'itb_cds_call_duration_ms_bucket{{service="{service}",le="{le}"}} {n}'
                    )
                total = self.latency[(service, float("inf"))]
                lines.append(
                    f'itb_cds_call_duration_ms_sum{{service="{service}"}} '
                    f"{self.latency_sum[service]:.3f}"
                )
                lines.append(f'itb_cds_call_duration_ms_count{{service="{service}"}} {total}')
        return "\n".join(lines) + "\n"
