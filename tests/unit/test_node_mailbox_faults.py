"""The runtime over a failing mailbox database, and stopping at the worst moment:
a request the mailbox could not take is refused (UNAVAILABLE, the caller retries),
an ack that failed is tried again, and rows handed out as the scheduler stops go
back to the queue uncounted."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from actr.errors import ErrorCode
from actr.mailbox import Mailbox, MailboxLimits, MailboxRecord
from examples.echo import Echo
from examples.echo_pb2 import SayReply
from tests.unit.node_harness import Harness


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await Harness.open(tmp_path, Echo())
    yield h
    await h.close()


def capture_acks(box: Mailbox) -> asyncio.Queue[asyncio.Future[None]]:
    """Each ack's future, as it is submitted."""
    acks: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
    original = box.ack_nowait

    def ack_nowait(*args: Any, **kwargs: Any) -> asyncio.Future[None]:
        fut = original(*args, **kwargs)
        acks.put_nowait(fut)
        return fut

    box.ack_nowait = ack_nowait  # type: ignore[method-assign]
    return acks


async def fail_statements(box: Mailbox, trigger: str, times: int) -> list[int]:
    """Makes the first ``times`` statements the trigger fires on fail; returns a
    list that grows by one each time the trigger was consulted."""
    seen: list[int] = []

    def failing() -> int:
        seen.append(1)
        return 1 if len(seen) <= times else 0

    await box._db.create_function("failing", 0, failing)
    await box._db.execute(
        f"CREATE TEMP TRIGGER boom {trigger} WHEN failing()"
        " BEGIN SELECT RAISE(ABORT, 'simulated I/O error'); END"
    )
    return seen


async def test_a_request_the_mailbox_cannot_take_is_refused_unavailable(
    harness: Harness,
) -> None:
    await fail_statements(harness.box, "BEFORE INSERT ON messages", times=1)
    await harness.accept("r1")
    reply = await harness.answer()
    assert reply.request_id == "r1"
    assert reply.error.code == ErrorCode.UNAVAILABLE
    assert "mailbox failed" in reply.error.message
    assert harness.node.counters["refused_mailbox_error"] == 1
    # The caller's retry, with the same request id, is taken.
    await harness.accept("r1")
    assert harness.rows() == [("r1", 0, 0)]


async def test_an_ack_that_failed_is_tried_again(harness: Harness) -> None:
    box = harness.box
    # Twice: the ack's batch (shared with the scheduler's next take) fails, then the
    # ack alone, as each operation of a failed batch goes again by itself.
    await fail_statements(box, "BEFORE DELETE ON messages", times=2)
    acks = capture_acks(box)
    harness.start_scheduler()
    await harness.accept("r1", "once")
    first = await harness.answer()
    assert SayReply.FromString(first.payload).text == "once"
    with pytest.raises(sqlite3.IntegrityError, match="simulated"):
        await asyncio.wait_for(await asyncio.wait_for(acks.get(), 10), 10)
    await asyncio.wait_for(await asyncio.wait_for(acks.get(), 10), 10)  # the retry commits
    assert harness.rows() == [] and harness.node.counters["ack_failed"] == 1
    # The answer was stored with it: a duplicate is answered from the store.
    await harness.accept("r1", "once")
    assert (await harness.answer()).payload == first.payload
    assert harness.node.counters["duplicate_answered"] == 1


async def test_rows_handed_out_as_the_scheduler_stops_go_back_uncounted(
    harness: Harness,
) -> None:
    box = harness.box
    scheduler = harness.scheduler
    handed: list[int] = []
    original = scheduler._take

    def take(batch: list[MailboxRecord]) -> None:
        # The stop lands as the rows are pushed, before a handler got them.
        handed.append(len(batch))
        scheduler._stopping = True
        original(batch)

    scheduler._take = take  # type: ignore[method-assign]
    harness.start_scheduler()
    await harness.accept("r1")
    assert handed == [1] and not scheduler.running  # no handler got r1
    await box.close()  # commits what the scheduler gave back
    assert harness.rows() == [("r1", 0, 0)]  # queued, its attempt given back


async def test_a_stop_while_the_answer_is_sent_does_not_requeue_a_request_that_ran(
    harness: Harness,
) -> None:
    box = harness.box
    sending = asyncio.Event()

    async def stuck(caller: str, ptype: int, data: bytes) -> None:
        sending.set()
        await asyncio.Event().wait()  # a send that never completes

    harness.set_answer(stuck)
    harness.start_scheduler()
    await harness.accept("r1")
    await asyncio.wait_for(sending.wait(), 10)
    (handler,) = harness.scheduler.running
    handler.cancel()  # what stop() does after stop_grace
    await asyncio.gather(handler, return_exceptions=True)
    box.serve(None)
    await box.close()
    # It ran and its answer is stored: not queued to run again after a restart.
    assert harness.rows() == []
    with sqlite3.connect(box.path) as db:
        assert db.execute("SELECT request_id FROM answers").fetchall() == [("r1",)]


async def test_a_runtime_fault_while_processing_retries_then_dead_letters(
    tmp_path: Path,
) -> None:
    h = await Harness.open(tmp_path, Echo(), mailbox=MailboxLimits(max_attempts=2))
    node = h.node
    original = h.scheduler.handling._run
    faults = ["r1", "r2", "r2"]  # r1 fails once, r2 every time it is handed out

    async def flaky(record: MailboxRecord, env: Any) -> Any:
        if record.request_id in faults:
            faults.remove(record.request_id)
            raise RuntimeError("runtime bug")
        return await original(record, env)

    h.scheduler.handling._run = flaky  # type: ignore[method-assign]
    h.start_scheduler()
    await h.accept("r1", "one")
    assert SayReply.FromString((await h.answer()).payload).text == "one"  # its second try
    await h.accept("r2", "two")
    await h.accept("r3", "three")  # not held up by r2
    # One handler at a time: r3 ran once r2's dead-letter move had committed.
    assert SayReply.FromString((await h.answer()).payload).text == "three"
    (dead,) = await h.box.dead_letters()
    assert dead.record.request_id == "r2" and "runtime bug" in dead.reason
    assert node.counters["process_failed"] == 3
    await h.accept("r2", "two")  # its caller's retry is answered, not left waiting
    reply = await h.answer()
    assert reply.request_id == "r2" and reply.error.code == ErrorCode.INTERNAL
    await h.close()


async def test_a_send_that_fails_after_the_ack_leaves_the_request_answered(
    tmp_path: Path,
) -> None:
    h = await Harness.open(tmp_path, Echo(), mailbox=MailboxLimits(max_attempts=1))
    node, box = h.node, h.box
    capture = h.scheduler._answer
    acks = capture_acks(box)

    async def broken(caller: str, ptype: int, data: bytes) -> None:
        raise RuntimeError("data channel closed")  # not an ActrError

    h.set_answer(broken)
    h.start_scheduler()
    await h.accept("r1", "kept")
    await asyncio.wait_for(await asyncio.wait_for(acks.get(), 10), 10)
    await h.close()  # the scheduler and the failed send are done with
    assert node.counters["answer_undeliverable"] == 1
    assert node.counters["process_failed"] == 0
    assert h.rows() == [] and box.count == 0  # answered: not requeued, not dead-lettered

    again = await Harness.open(tmp_path, Echo())
    again.set_answer(capture)
    again.answers = h.answers
    await again.accept("r1", "kept")  # the caller's retry gets the stored answer
    assert SayReply.FromString((await again.answer()).payload).text == "kept"
    assert await again.box.dead_letters() == []
    await again.close()
