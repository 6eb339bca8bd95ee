"""Group commit: what is queued together is written together, and nothing else changes.

Each waiter still resumes only once its own item is committed or spooled; chain order is
arrival order; duplicates in one batch are still duplicates; an outage spools the batch in
order; a refused item costs only itself; close() writes what was queued.

To make items queue up deterministically a test holds the chain's writer lock
(``store.chain_lock()``) or the spool lock while it submits: the writer thread takes what has
arrived, then waits on that lock while the rest queue behind it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cds_service.audit.models import CallRecord, FeedbackRecord, FeedbackSummary
from cds_service.audit.store import AuditStore, AuditStoreClosed
from cds_service.audit.writer import BATCH_MAX
from cds_service.config import Settings
from tests.audit.test_audit_spool import database_down

MakeCall = Callable[..., CallRecord]


def _order(store: AuditStore) -> list[str]:
    return [rec.hook_instance for _, rec in store.calls()]


def _spooled(settings: Settings) -> list[str]:
    lines = settings.spool_path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["record"]["hook_instance"] for line in lines if line]


async def _queued_behind(lock: Callable[[], AbstractContextManager[object]],
                         writes: list[Coroutine[Any, Any, object]]) -> list[object]:
    """Start every write while ``lock`` is held, so they queue; release it; wait for all."""
    with lock():
        tasks = [asyncio.ensure_future(w) for w in writes]
        # One turn of the loop: every task runs to its first await, i.e. has queued its item.
        await asyncio.sleep(0)
        assert not any(t.done() for t in tasks), "a write finished while the lock was held"
    return list(await asyncio.gather(*tasks))


def test_concurrent_async_and_thread_producers_give_exactly_one_entry_each(
        store: AuditStore, make_call: MakeCall) -> None:
    calls = [make_call(n) for n in range(160)]
    by_thread, by_task = calls[:80], calls[80:]

    async def main() -> None:
        with ThreadPoolExecutor(8) as pool:
            loop = asyncio.get_running_loop()
            # Every record twice, once from each side: retries racing each other.
            threaded = [loop.run_in_executor(pool, store.record_call, c)
                        for c in by_thread + by_task]
            tasked = [store.record_call_async(c) for c in by_task + by_thread]
            await asyncio.gather(*threaded, *tasked)

    asyncio.run(main())

    assert sorted(_order(store)) == sorted(c.hook_instance for c in calls)
    result = store.verify()
    assert result.ok, result.reason
    assert result.checked == len(calls)


def test_a_synchronous_caller_with_nothing_queued_writes_on_its_own_thread(
        store: AuditStore, make_call: MakeCall) -> None:
    calls = [make_call(n) for n in range(5)]
    for call in calls:
        store.record_call(call)

    assert (store.stats.inline, store.stats.batches, store.stats.items) == (5, 5, 5)
    assert _order(store) == [c.hook_instance for c in calls]


def test_writes_queued_together_share_one_transaction(store: AuditStore,
                                                     make_call: MakeCall) -> None:
    calls = [make_call(n) for n in range(150)]

    asyncio.run(_queued_behind(store.chain_lock,
                               [store.record_call_async(c) for c in calls]))

    assert _order(store) == [c.hook_instance for c in calls]  # chain order is arrival order
    assert store.verify().ok
    # At most: what the writer took before the lock stopped it, then full batches.
    assert store.stats.items == len(calls)
    assert store.stats.batches <= 1 + math.ceil((len(calls) - 1) / BATCH_MAX)
    assert store.stats.largest_batch == BATCH_MAX


def test_duplicates_in_one_batch_are_counted_not_stored_and_feedback_joins_its_batch_call(
        store: AuditStore, make_call: MakeCall) -> None:
    first, call, other = make_call(0), make_call(1), make_call(2)
    card = call.cards[0].uuid
    fb = FeedbackRecord(card_uuid=card, outcome="accepted", outcome_timestamp=call.answered_at)

    results = asyncio.run(_queued_behind(store.chain_lock, [
        store.record_call_async(first),
        store.record_call_async(call),
        store.record_call_async(call.model_copy(update={"http_status": 500})),
        store.record_feedback_async("itb-patient-view", [fb]),
        store.record_feedback_async("itb-patient-view", [fb, fb]),
        store.record_call_async(other),
    ]))

    feedback_summaries = [r for r in results if isinstance(r, FeedbackSummary)]
    assert [(s.stored, s.duplicates, s.unknown_cards) for s in feedback_summaries] == [
        (1, 0, 0), (0, 2, 0)]
    assert _order(store) == [first.hook_instance, call.hook_instance, other.hook_instance]
    [joined] = store.stored_feedback()
    assert joined.hook_instance == call.hook_instance and not joined.unknown_card
    result = store.verify()
    assert result.ok and result.checked == 4


def test_an_outage_mid_run_spools_every_batch_in_order_and_replays_it(
        store: AuditStore, settings: Settings, make_call: MakeCall, backend: str,
        request: pytest.FixtureRequest) -> None:
    calls = [make_call(n) for n in range(40)]
    before, during, after = calls[:5], calls[5:35], calls[35:]
    for call in before:
        store.record_call(call)

    with database_down(backend, settings, request):
        results = asyncio.run(_queued_behind(store.spool.locked,
                                             [store.record_call_async(c) for c in during]))
        assert results == [None] * len(during)
        assert _spooled(settings) == [c.hook_instance for c in during]
        assert store.stats.largest_batch > 1  # the spool took a whole batch at once

    asyncio.run(_queued_behind(store.chain_lock, [store.record_call_async(c) for c in after]))

    assert settings.spool_path.stat().st_size == 0
    assert _order(store) == [c.hook_instance for c in calls]
    result = store.verify()
    assert result.ok, result.reason
    assert result.checked == len(calls)


@contextmanager
def installed(store: AuditStore, create: list[str], drop: list[str]) -> Iterator[None]:
    """Run ``create`` statements, and ``drop`` ones afterwards whatever happened."""
    with store.engine.begin() as conn:
        for statement in create:
            conn.execute(text(statement))
    try:
        yield
    finally:
        with store.engine.begin() as conn:
            for statement in drop:
                conn.execute(text(statement))


@contextmanager
def refusing(store: AuditStore, backend: str, key: str) -> Iterator[None]:
    """A trigger that makes the database refuse one entry (not an outage: a constraint)."""
    if backend == "sqlite":
        create = [f"CREATE TRIGGER refuse_one BEFORE INSERT ON audit_entry "
                  f"WHEN NEW.entry_key = '{key}' BEGIN SELECT RAISE(ABORT, 'refused'); END"]
        drop = ["DROP TRIGGER refuse_one"]
    else:
        create = [
            "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.entry_key = '{key}' THEN RAISE EXCEPTION 'refused' "
            "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_one BEFORE INSERT ON audit_entry FOR EACH ROW "
            "EXECUTE FUNCTION refuse_one()",
        ]
        drop = ["DROP TRIGGER refuse_one ON audit_entry", "DROP FUNCTION refuse_one()"]
    with installed(store, create, drop):
        yield


def test_a_refused_item_does_not_lose_its_batch_neighbours(
        store: AuditStore, settings: Settings, make_call: MakeCall, backend: str,
        caplog: pytest.LogCaptureFixture) -> None:
    calls = [make_call(n) for n in range(8)]
    poison = make_call(99, hook_instance="poison")
    arriving = [*calls[:4], poison, *calls[4:]]

    with refusing(store, backend, "poison"):
        asyncio.run(_queued_behind(store.chain_lock,
                                   [store.record_call_async(c) for c in arriving]))

        assert _order(store) == [c.hook_instance for c in calls]
        assert _spooled(settings) == ["poison"]  # kept, as a refused record always was
        assert "refused" in caplog.text

        late = make_call(100)
        store.record_call(late)  # replays the spool first: still refused, set aside

    assert _order(store) == [c.hook_instance for c in [*calls, late]]
    assert settings.spool_path.stat().st_size == 0
    rejected = Path(f"{settings.spool_path}.rejected").read_text(encoding="utf-8")
    assert '"hook_instance":"poison"' in rejected
    assert store.verify().ok


def test_close_writes_everything_queued_then_refuses_new_writes(
        settings: Settings, make_call: MakeCall) -> None:
    store = AuditStore(settings)
    store.migrate()
    calls = [make_call(n) for n in range(120)]

    async def main() -> list[object]:
        tasks = [asyncio.ensure_future(store.record_call_async(c)) for c in calls]
        await asyncio.sleep(0)  # every task has queued its item
        await store.aclose()
        with pytest.raises(AuditStoreClosed):
            await store.record_call_async(make_call(500))
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == [None] * len(calls)
    with pytest.raises(AuditStoreClosed):
        store.record_call(make_call(501))
    with pytest.raises(AuditStoreClosed):
        store.record_feedback("itb-patient-view", [])

    reopened = AuditStore(settings)
    assert _order(reopened) == [c.hook_instance for c in calls]
    assert reopened.verify().ok
    reopened.close()


@contextmanager
def failing_operationally(store: AuditStore, backend: str) -> Iterator[None]:
    """Every insert into the chain fails the way a database in trouble fails (not a refusal)."""
    if backend == "sqlite":
        # Resolved when the INSERT is prepared: "no such function" is an OperationalError.
        create = ["CREATE TRIGGER fail_all BEFORE INSERT ON audit_entry "
                  "BEGIN SELECT no_such_function(); END"]
        drop = ["DROP TRIGGER fail_all"]
    else:
        create = [
            "CREATE FUNCTION fail_all() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'shutting down' USING ERRCODE = 'admin_shutdown'; END $$ "
            "LANGUAGE plpgsql",
            "CREATE TRIGGER fail_all BEFORE INSERT ON audit_entry FOR EACH ROW "
            "EXECUTE FUNCTION fail_all()",
        ]
        drop = ["DROP TRIGGER fail_all ON audit_entry", "DROP FUNCTION fail_all()"]
    with installed(store, create, drop):
        yield


def test_an_operational_error_inside_the_batch_spools_the_batch_whole_and_in_order(
        store: AuditStore, settings: Settings, make_call: MakeCall, backend: str,
        caplog: pytest.LogCaptureFixture) -> None:
    calls = [make_call(n) for n in range(10)]

    with failing_operationally(store, backend):
        asyncio.run(_queued_behind(store.chain_lock,
                                   [store.record_call_async(c) for c in calls[:9]]))
        assert _spooled(settings) == [c.hook_instance for c in calls[:9]]
        assert _order(store) == []
        # Seen as an outage (driver error translated), not as nine refused records.
        assert "unavailable" in caplog.text and "refused" not in caplog.text

    store.record_call(calls[9])

    assert _order(store) == [c.hook_instance for c in calls]
    assert settings.spool_path.stat().st_size == 0
    assert store.verify().ok


def test_drain_writes_everything_queued_and_the_store_stays_usable(
        store: AuditStore, make_call: MakeCall) -> None:
    """What an app's shutdown calls: its Runtime may serve again when the app restarts."""
    calls = [make_call(n) for n in range(60)]

    async def main() -> None:
        tasks = [asyncio.ensure_future(store.record_call_async(c)) for c in calls[:50]]
        await asyncio.sleep(0)  # every task has queued its item
        await store.adrain()
        assert len(_order(store)) == 50
        await asyncio.gather(*tasks)
        await asyncio.gather(*(store.record_call_async(c) for c in calls[50:]))

    asyncio.run(main())

    assert _order(store) == [c.hook_instance for c in calls]
    assert store.verify().ok


