"""Group commit: one writer thread per store writes whatever is queued in one transaction.

Every call used to pay its own transaction, fsync and trip through a 40-thread pool. Now a
caller prepares its item (the record's canonical JSON), queues it and waits; the writer takes
everything waiting (up to ``BATCH_MAX``, in arrival order) and hands it to the store, which
commits it (or spools it) at once, then tells each waiter its own result. A caller therefore
still resumes only once its item is durable, and a burst of N callers costs a few fsyncs
instead of N.

A synchronous caller that finds nothing queued or being written writes on its own thread
(holding the same mutex the writer thread holds): waking a thread and being woken again cost
more than the write itself, and with nothing ahead of it the chain order is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from cds_service.audit.entry import Prepared
from cds_service.audit.models import FeedbackSummary

log = logging.getLogger(__name__)

# One transaction stays short (a few ms) even when a burst queues hundreds of items.
BATCH_MAX = 64

Settle = Callable[[FeedbackSummary | None, BaseException | None], None]
WriteBatch = Callable[[list[Prepared]], list[FeedbackSummary]]


class AuditStoreClosed(RuntimeError):
    """A write after ``close()``: it would never be recorded, so it must not look as if it was."""


@dataclass
class WriterStats:
    """Counted by the writer thread; read them for tests and benchmarks."""

    batches: int = 0  # writes of queued or inline items, one transaction each when the DB is up
    items: int = 0
    largest_batch: int = 0
    inline: int = 0  # of the batches: synchronous callers that found the writer idle


@dataclass(frozen=True, slots=True)
class _Pending:
    item: Prepared
    settle: Settle


def _settle_future(done: Future[FeedbackSummary], result: FeedbackSummary | None,
                   error: BaseException | None) -> None:
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result or FeedbackSummary())


def _settle_asyncio(done: asyncio.Future[FeedbackSummary], result: FeedbackSummary | None,
                    error: BaseException | None) -> None:
    if done.done():  # the waiter was cancelled; its item is written all the same
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result or FeedbackSummary())


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


class GroupWriter:
    def __init__(self, write_batch: WriteBatch, *, batch_max: int = BATCH_MAX,
                 name: str = "itb-audit-writer") -> None:
        self._write_batch = write_batch
        self._batch_max = batch_max
        self._name = name
        self._lock = threading.Lock()  # guards the fields below
        self._idle = threading.Condition(self._lock)  # notified when nothing is in flight
        self._mutex = threading.Lock()  # held while writing: the writer thread or an inline caller
        self._inflight = 0  # submitted and not yet written
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self.stats = WriterStats()
        # A child forked while another thread held a lock would wait for it forever. The hook
        # holds the writer weakly: registered hooks live as long as the process.
        reset = weakref.WeakMethod(self._reset_locks_in_child)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(reset))

    def _reset_locks_in_child(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._mutex = threading.Lock()

    def write(self, item: Prepared) -> FeedbackSummary:
        """Block until the item is committed or spooled; raises what the writer raised."""
        if self._claim_inline():
            try:
                self.stats.inline += 1
                [result] = self._write_counted([item])
            finally:
                self._mutex.release()
            return result
        done: Future[FeedbackSummary] = Future()
        self._submit(item, lambda result, error: _settle_future(done, result, error))
        return done.result()

    async def write_async(self, item: Prepared) -> FeedbackSummary:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[FeedbackSummary] = loop.create_future()

        def settle(result: FeedbackSummary | None, error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits now
                loop.call_soon_threadsafe(_settle_asyncio, done, result, error)

        self._submit(item, settle)
        return await done

    def flush(self) -> None:
        """Block until everything submitted so far (and meanwhile) is written; stay open."""
        with self._lock:
            self._idle.wait_for(lambda: self._inflight == 0 or self._pid != os.getpid())
        with self._mutex:  # an inline write still running on another thread
            pass

    def close(self) -> None:
        """Write everything queued so far, then stop; later writes raise AuditStoreClosed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()
        with self._mutex:  # an inline write still running on another thread
            pass

    def _open_for_writes(self) -> None:
        """With the lock held: refuse after close; start afresh in a forked child."""
        if self._closed:
            raise AuditStoreClosed("the audit store is closed; the record was not written")
        if self._pid != os.getpid():
            # A forked child inherits the queue, the counters and maybe a held mutex, but not
            # the thread that would have served them; its parent writes those items.
            self._pid = os.getpid()
            self._queue = queue.SimpleQueue()
            self._mutex = threading.Lock()
            self._inflight = 0
            self._idle = threading.Condition(self._lock)
            self._thread = None

    def _claim_inline(self) -> bool:
        with self._lock:
            self._open_for_writes()
            return self._inflight == 0 and self._mutex.acquire(blocking=False)

    def _submit(self, item: Prepared, settle: Settle) -> None:
        with self._lock:
            self._open_for_writes()
            if self._thread is None:
                # Started on first use: a store that only reads never starts one.
                self._thread = threading.Thread(target=self._run, args=(self._queue,),
                                                name=self._name, daemon=True)
                self._thread.start()
            self._inflight += 1
            self._queue.put(_Pending(item, settle))

    def _run(self, pending: queue.SimpleQueue[_Pending | None]) -> None:
        while True:
            first = pending.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._batch_max:
                try:
                    more = pending.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _write_counted(self, items: list[Prepared]) -> list[FeedbackSummary]:
        # Called with the mutex held, so the counters have one writer at a time.
        self.stats.batches += 1
        self.stats.items += len(items)
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))
        return self._write_batch(items)

    def _commit(self, batch: list[_Pending]) -> None:
        """Write the batch and tell every waiter; nothing here may end the writer thread."""
        outcomes: list[tuple[FeedbackSummary | None, BaseException | None]]
        try:
            with self._mutex:
                results = self._write_counted([p.item for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            outcomes = [(result, None) for result in results]
        except BaseException as exc:  # every waiter must hear of it, or it waits forever
            outcomes = [(None, exc)] * len(batch)
        self._written(len(batch))
        for p, (result, error) in zip(batch, outcomes, strict=True):
            try:
                p.settle(result, error)
            except Exception:
                log.exception("could not hand an audit write's result to its caller")

    def _written(self, count: int) -> None:
        with self._lock:
            self._inflight -= count
            if self._inflight == 0:
                self._idle.notify_all()
