"""One worklist run: the panel from the FHIR server, each chart through the rules, the rows in
urgency order. The CLI and ``GET /worklist`` both call ``Worklist.run``."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cds_service.config import Settings
from cds_service.engine import Engine
from cds_service.fhir.bulk import BulkUnavailable
from cds_service.fhir.prefetch import Resolved, build_record, required_missing
from cds_service.worklist.rows import WorklistRow, rows_for, sort_rows, unreadable
from cds_service.worklist.source import Source, SourceError, patient_view

log = logging.getLogger("itb_cds.worklist")

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_SERVER = re.compile(r"^https?://\S+$")
# done, total (None while the total is not known: an export streams its patients)
Progress = Callable[[int, int | None], None]


class WorklistError(Exception):
    """The worklist cannot be made (the message is the whole answer, safe to show)."""


@dataclass(frozen=True, slots=True)
class Panel:
    rows: list[WorklistRow]
    at: datetime
    population: int  # the group's members, or the patients owning a pump device
    charts: int  # charts read and evaluated
    unreadable: int  # charts that could not be read (listed as rows with a gap)
    source: str  # how the panel was read, in words
    seconds: float


@dataclass
class Worklist:
    engine: Engine
    settings: Settings

    async def run(self, fhir_server: str, token: str | None, group: str | None,
                  now: datetime, progress: Progress | None = None) -> Panel:
        if not _SERVER.match(fhir_server):
            raise WorklistError("the FHIR server must be an http(s) URL")
        if group is not None and not _FHIR_ID.match(group):
            raise WorklistError("the group must be a FHIR id")
        started = time.monotonic()
        source = Source(self.engine.fhir, self.settings, self.engine.terminology,
                        self.engine.screen, fhir_server, token)
        try:
            panel = await self._run(source, group, now, progress or (lambda _d, _t: None))
        except SourceError as exc:
            raise WorklistError(f"the panel could not be read: {exc}") from None
        finally:
            await source.aclose()
        rows, population, charts, how = panel
        result = Panel(sort_rows(rows), now, population, charts,
                       sum(1 for r in rows if r.device is None), how,
                       round(time.monotonic() - started, 3))
        log.info("worklist: %d patients, %d charts read, %d pump rows, %d unreadable, %.1f s "
                 "(%s)", result.population, result.charts, len(result.rows) - result.unreadable,
                 result.unreadable, result.seconds, how)
        return result

    async def _run(self, source: Source, group: str | None, now: datetime, progress: Progress
                   ) -> tuple[list[WorklistRow], int, int, str]:
        if group is None:
            owners = await source.pump_owners()
            self._check_size(len(owners))
            rows = await self._searched(source, owners, now, progress)
            return rows, len(owners), len(owners), "patients with an ITB pump device (search)"
        members = await source.members(group)
        self._check_size(len(members))
        if self.settings.worklist.bulk_export and await source.group_export_offered():
            try:
                rows, charts = await self._exported(source, group, now, progress)
                return rows, len(members), charts, f"Group/{group} (bulk export)"
            except BulkUnavailable as exc:
                log.warning("worklist: bulk export not usable (%s): plain searches", exc)
        candidates = await source.screen(members)
        rows = await self._searched(source, candidates, now, progress)
        return rows, len(members), len(candidates), f"Group/{group} (searches)"

    def _check_size(self, patients: int) -> None:
        limit = self.settings.worklist.max_patients
        if patients > limit:
            raise WorklistError(f"the panel has {patients} patients, more than the "
                                f"worklist.max_patients limit of {limit}")

    async def _searched(self, source: Source, patients: Sequence[str], now: datetime,
                        progress: Progress) -> list[WorklistRow]:
        """Each chart fetched as the service fetches a call's gaps, a few at a time."""
        rows: list[WorklistRow] = []
        pending = iter(patients)
        done = 0

        async def worker() -> None:
            nonlocal done
            for patient_id in pending:  # one iterator shared by the workers
                rows.extend(self._evaluate(patient_id, await source.chart(patient_id), now))
                done += 1
                progress(done, len(patients))

        workers = min(self.settings.worklist.concurrency, len(patients))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return rows

    async def _exported(self, source: Source, group: str, now: datetime, progress: Progress
                        ) -> tuple[list[WorklistRow], int]:
        rows: list[WorklistRow] = []
        charts = 0
        async for patient_id, resolved in source.exported_charts(group):
            rows.extend(self._evaluate(patient_id, resolved, now))
            charts += 1
            progress(charts, None)
        return rows, charts

    def _evaluate(self, patient_id: str, resolved: Resolved, now: datetime
                  ) -> list[WorklistRow]:
        missing = required_missing(resolved, patient_view().required_keys)
        if missing:
            failures = {f.key: f.reason for f in resolved.failed}
            return [unreadable(patient_id, [f"{k}: {failures.get(k, 'not obtained')}"
                                            for k in missing])]
        engine = self.engine
        record = build_record(resolved, None, engine.terminology.observation_filter,
                              engine.screen, engine.validation_memo)
        return rows_for(patient_id, record, now, self.settings, engine.terminology,
                        engine.catalogue)
