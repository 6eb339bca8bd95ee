"""A synthetic audit log for the governance measures: real CallRecords and FeedbackRecords,
written through the real batch writer (hash chain, card index, facts) in large transactions.

Seeded and deterministic. It has what the measures must cope with: three services, 412s and
5xx, catalogue versions that change twice, pumps whose refill cycles close (or do not), battery
bookings before and after end of service, old cards without recorded override reasons, and
feedback of every flag (unknown card, other service, reason not offered, suggestion not on the
card), repeated and revised responses.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from cds_service.audit.batch import BatchSql, write_batch
from cds_service.audit.entry import Prepared, PreparedFeedback
from cds_service.audit.facts import FactualCall
from cds_service.audit.models import (
    CallRecord,
    CardRecord,
    FeedbackRecord,
    FindingRecord,
    OfferedReason,
)
from cds_service.audit.store import AuditStore

T0 = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)  # a Monday
SPAN_DAYS = 182
SYSTEM = "urn:itb-cds:codes"
SERVICES = (("itb-patient-view", "patient-view", 0.7), ("itb-order-select", "order-select", 0.15),
            ("itb-order-sign", "order-sign", 0.15))
VERSIONS = ((0, "common@1.0.0;refill@1.0.0", "1.0.0"),
            (60, "common@1.0.0;refill@1.1.0", "1.1.0"),
            (130, "common@1.1.0;refill@1.1.0", "1.1.0"))
REASONS = ("patient-declines", "already-addressed", "not-relevant", "will-do-later")
TIERS = {"candidate": "info", "positive": "warning", "undocumented": "warning",
         "empty": "critical", "overdue": "critical", "due-soon": "warning", "notice": "info",
         "booked": "info", "end-of-service": "critical", "plan": "warning",
         "missing-data": "info"}


@dataclass
class Pump:
    patient: str
    device: str
    refills: list[date]  # the days it was refilled, some before the alarm date, most after
    interval: int
    eos: date
    booked: date | None


@dataclass
class SyntheticLog:
    calls: list[CallRecord] = field(default_factory=list)
    # Posts in the order they were sent: (service the post went to, its items).
    posts: list[tuple[str, list[FeedbackRecord]]] = field(default_factory=list)

    @property
    def feedback_items(self) -> int:
        return sum(len(items) for _, items in self.posts)


class _Maker:
    def __init__(self, seed: int, patients: int) -> None:
        self.rng = random.Random(seed)
        self.patients = [f"pat-{i}" for i in range(patients)]
        self.users = [f"Practitioner/u{i}" for i in range(max(20, patients // 15))]
        self.pumps: dict[str, Pump] = {}
        for i, patient in enumerate(self.patients[: patients // 3]):
            first = (T0 - timedelta(days=self.rng.randint(0, 80))).date()
            interval = self.rng.choice((60, 75, 90))
            refills = [first]
            while refills[-1] < (T0 + timedelta(days=SPAN_DAYS)).date():
                refills.append(refills[-1] + timedelta(days=interval + self.rng.randint(-10, 6)))
            eos = (T0 + timedelta(days=self.rng.randint(20, 400))).date()
            booked = eos + timedelta(days=self.rng.randint(-60, 20)) \
                if self.rng.random() < 0.5 else None
            self.pumps[patient] = Pump(patient, f"Device/pump-{i}", refills, interval, eos,
                                       booked)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def card(self, finding: FindingRecord, *, old: bool) -> CardRecord:
        offered = self.rng.sample(REASONS, self.rng.randint(1, 3))
        return CardRecord(
            uuid=self.uid(), summary=f"{finding.rule} {finding.outcome}", indicator=finding.tier,
            rule=finding.rule, outcome=finding.outcome,
            suggestion_uuids=[self.uid() for _ in range(self.rng.choice((0, 1, 1, 2)))],
            override_reasons=None if old else [
                OfferedReason(system=SYSTEM, code=c, display=c.replace("-", " ").title())
                for c in offered])

    def refill(self, pump: Pump, now: datetime, version: str) -> FindingRecord | None:
        done = [d for d in pump.refills if d <= now.date()]
        # Now and then a refill is late to be documented: the card keeps an old date.
        if len(done) > 1 and self.rng.random() < 0.1:
            done.pop()
        last = done[-1]
        alarm = last + timedelta(days=pump.interval - 3)
        until = (alarm - now.date()).days
        if until > 14:
            return None
        outcome = ("empty" if until < -4 else "overdue" if until < 0 else "due-soon"
                   if until <= 7 else "notice")
        if outcome in ("due-soon", "notice") and self.rng.random() < 0.3:
            outcome = "booked"
        return FindingRecord(rule="itb-refill", rule_version=version, outcome=outcome,
                             tier=TIERS[outcome], device_ref=pump.device,
                             numbers={"lastRefillDate": last.isoformat(),
                                      "alarmDate": alarm.isoformat(), "volumeMl": 20.0})

    def battery(self, pump: Pump, now: datetime, version: str) -> FindingRecord | None:
        until = (pump.eos - now.date()).days
        if until > 365:
            return None
        numbers: dict[str, float | int | str | bool] = {"endOfServiceDate": pump.eos.isoformat()}
        outcome = "end-of-service" if until <= 0 else "plan" if until <= 180 else "notice"
        notes: list[str] = []
        if pump.booked is not None and pump.booked <= now.date() + timedelta(days=400):
            numbers["bookedDate"] = pump.booked.isoformat()
            if outcome == "end-of-service":
                notes.append("booked-but-critical")
            elif pump.booked <= pump.eos:
                outcome = "booked"
        return FindingRecord(rule="itb-battery", rule_version="1.0.0", outcome=outcome,
                             tier=TIERS[outcome], device_ref=pump.device, numbers=numbers,
                             notes=notes)

    def findings(self, service: str, patient: str, now: datetime, version: str
                 ) -> list[FindingRecord]:
        found: list[FindingRecord] = []
        if self.rng.random() < 0.25:
            outcome = self.rng.choice(("candidate", "positive", "undocumented"))
            rule = "itb-candidacy" if outcome == "candidate" else "itb-trial-outcome"
            found.append(FindingRecord(rule=rule, rule_version="1.0.0", outcome=outcome,
                                       tier=TIERS[outcome]))
        pump = self.pumps.get(patient)
        if pump is not None and service == "itb-patient-view":
            for rule in (self.refill(pump, now, version), self.battery(pump, now, version)):
                if rule is not None:
                    found.append(rule)
            if self.rng.random() < 0.05:
                found.append(FindingRecord(rule="itb-data-quality", rule_version="1.0.0",
                                           outcome="missing-data", tier="info",
                                           device_ref=pump.device))
        return found

    def call(self, n: int, total: int) -> CallRecord:
        offset = SPAN_DAYS * 86400 * n / total + self.rng.random() * 60
        now = T0 + timedelta(seconds=offset)
        day = int(offset // 86400)
        _, catalogue, refill_version = next(v for v in reversed(VERSIONS) if day >= v[0])
        service, hook = self.rng.choices([s[:2] for s in SERVICES], [s[2] for s in SERVICES])[0]
        patient = self.rng.choice(self.patients)
        status = self.rng.choices((200, 412, 500, 503), (0.955, 0.035, 0.007, 0.003))[0]
        findings = self.findings(service, patient, now, refill_version) if status == 200 else []
        duration = round(self.rng.lognormvariate(3.0, 0.6), 3)
        return CallRecord(
            hook_instance=self.uid(), service_id=service, hook=hook, received_at=now,
            answered_at=now + timedelta(milliseconds=duration), duration_ms=duration,
            http_status=status, user_id=self.rng.choice(self.users), patient_id=patient,
            findings=findings, cards=[self.card(f, old=day < 20) for f in findings],
            catalogue_version=catalogue,
            rule_versions={"itb-refill": refill_version, "itb-battery": "1.0.0"})


def _feedback(m: _Maker, calls: list[CallRecord], count: int) -> list[tuple[str, list[
        FeedbackRecord]]]:
    shown = [(c, card) for c in calls for card in c.cards]
    posts: list[tuple[str, list[FeedbackRecord]]] = []
    made = 0
    while made < count:
        call, card = m.rng.choice(shown)
        service = call.service_id
        roll = m.rng.random()
        card_uuid = m.uid() if roll < 0.03 else card.uuid
        if 0.03 <= roll < 0.05:
            service = m.rng.choice([s[0] for s in SERVICES if s[0] != call.service_id])
        when = call.received_at + timedelta(minutes=m.rng.randint(1, 600))
        overridden = m.rng.random() < 0.45
        offered = [r.code for r in card.override_reasons or []] or list(REASONS[:1])
        reason = m.rng.choice([*offered, None]) if overridden else None
        if overridden and 0.05 <= roll < 0.07:
            reason = "bogus"
        accepted = [] if overridden else card.suggestion_uuids[: m.rng.randint(0, 2)]
        if not overridden and 0.07 <= roll < 0.09:
            accepted = [*accepted, m.uid()]
        item = FeedbackRecord(
            card_uuid=card_uuid, outcome="overridden" if overridden else "accepted",
            outcome_timestamp=when, accepted_suggestions=accepted,
            override_reason_code=reason, override_reason_system=SYSTEM if reason else None,
            override_reason_display=reason.replace("-", " ").title() if reason else None,
            service_id=service, received_at=when + timedelta(seconds=5))
        items = [item]
        if m.rng.random() < 0.02:  # a client retrying its post: stored once
            items.append(item)
        posts.append((service, items))
        made += len(items)
    return posts


def make_log(calls: int, feedback: int, *, seed: int = 18) -> SyntheticLog:
    maker = _Maker(seed, patients=max(50, calls // 40))
    log = SyntheticLog(calls=[maker.call(n, calls) for n in range(calls)])
    log.posts = _feedback(maker, log.calls, feedback)
    return log


def load(store: AuditStore, log: SyntheticLog, *, batch: int = 5000) -> None:
    """Through the real batch writer (the chain, the card index, the facts), in big batches."""
    items: list[Prepared] = [FactualCall.of(c) for c in log.calls]
    items += [PreparedFeedback.of(service, records) for service, records in log.posts]
    sql = BatchSql(postgres=store.database.is_postgres)
    store.database.ensure_schema()
    for start in range(0, len(items), batch):
        with store.database.writing() as conn:
            write_batch(conn, sql, items[start:start + batch], store.keyring.current)
