"""FHIR datatypes (validated R4B model parts) as the frozen values of ``record.py``.

The models are fhir.resources instances (untyped for mypy), so every accessor here takes ``Any``
and returns a typed value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from cds_service.fhir.record import (
    Coding,
    Concept,
    Dosage,
    Period,
    Quantity,
    Ratio,
    Timing,
)


def when(value: Any) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware datetime (dates and partial dates: midnight
    UTC of their first day; a time without offset: UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if isinstance(value, str):
        day = partial_date(value)
        return datetime.combine(day, time(), tzinfo=UTC) if day else None
    return None


def partial_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        parts = value[:10].split("-")
        try:
            numbers = [int(p) for p in parts] + [1] * (3 - len(parts))
            return date(numbers[0], numbers[1], numbers[2])
        except (ValueError, IndexError):
            return None
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    return None


def coding(c: Any) -> Coding:
    return Coding(system=c.system, code=c.code, display=c.display)


def concept(cc: Any) -> Concept:
    if cc is None:
        return Concept()
    return Concept(codings=tuple(coding(c) for c in cc.coding or ()), text=cc.text)


def maybe_concept(cc: Any) -> Concept | None:
    return None if cc is None else concept(cc)


def concepts(items: Iterable[Any] | None) -> tuple[Concept, ...]:
    return tuple(concept(cc) for cc in items or ())


# The FHIR code words of Condition/AllergyIntolerance clinicalStatus and verificationStatus:
# an EHR that sends only text ("Active") still means one of them.
STATUS_WORDS = frozenset({
    "active", "recurrence", "relapse", "inactive", "remission", "resolved",
    "unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error",
})


def status_code(cc: Any) -> str | None:
    """The code of a status CodeableConcept (clinicalStatus, verificationStatus); a text-only
    status is read when it is one of the FHIR code words (case-insensitive)."""
    if cc is None:
        return None
    for c in cc.coding or ():
        if c.code:
            return str(c.code)
    for text in (cc.text, *(c.display for c in cc.coding or ())):
        word = "-".join(str(text or "").strip().lower().split())
        if word in STATUS_WORDS:
            return word
    return None


def quantity(q: Any) -> Quantity | None:
    if q is None:
        return None
    return Quantity(value=number(q.value), unit=q.unit, code=q.code, system=q.system)


def ratio(r: Any) -> Ratio | None:
    if r is None:
        return None
    return Ratio(numerator=quantity(r.numerator), denominator=quantity(r.denominator))


def ref(reference: Any) -> str | None:
    return None if reference is None else reference.reference


def refs(items: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(r.reference for r in items or () if r is not None and r.reference)


def notes(items: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(n.text for n in items or () if n.text)


def rate_from_ratio(r: Ratio) -> Quantity | None:
    num, den = r.numerator, r.denominator
    if num is None or num.value is None:
        return None
    if den is None:
        return num
    if not den.value:
        return None
    num_unit, den_unit = num.unit or num.code, den.unit or den.code
    per = "/".join(u for u in (num_unit, den_unit) if u) or None
    per_code = "/".join(u for u in (num.code, den.code) if u) or None
    return Quantity(value=num.value / den.value, unit=per, code=per_code, system=num.system)


def timing(t: Any) -> Timing | None:
    if t is None:
        return None
    rep = t.repeat
    if rep is None:
        return Timing(code=maybe_concept(t.code))
    return Timing(
        frequency=rep.frequency,
        frequency_max=rep.frequencyMax,
        period=number(rep.period),
        period_max=number(rep.periodMax),
        period_unit=rep.periodUnit,
        code=maybe_concept(t.code),
        when=tuple(rep.when or ()),
        time_of_day=tuple(str(x) for x in rep.timeOfDay or ()),
    )


def dosage(d: Any) -> Dosage:
    dose = rate = None
    rate_ratio = None
    dose_low = dose_high = None
    first = d.doseAndRate[0] if d.doseAndRate else None
    if first is not None:
        dose = quantity(first.doseQuantity)
        if dose is None and first.doseRange is not None:
            dose_low, dose_high = quantity(first.doseRange.low), quantity(first.doseRange.high)
            if dose_low is not None and dose_low == dose_high:
                dose, dose_low, dose_high = dose_low, None, None
        rate = quantity(first.rateQuantity)
        rate_ratio = ratio(first.rateRatio)
        if rate is None and rate_ratio is not None:
            rate = rate_from_ratio(rate_ratio)
        if rate is None and first.rateRange is not None:
            rate = quantity(first.rateRange.high)
    return Dosage(
        text=d.text,
        route=maybe_concept(d.route),
        timing=timing(d.timing),
        dose=dose,
        rate=rate,
        rate_ratio=rate_ratio,
        as_needed=bool(d.asNeededBoolean) or d.asNeededCodeableConcept is not None,
        method=maybe_concept(d.method),
        dose_low=dose_low,
        dose_high=dose_high,
    )


def administration_dosage(d: Any) -> Dosage:
    rate_ratio = ratio(d.rateRatio)
    rate = quantity(d.rateQuantity)
    if rate is None and rate_ratio is not None:
        rate = rate_from_ratio(rate_ratio)
    return Dosage(
        text=d.text,
        route=maybe_concept(d.route),
        dose=quantity(d.dose),
        rate=rate,
        rate_ratio=rate_ratio,
        method=maybe_concept(d.method),
    )


def period(start: Any = None, end: Any = None) -> Period:
    return Period(start=when(start), end=when(end))


def choice_period(date_time: Any, fhir_period: Any) -> Period:
    if date_time is not None:
        return period(date_time)
    if fhir_period is not None:
        return period(fhir_period.start, fhir_period.end)
    return Period()


def first_of(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def simple_extensions(raw: Mapping[str, Any]) -> tuple[tuple[str, object], ...]:
    out: list[tuple[str, object]] = []
    for ext in raw.get("extension") or ():
        if not isinstance(ext, dict) or not isinstance(ext.get("url"), str):
            continue
        for name, value in ext.items():
            if name.startswith("value") and isinstance(value, str | int | float | bool):
                out.append((ext["url"], value))
                break
    return tuple(out)
