"""Properties over arbitrary well-typed charts: rules never raise; dates move the right way."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from cds_service.config import Settings
from cds_service.fhir.record import (
    AllergyFact,
    AppointmentFact,
    Coding,
    Concept,
    ConditionFact,
    DeviceFact,
    Dosage,
    MedicationFact,
    ObservationFact,
    PatientInfo,
    PatientRecord,
    Period,
    ProcedureFact,
    Quantity,
    ServiceRequestFact,
    Timing,
)
from cds_service.rules import evaluate
from cds_service.rules.battery import end_of_service
from cds_service.rules.refill import refill_dates
from cds_service.terminology import Terminology
from tests.rules.charts import CPT, ICD10, LOCAL, PATIENT_VIEW, RXNORM, SNOMED

SETTINGS = Settings()
TERMS = Terminology.load(SETTINGS)
NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)

moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1),
                       timezones=st.just(UTC))
maybe_moment = st.none() | moments
codes = st.sampled_from([
    (SNOMED, "128188000"), (ICD10, "G35.A"), (SNOMED, "127295002"), (SNOMED, "15802004"),
    (RXNORM, "1292"), (RXNORM, "57258"), (RXNORM, "3322"), (RXNORM, "1666613"),
    (CPT, "62362"), (CPT, "62361"), (CPT, "62365"), (CPT, "95990"), (CPT, "62323"),
    (LOCAL, "itb-screening-trial"), (LOCAL, "pump-reservoir-volume"),
    (LOCAL, "pump-drug-concentration"), (LOCAL, "pump-daily-dose"), (LOCAL, "pump-eri"),
    (LOCAL, "modified-ashworth-scale"), (LOCAL, "itb-trial-response"),
    (LOCAL, "pump-low-reservoir-alarm-date"), (LOCAL, "penn-spasm-frequency"),
    (None, None), ("urn:x", "1"),
])
texts = st.none() | st.sampled_from([
    "baclofen", "intrathecal baclofen", "SynchroMed II 8637-40", "drowsiness", "ineffective",
    "spastic diplegia", "pump refill", "diazepam", "", "1+", "positive", "oral",
])
concepts = st.builds(lambda c, t: Concept((Coding(*c),) if c[0] else (), t), codes, texts)
quantities = st.builds(Quantity, st.none() | st.floats(-10, 1e5, allow_nan=False),
                       st.sampled_from([None, "mg", "mcg", "mL", "mcg/day", "mg/h", "tablet",
                                        "mcg/mL", "h"]))
statuses = st.sampled_from([None, "active", "stopped", "completed", "entered-in-error",
                            "on-hold", "inactive", "draft", "booked"])
timings = st.builds(Timing, frequency=st.none() | st.integers(0, 6),
                    period=st.none() | st.floats(0, 48, allow_nan=False),
                    period_unit=st.sampled_from([None, "h", "d", "wk", "x"]),
                    code=st.none() | st.builds(lambda c: Concept((Coding(None, c),)),
                                               st.sampled_from(["BID", "TID", "Q6H", "?"])))
dosages = st.builds(Dosage, route=st.none() | concepts, timing=st.none() | timings,
                    dose=st.none() | quantities, rate=st.none() | quantities,
                    as_needed=st.booleans(), text=texts)
ids = st.integers(1, 5).map(str)
values = st.none() | quantities | concepts | st.booleans() | moments | st.integers(-1, 5)

records = st.builds(
    PatientRecord,
    patient=st.none() | st.builds(PatientInfo, st.just("Patient/p"),
                                  st.none() | st.dates(date(1930, 1, 1), date(2026, 1, 1))),
    conditions=st.lists(st.builds(ConditionFact, ids.map("Condition/{}".format), concepts,
                                  st.sampled_from([None, "active", "inactive"]),
                                  st.sampled_from([None, "confirmed", "refuted"]),
                                  maybe_moment), max_size=3).map(tuple),
    medications=st.lists(st.builds(
        MedicationFact, ids.map("MedicationRequest/{}".format),
        st.sampled_from(["MedicationRequest", "MedicationStatement",
                         "MedicationAdministration"]),
        statuses, concepts, status_reasons=st.lists(concepts, max_size=1).map(tuple),
        dosages=st.lists(dosages, max_size=2).map(tuple),
        effective=st.builds(Period, maybe_moment, maybe_moment),
        reason_refs=st.lists(ids.map("Condition/{}".format), max_size=1).map(tuple),
        draft=st.booleans()), max_size=4).map(tuple),
    allergies=st.lists(st.builds(AllergyFact, ids.map("AllergyIntolerance/{}".format), concepts,
                                 st.sampled_from([None, "allergy", "intolerance"]),
                                 st.sampled_from([None, "high", "low"])), max_size=2).map(tuple),
    procedures=st.lists(st.builds(ProcedureFact, ids.map("Procedure/{}".format), concepts,
                                  statuses, maybe_moment,
                                  focal_devices=st.lists(ids.map("Device/{}".format),
                                                         max_size=1).map(tuple),
                                  notes=st.lists(texts.map(lambda t: t or ""),
                                                 max_size=1).map(tuple)),
                        max_size=4).map(tuple),
    observations=st.lists(st.builds(ObservationFact, ids.map("Observation/{}".format), concepts,
                                    statuses, maybe_moment, values,
                                    body_site=st.none() | concepts,
                                    part_of=st.lists(ids.map("Procedure/{}".format),
                                                     max_size=1).map(tuple)),
                          max_size=6).map(tuple),
    devices=st.lists(st.builds(DeviceFact, ids.map("Device/{}".format), statuses, concepts,
                               st.lists(texts.map(lambda t: t or ""), max_size=1).map(tuple),
                               st.none() | st.sampled_from(["8637-20", "8637-40", "x"])),
                     max_size=2).map(tuple),
    service_requests=st.lists(st.builds(ServiceRequestFact,
                                        ids.map("ServiceRequest/{}".format), statuses,
                                        st.none() | st.just("order"), concepts, maybe_moment),
                              max_size=2).map(tuple),
    appointments=st.lists(st.builds(AppointmentFact, ids.map("Appointment/{}".format),
                                    statuses, maybe_moment,
                                    st.lists(concepts, max_size=1).map(tuple)),
                          max_size=2).map(tuple),
)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records, st.sampled_from([PATIENT_VIEW, ("candidacy-on-order",)]))
def test_rules_never_raise(record: PatientRecord, entries: tuple[str, ...]) -> None:
    for finding in evaluate(entries, record, NOW, SETTINGS, TERMS):
        assert finding.rule.startswith("itb-")


@given(moments, st.floats(1, 40), st.floats(100, 2000), st.floats(10, 1500),
       st.floats(1, 1500), st.floats(0, 5))
def test_a_higher_daily_dose_never_makes_a_refill_due_later(
        last: datetime, volume: float, conc: float, dose: float, more: float, reserve: float
) -> None:
    lower = refill_dates(last, volume, conc, dose, reserve, 180)
    higher = refill_dates(last, volume, conc, dose + more, reserve, 180)
    assert higher.due <= lower.due and higher.empty <= lower.empty


@given(moments, st.integers(0, 4000), st.sampled_from([7.0, 10.0]), st.none() | moments)
def test_a_later_implant_never_makes_end_of_service_earlier(
        implanted: datetime, days_later: int, life: float, eri: datetime | None) -> None:
    later = implanted + timedelta(days=days_later)
    assert end_of_service(later, life, eri, 90) >= end_of_service(implanted, life, eri, 90)
