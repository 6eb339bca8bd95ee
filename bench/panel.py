"""A clinic panel for the worklist: N patients, ~15 % with an ITB pump in every refill and
battery tier, a few traps (a morphine pain pump, a removed pump, an insulin pump), the rest
Synthea-like noise (vital signs, encounters, claims, unrelated problems and prescriptions).

``plan(n)`` says who is who and what the worklist must say about each pump (worked out from
the clinical contract's arithmetic, not from the code): cheap, so a worklist process can check
its answer without building the panel. ``resources(n)`` builds the panel's FHIR resources,
ids unique across patients, with the fixture builders of scripts/build_fixtures.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.charts import _fixture_builders, _pad_to
from cds_service.sandbox.fixture_library import served_resources

ANCHOR = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)
GROUP_ID = "panel"
PUMP_SHARE = 7  # every 7th patient has a pump (~15 %)
NOISE = (40, 90)  # resources per patient, padded between these

# Standard pump: alarm 90 days after the last refill, empty after 100 (build_fixtures).
# (last refill days ago, booked in days or None, dose on file, expected refill outcome)
REFILL_TIERS: tuple[tuple[int, int | None, bool, str | None], ...] = (
    (30, None, True, None),  # due in 60 days: no card
    (80, None, True, "notice"),  # due in 10
    (86, None, True, "due-soon"),  # due in 4
    (94, None, True, "overdue"),  # due 4 days ago, empty in 6
    (104, None, True, "empty"),  # empty 4 days ago
    (85, 3, True, "booked"),  # due in 5, booked in 3
    (40, None, False, "missing-data"),  # no dose anywhere
)
# (model, implant: (years, plus days) before the anchor, expected battery outcome; "none":
# a constant-flow pump has no battery)
BATTERY_TIERS: tuple[tuple[str, tuple[int, int], str | None], ...] = (
    ("synchromed-20", (2, 40), None),
    ("synchromed-20", (7, 270), "notice"),  # end of service in ~9 months
    ("synchromed-20", (7, 120), "plan"),  # in ~4 months
    ("synchromed-20", (7, -20), "end-of-service"),  # 20 days ago
    ("prometra", (8, 0), None),  # 10-year life
    ("codman", (9, 0), "none"),
)
TRAPS = ("morphine-pump", "removed-pump", "insulin-pump")

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Planned:
    index: int
    patient_id: str
    kind: str  # "pump", "noise" or one of TRAPS
    refill: tuple[int, int | None, bool, str | None] | None = None
    battery: tuple[str, tuple[int, int], str | None] | None = None

    @property
    def expected(self) -> tuple[str | None, str | None]:
        """(refill outcome, battery outcome): None no card, "none" no battery."""
        assert self.refill is not None and self.battery is not None
        return self.refill[3], self.battery[2]


def plan(n: int) -> list[Planned]:
    out = []
    pumps = traps = 0
    for i in range(n):
        pid = f"pt-{i:05d}"
        if i % PUMP_SHARE == 3:
            refill = REFILL_TIERS[pumps % len(REFILL_TIERS)]
            # 7 and 6 share no factor: every pairing of a refill and a battery tier occurs.
            battery = BATTERY_TIERS[pumps % len(BATTERY_TIERS)]
            out.append(Planned(i, pid, "pump", refill, battery))
            pumps += 1
        elif i % 41 == 20:
            out.append(Planned(i, pid, TRAPS[traps % len(TRAPS)]))
            traps += 1
        else:
            out.append(Planned(i, pid, "noise"))
    return out


def _chart(p: Planned) -> Any:
    fx = _fixture_builders()
    sid = p.patient_id.removeprefix("pt-")
    if p.kind == "pump":
        assert p.refill is not None and p.battery is not None
        days, booked, dose, _ = p.refill
        model, (years, plus), _ = p.battery
        c = fx.pump_chart(sid, ANCHOR, age=20 + p.index % 60)
        implant_code = ([fx.IMPLANT_NONPROGRAMMABLE, fx.IMPLANT_LOCAL] if model == "codman"
                        else None)
        dev = c.pump(model=model, implant=fx.years_before(ANCHOR, years, plus),
                     implant_code=implant_code)
        c.refill(-days, device=dev)
        if dose:
            c.itb_order(200)
        c.oral("baclofen10", 10, 3, text="Backup: 10 mg three times a day if the pump fails")
        if booked is not None:
            c.appointment(fx.REFILL_BOOKING, booked)
        return c
    c = fx.chart(sid, ANCHOR, age=18 + p.index % 70, gender=("female", "male")[p.index % 2])
    if p.kind == "morphine-pump":
        dev = c.pump(implant=fx.years_before(ANCHOR, 2, 40))
        c.refill(-94, device=dev, concentration=25000)
        c.add("medicationRequests", {
            "resourceType": "MedicationRequest", "id": c.new_id("mr-it"), "status": "active",
            "intent": "order", "subject": c.subject,
            "medicationCodeableConcept": fx.concept(text="Morphine 25 mg/mL intrathecal"),
            "dosageInstruction": [{"route": fx.INTRATHECAL_ROUTE}]})
    elif p.kind == "removed-pump":
        dev = c.pump(implant=fx.years_before(ANCHOR, 5, 0), status="inactive")
        c.procedure(fx.concept(*fx.REMOVAL, text="Intrathecal pump removal"), -200, device=dev)
    elif p.kind == "insulin-pump":
        c.add("devices", {"resourceType": "Device", "id": c.new_id("dev"), "status": "active",
                          "type": fx.concept(text="Insulin pump"), "patient": c.subject,
                          "deviceName": [{"name": "MiniMed 780G", "type": "model-name"}]})
    return c


def chart_resources(p: Planned) -> list[Json]:
    """One patient's resources, ids unique in the panel."""
    c = _chart(p)
    low, high = NOISE
    _pad_to(_fixture_builders(), c, low + (p.index * 37) % (high - low))
    everything = [c.patient(), *(r for rs in c.entries.values() for r in rs),
                  *(r for rs in c.included.values() for r in rs)]
    return served_resources(p.patient_id, {"entry": [{"resource": r} for r in everything]})


def resources(n: int) -> Iterator[Json]:
    """Every resource of the panel, then the Group of all its patients."""
    planned = plan(n)
    for p in planned:
        yield from chart_resources(p)
    yield {"resourceType": "Group", "id": GROUP_ID, "type": "person", "actual": True,
           "name": f"Synthetic ITB clinic panel ({n} patients)", "quantity": n,
           "member": [{"entity": {"reference": f"Patient/{p.patient_id}"}} for p in planned]}
