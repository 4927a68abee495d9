"""Mailbox dead letters (MBX-4), bound and backpressure (MBX-5), group commit, and the
tools that work on a running daemon's file."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from actr.errors import ResourceExhausted
from actr.inbound import NORMAL
from actr.mailbox import EnqueueResult, Mailbox, MailboxLimits, Outcome
from tests.unit.mailbox_probe import BatchCounter


async def put(box: Mailbox, rid: str, size: int = 10) -> Outcome:
    result = await box.enqueue(
        caller="1@1/a:c:1", request_id=rid, priority=NORMAL, payload_type=0, envelope=b"e" * size
    )
    return result.outcome


async def test_mbx4_a_request_that_kills_the_process_every_time_is_dead_lettered(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    limits = MailboxLimits(max_attempts=3)
    for attempt in range(1, 4):
        # Each "process" takes the request and dies before answering it.
        box = await Mailbox.open(path, limits=MailboxLimits(max_attempts=3))
        if attempt == 1:
            await put(box, "poison")
        (rec,) = await box.dequeue(10)
        assert rec.attempts == attempt
        await box.close()
    box = await Mailbox.open(path, limits=limits)
    assert await box.dequeue(10) == []
    (dead,) = await box.dead_letters()
    assert dead.record.request_id == "poison"
    assert "3 times" in dead.reason
    stats = await box.stats()
    assert (stats.queued, stats.in_flight, stats.dead_letters) == (0, 0, 1)
    # Replayed, it runs again with a fresh count.
    assert await box.replay() == 1
    (again,) = await box.dequeue(10)
    assert (again.request_id, again.attempts) == ("poison", 1)
    await box.close()


async def test_mbx4_only_the_request_that_kills_the_process_is_dead_lettered(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    limits = MailboxLimits(max_attempts=3)
    box = await Mailbox.open(path, limits=limits)
    for rid in ("poison", "b", "c", "d"):
        await put(box, rid)
    # Four handlers side by side; "poison" kills the process each time it runs.
    while True:
        taken = await box.dequeue(4)
        if not taken:
            break
        if "poison" in {r.request_id for r in taken}:
            await box.close()  # the process dies with all of them in flight
            box = await Mailbox.open(path, limits=limits)
            continue
        for rec in taken:
            await box.ack(rec, None)
    assert [d.record.request_id for d in await box.dead_letters()] == ["poison"]
    await box.close()


async def test_mbx4_stops_are_not_failures(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    limits = MailboxLimits(max_attempts=3)
    box = await Mailbox.open(path, limits=limits)
    await put(box, "long")
    for _ in range(2):  # stopped twice while it ran (stop_grace ran out)
        (rec,) = await box.dequeue(1)
        await box.requeue(rec, started=True)
    for crash in range(1, 4):  # then the process dies with it, three times
        (rec,) = await box.dequeue(1)
        assert rec.attempts == 2 + crash  # handed out 2 + crash times
        await box.close()
        box = await Mailbox.open(path, limits=limits)
        dead = [d.record.request_id for d in await box.dead_letters()]
        assert dead == ([] if crash < 3 else ["long"])  # only failures count
    await box.close()


async def test_mbx4_fail_requeues_until_max_attempts_then_dead_letters(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db", limits=MailboxLimits(max_attempts=2))
    await put(box, "r1")
    (rec,) = await box.dequeue(1)
    assert await box.fail(rec, "bug") is False
    (rec,) = await box.dequeue(1)  # back in the queue
    assert await box.fail(rec, "bug") is True
    (dead,) = await box.dead_letters()
    assert dead.record.request_id == "r1" and "failed 2 times" in dead.reason
    assert (box.count, box.bytes) == (0, 0)
    assert await box.fail(rec, "bug") is False  # gone: nothing to count
    await box.close()


async def test_a_mailbox_file_from_before_failures_were_counted_is_migrated(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, priority INTEGER"
            " NOT NULL, caller TEXT NOT NULL, request_id TEXT NOT NULL, payload_type INTEGER"
            " NOT NULL, envelope BLOB NOT NULL, state INTEGER NOT NULL DEFAULT 0, attempts"
            " INTEGER NOT NULL DEFAULT 0, accepted_at REAL NOT NULL)"
        )
        # In flight, handed out twice: in the old rule, two failures so far.
        old.execute(
            "INSERT INTO messages (priority, caller, request_id, payload_type, envelope,"
            " state, attempts, accepted_at) VALUES (1, 'c', 'r1', 0, x'00', 1, 2, 0)"
        )
    box = await Mailbox.open(path, limits=MailboxLimits(max_attempts=3))
    (dead,) = await box.dead_letters()  # the third failure: this crash
    assert dead.record.request_id == "r1"
    await put(box, "r2")
    (rec,) = await box.dequeue(1)
    assert rec.request_id == "r2"
    await box.close()


async def test_mbx4_dead_letter_at_once_then_purge(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db")
    await put(box, "a")
    await put(box, "b")
    recs = await box.dequeue(10)
    for rec in recs:
        await box.dead_letter(rec, "stored envelope does not decode")
    assert [d.record.request_id for d in await box.dead_letters()] == ["a", "b"]
    assert await box.purge([recs[0].seq]) == 1
    assert await box.purge() == 1
    assert await box.dead_letters() == []
    assert box.count == 0
    await box.close()


async def test_mbx5_past_the_bound_enqueue_is_refused_never_dropped(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db", limits=MailboxLimits(max_messages=3))
    for rid in "abc":
        assert await put(box, rid) is Outcome.QUEUED
    with pytest.raises(ResourceExhausted, match="mailbox full"):
        await put(box, "d")
    assert box.counters["refused_full"] == 1
    # A duplicate of a queued one is still recognised, not refused.
    assert await put(box, "a") is Outcome.DUPLICATE_PENDING
    (rec, *_) = await box.dequeue(1)
    await box.ack(rec, b"answer")
    assert await put(box, "d") is Outcome.QUEUED
    await box.close()


async def test_mbx5_byte_bound(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db", limits=MailboxLimits(max_bytes=2048))
    assert await put(box, "big", size=2000) is Outcome.QUEUED
    with pytest.raises(ResourceExhausted):
        await put(box, "more", size=100)
    await box.close()


async def test_mbx5_backpressure_hook_fires_at_threshold_and_rearms_below(tmp_path: Path) -> None:
    box = await Mailbox.open(
        tmp_path / "m.db", limits=MailboxLimits(max_messages=10, backpressure_at=0.5)
    )
    events: list[bool] = []
    box.on_backpressure = events.append
    for i in range(4):
        await put(box, f"r{i}")
    assert events == []
    await put(box, "r4")  # 5 of 10: at the mark
    await put(box, "r5")
    assert events == [True]
    for rec in await box.dequeue(10):
        await box.ack(rec, None)
    assert events == [True, False]
    for i in range(5):
        await put(box, f"s{i}")
    assert events == [True, False, True]  # re-armed, fires again
    assert box.counters["backpressure_fired"] == 2
    await box.close()


async def test_group_commit_concurrent_enqueues_share_transactions(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db")
    batches = BatchCounter(box)
    outcomes = await asyncio.gather(*(put(box, f"r{i}") for i in range(200)))
    assert set(outcomes) == {Outcome.QUEUED}
    assert batches.count < 20, f"200 concurrent enqueues took {batches.count} transactions"
    # Each returned only once its row was committed: another connection sees them all.
    with sqlite3.connect(tmp_path / "m.db") as other:
        assert other.execute("SELECT COUNT(*) FROM messages").fetchone() == (200,)
    await box.close()


async def test_requeue_of_an_unstarted_row_gives_its_attempt_back(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db")
    await put(box, "a")
    await put(box, "b")
    a, b = await box.dequeue(10)
    await box.requeue(a, started=False)
    await box.requeue(b, started=True)
    again = {r.request_id: r.attempts for r in await box.dequeue(10)}
    assert again == {"a": 1, "b": 2}
    await box.close()


async def test_tools_open_a_running_daemons_file_without_recovering_it(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    daemon = await Mailbox.open(path)
    await put(daemon, "a")
    (rec,) = await daemon.dequeue(10)  # in flight in the "daemon"
    tool = await Mailbox.open(path, recover=False)
    stats = await tool.stats()
    assert (stats.queued, stats.in_flight) == (0, 1)  # not put back under its feet
    await tool.close()
    await daemon.ack(rec, b"x")
    await daemon.close()


async def test_env6_replay_never_reruns_a_request_answered_meanwhile(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db", dedup_window=60)
    await put(box, "a")
    (rec,) = await box.dequeue(1)
    await box.dead_letter(rec, "poison")

    async def retry(now: float) -> EnqueueResult:
        return await box.enqueue(
            caller=rec.caller,
            request_id="a",
            priority=NORMAL,
            payload_type=0,
            envelope=b"e",
            now=now,
        )

    # Within the window the caller's retry gets the dead letter's answer.
    assert (await retry(time.time())).outcome is Outcome.DUPLICATE_ANSWERED
    # Past it, the retry runs and is answered for real...
    later = time.time() + 120
    assert (await retry(later)).outcome is Outcome.QUEUED
    (again,) = await box.dequeue(1)
    await box.ack(again, b"real answer", now=later)
    # ...so replaying the old dead letter would run it twice: it is dropped instead.
    assert await box.replay() == 0
    assert await box.dead_letters() == []
    hit = await retry(later)
    assert (hit.outcome, hit.answer) == (Outcome.DUPLICATE_ANSWERED, b"real answer")
    await box.close()


async def test_dead_letter_replayed_within_the_window_runs_again(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db")
    await put(box, "a")
    (rec,) = await box.dequeue(1)
    await box.dead_letter(rec, "poison")
    assert await box.replay() == 1
    (again,) = await box.dequeue(1)
    assert again.request_id == "a"
    await box.close()


async def test_a_replay_from_another_process_does_not_confuse_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    daemon = await Mailbox.open(path)
    await put(daemon, "a")
    await put(daemon, "b")
    a, b = await daemon.dequeue(2)
    await daemon.dead_letter(a, "poison")
    tool = await Mailbox.open(path, recover=False)
    assert await tool.replay() == 1
    await tool.close()
    # The caller retries "a" (queued again by the tool) while "b" is acked: neither
    # the duplicate nor the unrelated ack may fail.
    retry, _ = await asyncio.gather(
        daemon.enqueue(
            caller=a.caller, request_id="a", priority=NORMAL, payload_type=0, envelope=b"e"
        ),
        daemon.ack(b, b"done"),
    )
    assert retry.outcome is Outcome.DUPLICATE_PENDING
    assert daemon.count == 1
    (again,) = await daemon.dequeue(5)
    assert again.request_id == "a"
    await daemon.close()


async def test_close_right_after_a_submit_does_not_hang(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "m.db")
    pending = box.enqueue(  # submitted now: enqueue is not a coroutine
        caller="1@1/a:c:1", request_id="a", priority=NORMAL, payload_type=0, envelope=b"e"
    )
    await asyncio.wait_for(box.close(), 5)
    assert pending.done()
    assert pending.result().outcome is Outcome.QUEUED
