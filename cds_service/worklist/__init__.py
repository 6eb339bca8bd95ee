"""The clinic worklist (issue 17): every active ITB pump of a panel with the refill and battery
findings its patient-view cards would carry, for ``itb-cds worklist`` and ``GET /worklist``.

``run`` gathers the panel from a FHIR server (Group/$export where offered, searches otherwise),
``rows`` turns each chart into rows with the rules' own dates, ``formats`` and ``page`` write
them as JSON, CSV, iCalendar or a printable page with a timeline chart.
"""

from cds_service.worklist.rows import BatteryStatus, RefillStatus, WorklistRow
from cds_service.worklist.run import Panel, Worklist, WorklistError

__all__ = ["BatteryStatus", "Panel", "RefillStatus", "Worklist", "WorklistError", "WorklistRow"]
