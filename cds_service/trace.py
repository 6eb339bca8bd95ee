"""What one call did, as the engine saw it: the typed trace the audit log records.

The engine fills it; ``audit/trace.py`` turns it into the stored record. It holds no token and
no prefetch payload (digests only), like the record it becomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cds_service.fhir.prefetch import Resolved
from cds_service.fhir.record import SkippedEntry
from cds_service.hooks.models import Card
from cds_service.rules.finding import Finding


@dataclass(frozen=True, slots=True)
class CallTrace:
    hook_instance: str
    service_id: str
    hook: str
    received_at: datetime
    answered_at: datetime
    duration_ms: float
    status: int  # 200 answered with cards; 412 required data missing
    user_id: str | None
    patient_id: str | None
    encounter_id: str | None
    fhir_server: str | None
    resolved: Resolved
    prefetch_sha256: Mapping[str, str]
    catalogue_version: str
    value_set_versions: Mapping[str, str]
    rule_versions: Mapping[str, str]
    thresholds: Mapping[str, object]
    error: str | None = None
    skipped: tuple[SkippedEntry, ...] = ()
    # Ordered as the cards: findings[i] produced cards[i].
    findings: tuple[Finding, ...] = ()
    cards: tuple[Card, ...] = ()