def test_a_writer_that_cannot_pair_results_with_waiters_fails_them_all_and_keeps_running(
) -> None:
    from cds_service.audit.writer import GroupWriter

    calls: list[int] = []

    def short_by_one(items: list[Any]) -> list[FeedbackSummary]:
        calls.append(len(items))
        return [FeedbackSummary(stored=1)] * (len(items) - 1 if len(calls) == 1 else len(items))

    writer = GroupWriter(short_by_one)

    async def two() -> list[Any]:
        return await asyncio.gather(writer.write_async(object()),  # type: ignore[arg-type]
                                    return_exceptions=True)

    [first] = asyncio.run(two())
    assert isinstance(first, RuntimeError) and "results for a batch" in str(first)
    assert asyncio.run(writer.write_async(object())).stored == 1  # type: ignore[arg-type]
    writer.close()


def test_a_child_forked_while_a_writer_lock_is_held_can_still_write() -> None:
    import os
    import threading

    from cds_service.audit.writer import GroupWriter

    writer = GroupWriter(lambda items: [FeedbackSummary(stored=1) for _ in items])
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer._lock, writer._mutex:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    pid = os.fork()
    if pid == 0:  # the child: the holding thread does not exist here
        try:
            code = 0 if writer.write(object()).stored == 1 else 1  # type: ignore[arg-type]
        finally:
            os._exit(locals().get("code", 2))
    release.set()
    holder.join()
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child deadlocked on an inherited writer lock")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    writer.close()
