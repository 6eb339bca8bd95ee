"""Moving a proposed resource (appointment-book's Appointment) to another day: the resource an
update suggestion carries. Whole days only, so the time of day, the offset and the length of
the appointment stay as the scheduler chose them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any


def _instant(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _shifted(text: str, days: int) -> str:
    moment = datetime.fromisoformat(text) + timedelta(days=days)
    out = moment.isoformat()
    return out.replace("+00:00", "Z") if text.endswith("Z") else out


def moved_to(resource: Mapping[str, Any], day: date) -> dict[str, Any] | None:
    """A copy of ``resource`` whose ``start`` falls on ``day`` (UTC, as cards show dates), its
    ``end`` moved by as many days; None when it has no readable start."""
    start = _instant(resource.get("start"))
    if start is None:
        return None
    days = (day - start.astimezone(UTC).date()).days
    out = copy.deepcopy(dict(resource))
    out["start"] = _shifted(out["start"], days)
    if _instant(out.get("end")) is not None:
        out["end"] = _shifted(out["end"], days)
    return out
