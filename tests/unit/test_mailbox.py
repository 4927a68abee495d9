"""The durable mailbox on real SQLite files: MBX-2 order, ENV-6 dedup, MBX-3 redelivery."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.inbound import HIGH, NORMAL
from actr.mailbox import Mailbox, MailboxLimits, MailboxRecord, Outcome
from tests.unit.mailbox_probe import BatchCounter

WINDOW = 30.0


@pytest.fixture(params=["process", "power"])
async def box(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Mailbox]:
    # Both durability settings: commits on the loop's thread, and on a thread of their own.
    limits = MailboxLimits(durability=request.param)
    mb = await Mailbox.open(tmp_path / "mbx" / "mailbox.db", limits=limits, dedup_window=WINDOW)
    yield mb
    await mb.close()


async def put(
    mb: Mailbox,
    request_id: str,
    *,
    priority: int = NORMAL,
    caller: str = "1@1/a:caller:1",
    envelope: bytes | None = None,
    now: float | None = None,
) -> Outcome:
    result = await mb.enqueue(
        caller=caller,
        request_id=request_id,
        priority=priority,
        payload_type=0 if priority == NORMAL else 1,
        envelope=envelope if envelope is not None else request_id.encode(),
        now=now,
    )
    return result.outcome


async def drain(mb: Mailbox) -> list[MailboxRecord]:
    out: list[MailboxRecord] = []
    while batch := await mb.dequeue(limit=7):
        out.extend(batch)
    return out


# -- MBX-2: order ----------------------------------------------------------------------


async def test_mbx2_high_before_normal_fifo_within(box: Mailbox) -> None:
    plan = [("n1", NORMAL), ("h1", HIGH), ("n2", NORMAL), ("n3", NORMAL), ("h2", HIGH)]
    for rid, prio in plan:
        assert await put(box, rid, priority=prio) is Outcome.QUEUED
    records = await drain(box)
    assert [r.request_id for r in records] == ["h1", "h2", "n1", "n2", "n3"]
    assert [r.priority for r in records] == [HIGH, HIGH, NORMAL, NORMAL, NORMAL]
    assert [r.payload_type for r in records] == [1, 1, 0, 0, 0]
    assert all(r.attempts == 1 for r in records)
    assert await box.dequeue() == []


async def test_mbx2_high_arriving_later_overtakes_queued_normal(box: Mailbox) -> None:
    await put(box, "n1")
    await put(box, "n2")
    (first,) = await box.dequeue(limit=1)
    assert first.request_id == "n1"
    await put(box, "h1", priority=HIGH)
    assert [r.request_id for r in await drain(box)] == ["h1", "n2"]


async def test_mbx2_dequeue_respects_the_limit_and_marks_in_flight(box: Mailbox) -> None:
    for i in range(5):
        await put(box, f"r{i}")
    got = await box.dequeue(limit=2)
    assert [r.request_id for r in got] == ["r0", "r1"]
    stats = await box.stats()
    assert (stats.queued, stats.in_flight) == (3, 2)


async def test_mbx2_record_keeps_what_was_enqueued(box: Mailbox) -> None:
    now = time.time()
    env = bytes(range(256)) * 10
    await box.enqueue(
        caller="c", request_id="r", priority=HIGH, payload_type=1, envelope=env, now=now
    )
    (rec,) = await box.dequeue()
    assert (rec.caller, rec.request_id, rec.priority, rec.payload_type) == ("c", "r", HIGH, 1)
    assert rec.envelope == env
    assert rec.accepted_at == now


async def test_mbx2_concurrent_enqueues_keep_call_order(box: Mailbox) -> None:
    plan = [(f"r{i:02d}", HIGH if i % 3 == 0 else NORMAL) for i in range(40)]
    outcomes = await asyncio.gather(*(put(box, rid, priority=p) for rid, p in plan))
    assert set(outcomes) == {Outcome.QUEUED}
    expected = [rid for rid, p in plan if p == HIGH] + [rid for rid, p in plan if p == NORMAL]
    assert [r.request_id for r in await drain(box)] == expected


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([HIGH, NORMAL]), st.booleans()), max_size=25))
def test_mbx2_order_property(plan: list[tuple[int, bool]]) -> None:
    """Any mix of enqueues and single dequeues hands out HIGH before NORMAL and FIFO
    within a priority, among what is queued at the time."""

    async def run(path: Path) -> None:
        mb = await Mailbox.open(path, dedup_window=WINDOW)
        try:
            model: list[tuple[int, int, str]] = []
            for i, (prio, take) in enumerate(plan):
                await put(mb, f"r{i}", priority=prio)
                model.append((prio, i, f"r{i}"))
                if take:
                    model.sort()
                    (rec,) = await mb.dequeue(limit=1)
                    assert rec.request_id == model.pop(0)[2]
            model.sort()
            assert [r.request_id for r in await drain(mb)] == [m[2] for m in model]
        finally:
            await mb.close()

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(run(Path(d) / "m.db"))


# -- ENV-6: duplicates -----------------------------------------------------------------


async def test_env6_duplicate_while_queued_is_not_enqueued_again(box: Mailbox) -> None:
    assert await put(box, "r1") is Outcome.QUEUED
    assert await put(box, "r1", envelope=b"other bytes") is Outcome.DUPLICATE_PENDING
    records = await drain(box)
    assert [(r.request_id, r.envelope) for r in records] == [("r1", b"r1")]


async def test_env6_duplicate_while_running_is_not_enqueued_again(box: Mailbox) -> None:
    await put(box, "r1")
    (rec,) = await box.dequeue()
    assert await put(box, "r1") is Outcome.DUPLICATE_PENDING
    assert await box.dequeue() == []
    await box.ack(rec, b"answer")
    assert await box.dequeue() == []


async def test_env6_concurrent_duplicates_enqueue_once(box: Mailbox) -> None:
    outcomes = await asyncio.gather(*(put(box, "same") for _ in range(5)))
    assert sorted(o.value for o in outcomes) == sorted(
        [Outcome.QUEUED.value] + [Outcome.DUPLICATE_PENDING.value] * 4
    )
    assert len(await drain(box)) == 1


async def test_env6_key_is_caller_and_request_id(box: Mailbox) -> None:
    assert await put(box, "r1", caller="1@1/a:x:1") is Outcome.QUEUED
    assert await put(box, "r1", caller="2@1/a:x:1") is Outcome.QUEUED
    assert len(await drain(box)) == 2


async def test_env6_duplicate_after_ack_gets_the_same_answer_bytes(box: Mailbox) -> None:
    now = time.time()
    await put(box, "r1", now=now)
    (rec,) = await box.dequeue()
    answer = b"\x00\x01answer\xff" * 3
    await box.ack(rec, answer, now=now + 1)
    result = await box.enqueue(
        caller=rec.caller,
        request_id="r1",
        priority=NORMAL,
        payload_type=0,
        envelope=b"r1",
        now=now + 2,
    )
    assert result.outcome is Outcome.DUPLICATE_ANSWERED
    assert result.answer == answer
    assert await box.dequeue() == []  # the handler does not run twice


async def test_env5_env6_duplicate_of_an_acked_tell_is_answered_with_nothing(
    box: Mailbox,
) -> None:
    await put(box, "t1")
    (rec,) = await box.dequeue()
    await box.ack(rec, None)
    result = await box.enqueue(
        caller=rec.caller, request_id="t1", priority=NORMAL, payload_type=0, envelope=b"t1"
    )
    assert result.outcome is Outcome.DUPLICATE_ANSWERED
    assert result.answer is None
    assert await box.dequeue() == []


async def test_env6_answer_within_the_window_then_expired_is_enqueued_again(
    box: Mailbox,
) -> None:
    now = time.time()
    await put(box, "r1", now=now)
    (rec,) = await box.dequeue()
    await box.ack(rec, b"first", now=now)
    assert await put(box, "r1", now=now + WINDOW) is Outcome.DUPLICATE_ANSWERED
    assert await put(box, "r1", now=now + WINDOW + 1) is Outcome.QUEUED
    (again,) = await box.dequeue()
    assert again.request_id == "r1"
    await box.ack(again, b"second", now=now + WINDOW + 2)
    result = await box.enqueue(
        caller=rec.caller,
        request_id="r1",
        priority=NORMAL,
        payload_type=0,
        envelope=b"r1",
        now=now + WINDOW + 3,
    )
    assert (result.outcome, result.answer) == (Outcome.DUPLICATE_ANSWERED, b"second")


async def test_env6_prune_forgets_answers_older_than_the_window(box: Mailbox) -> None:
    now = time.time()
    for rid, t in (("old", now - WINDOW - 5), ("new", now)):
        await put(box, rid, now=t)
        (rec,) = await box.dequeue()
        await box.ack(rec, rid.encode(), now=t)
    assert await box.prune_answers(now=now) == 1
    assert await put(box, "old", now=now) is Outcome.QUEUED
    assert await put(box, "new", now=now) is Outcome.DUPLICATE_ANSWERED


@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(0, 600),
    answered=st.sets(st.integers(0, 599), max_size=40),
    again=st.sets(st.integers(0, 599), max_size=40),
)
def test_env6_mbx2_one_large_group_commit_property(
    n: int, answered: set[int], again: set[int]
) -> None:
    """Hundreds of enqueues in one batch (several multi-row statements): each outcome is
    its own, answered ones get their stored answer, a second copy inside the batch is
    pending behind the first, and the queue keeps call order within each priority."""

    def prio(i: int) -> int:
        return HIGH if i % 5 == 0 else NORMAL

    async def run(path: Path) -> None:
        mb = await Mailbox.open(path, dedup_window=WINDOW)
        try:
            done = sorted(i for i in answered if i < n)
            await asyncio.gather(*(put(mb, f"r{i}") for i in done))
            for rec in await mb.dequeue(limit=len(done) or 1):
                await mb.ack(rec, b"A" + rec.request_id.encode())
            plan = [*range(n), *sorted(i for i in again if i < n)]
            results = await asyncio.gather(
                *(
                    mb.enqueue(
                        caller="1@1/a:caller:1",
                        request_id=f"r{i}",
                        priority=prio(i),
                        payload_type=0,
                        envelope=f"r{i}".encode(),
                    )
                    for i in plan
                )
            )
            seen: set[int] = set()
            for i, result in zip(plan, results, strict=True):
                if i in seen:
                    # The caller gets its answer once, through the first of the two.
                    assert result.outcome is Outcome.DUPLICATE_PENDING
                elif i in done:
                    assert (result.outcome, result.answer) == (
                        Outcome.DUPLICATE_ANSWERED,
                        f"Ar{i}".encode(),
                    )
                else:
                    assert result.outcome is Outcome.QUEUED
                seen.add(i)
            fresh = [i for i in range(n) if i not in done]
            expected = [i for i in fresh if prio(i) == HIGH] + [
                i for i in fresh if prio(i) == NORMAL
            ]
            out: list[MailboxRecord] = []
            while batch := await mb.dequeue(limit=97):
                out.extend(batch)
            assert [r.request_id for r in out] == [f"r{i}" for i in expected]
        finally:
            await mb.close()

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(run(Path(d) / "m.db"))


# -- MBX-3: redelivery --------------------------------------------------------------------


async def test_mbx3_in_flight_rows_go_back_to_the_queue_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    mb = await Mailbox.open(path, dedup_window=WINDOW)
    for rid, prio in (("n1", NORMAL), ("h1", HIGH), ("n2", NORMAL), ("n3", NORMAL)):
        await put(mb, rid, priority=prio)
    taken = await mb.dequeue(limit=3)
    assert [r.request_id for r in taken] == ["h1", "n1", "n2"]
    await mb.ack(taken[0], b"h1-answer")  # h1 finished; n1 and n2 were running
    await mb.close()  # the process "dies" with n1, n2 in flight

    mb2 = await Mailbox.open(path, dedup_window=WINDOW)
    try:
        stats = await mb2.stats()
        assert (stats.queued, stats.in_flight) == (3, 0)
        again = await drain(mb2)
        assert [r.request_id for r in again] == ["n1", "n2", "n3"]
        assert [r.attempts for r in again] == [2, 2, 1]
        assert [r.envelope for r in again] == [b"n1", b"n2", b"n3"]
        # The finished one is answered from the store, not run again.
        assert await put(mb2, "h1", priority=HIGH) is Outcome.DUPLICATE_ANSWERED
    finally:
        await mb2.close()


async def test_mbx1_queued_rows_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    mb = await Mailbox.open(path)
    await put(mb, "r1")
    await mb.close()
    mb2 = await Mailbox.open(path)
    try:
        assert [r.request_id for r in await mb2.dequeue()] == ["r1"]
        assert await put(mb2, "r1") is Outcome.DUPLICATE_PENDING
    finally:
        await mb2.close()


async def test_requeue_puts_an_in_flight_row_back_in_its_place(box: Mailbox) -> None:
    for rid in ("r1", "r2", "r3"):
        await put(box, rid)
    (r1,) = await box.dequeue(limit=1)
    await box.requeue(r1)
    stats = await box.stats()
    assert (stats.queued, stats.in_flight) == (3, 0)
    assert [r.request_id for r in await drain(box)] == ["r1", "r2", "r3"]


async def parked(box: Mailbox, waiting: asyncio.Future[list[MailboxRecord]]) -> None:
    """Returns once the batch that ran ``waiting`` is done (an operation submitted after
    it is answered), and checks that it found nothing and was parked, not answered."""
    await asyncio.wait_for(box.prune_answers(), 5)
    assert not waiting.done(), "a waiting dequeue that found nothing was answered"
    assert box.parked == 1


async def test_waiting_dequeue_is_served_in_the_transaction_that_queues(box: Mailbox) -> None:
    batches = BatchCounter(box)
    waiting = box.dequeue(4, wait=True)
    await parked(box, waiting)  # nothing queued: it waits, it does not answer "nothing"
    before = batches.count
    await put(box, "r1", priority=HIGH)
    assert waiting.done()  # served by the enqueue's own batch
    (rec,) = waiting.result()
    assert (rec.request_id, rec.attempts) == ("r1", 1)
    assert batches.count == before + 1  # queued and handed out in one commit
    assert box.parked == 0


async def test_cancelled_waiting_dequeue_gives_its_rows_back(box: Mailbox) -> None:
    queued = box.enqueue(
        caller="c", request_id="r1", priority=NORMAL, payload_type=0, envelope=b"r1"
    )
    taker = box.dequeue(4, wait=True)  # in the same batch as the enqueue: takes r1
    taker.cancel()
    await queued
    (rec,) = await asyncio.wait_for(box.dequeue(4, wait=True), 5)
    assert (rec.request_id, rec.attempts) == ("r1", 1)  # the lost attempt given back


async def test_waiting_dequeue_finds_rows_another_process_queued(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    daemon = await Mailbox.open(path)
    daemon.poll_interval = 0.05
    try:
        waiting = daemon.dequeue(4, wait=True)
        await parked(daemon, waiting)
        tool = await Mailbox.open(path, recover=False)
        await put(tool, "from-elsewhere")
        await tool.close()
        (rec,) = await asyncio.wait_for(waiting, 5)
        assert rec.request_id == "from-elsewhere"
    finally:
        await daemon.close()


async def test_close_answers_a_waiting_dequeue_with_nothing(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db")
    waiting = box.dequeue(4, wait=True)
    await parked(box, waiting)
    await asyncio.wait_for(box.close(), 5)
    assert await asyncio.wait_for(waiting, 5) == []


# -- stats ------------------------------------------------------------------------------


async def test_stats_count_by_state_and_priority_and_age(box: Mailbox) -> None:
    empty = await box.stats()
    assert (empty.queued, empty.in_flight, empty.queued_by_priority) == (0, 0, {})
    assert empty.oldest_age is None
    now = time.time()
    await put(box, "h1", priority=HIGH, now=now - 10)
    await put(box, "n1", now=now - 4)
    await put(box, "n2", now=now - 2)
    (taken,) = await box.dequeue(limit=1)
    assert taken.request_id == "h1"
    stats = await box.stats(now=now)
    assert (stats.queued, stats.in_flight) == (2, 1)
    assert stats.queued_by_priority == {NORMAL: 2}
    assert stats.oldest_age == pytest.approx(10.0)
    await box.ack(taken, b"x")
    assert (await box.stats(now=now)).oldest_age == pytest.approx(4.0)
