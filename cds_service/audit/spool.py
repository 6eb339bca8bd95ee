"""The spool: an append-only, fsync'd JSON-lines file for records the database could not take.

One ``flock`` on a sidecar lock file serialises appends and replays across threads and worker
processes (each ``open`` gets its own lock, so threads of one process exclude each other too).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from cds_service.audit import filelock
from cds_service.audit.chain import canonical_json
from cds_service.audit.filemode import restrict_mode
from cds_service.audit.models import CallRecord, FeedbackRecord


class SpooledCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = "call"
    record: CallRecord


class SpooledFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = "feedback"
    service_id: str
    records: list[FeedbackRecord]


SpoolItem = SpooledCall | SpooledFeedback


def _parse(line: str) -> SpoolItem:
    raw = json.loads(line)
    if raw.get("kind") == "feedback":
        return SpooledFeedback.model_validate(raw)
    return SpooledCall.model_validate(raw)


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.rejected_path = path.with_name(path.name + ".rejected")
        self._lock_path = path.with_name(path.name + ".lock")
        # Spooled records are audit records: readable by the service's user only, also when
        # an earlier version left them with the umask's mode.
        for existing in (self.path, self.rejected_path):
            restrict_mode(existing)

    def has_items(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def count(self) -> int:
        """Items waiting for the database (lines; a torn last line counts too)."""
        return _count_lines(self.path)

    def rejected_count(self) -> int:
        """Items the database refused, kept in the ``.rejected`` file for a human."""
        return _count_lines(self.rejected_path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.exclusive(self._lock_path):
            yield

    def append(self, item: SpoolItem) -> None:
        """Durable before it returns. Call with the lock held."""
        self.append_lines([canonical_json(item.model_dump(mode="json"))])

    def append_lines(self, lines: list[str]) -> None:
        """Canonical item lines, in order, with one fsync. Call with the lock held."""
        if not lines:
            return
        _append_line(self.path, "\n".join(lines))

    def replay(self, write: Callable[[SpoolItem], object], is_outage: Callable[[Exception], bool]
               ) -> int:
        """Hand every spooled item, in order, to ``write``; truncate what was written.

        An outage stops the replay and keeps the rest for next time. An item the database
        refuses for another reason goes to the ``.rejected`` file so it cannot block the
        spool forever. Call with the lock held. Returns how many items were written.
        """
        if not self.has_items():
            return 0
        lines = self.path.read_text(encoding="utf-8").splitlines()
        done = 0
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                item = _parse(line)
            except ValueError:
                # A torn last line from a crash mid-append: keep it for a human, move on.
                _append_line(self.rejected_path, line)
                continue
            try:
                write(item)
            except Exception as exc:
                if is_outage(exc):
                    self._keep(lines[index:])
                    return done
                _append_line(self.rejected_path, line)
                continue
            done += 1
        self._keep([])
        return done

    def _keep(self, lines: list[str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        # 0600 from the start: the replacement becomes the spool (open() would use the umask).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # an old .tmp left by a crash keeps its mode otherwise
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except FileNotFoundError:
        return 0


def _append_line(path: Path, line: str) -> None:
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        data = memoryview((line + "\n").encode("utf-8"))
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
