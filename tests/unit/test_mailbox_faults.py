"""The mailbox when SQLite fails under it (a full disk, an I/O error) and when another
process commits to its file: nothing accepted is lost, nothing is refused for good,
and what it keeps in memory (keys, row count, size) stays the database's.

Faults are made on the mailbox's own connection and leave the file alone:
``PRAGMA max_page_count`` is a full disk (SQLite then rolls the transaction back by
itself), a TEMP trigger is a statement that fails."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actr.inbound import NORMAL
from actr.mailbox import Mailbox, MailboxLimits, Outcome

BIG = b"x" * 200_000  # more than the pages left on the "full disk"


async def put(box: Mailbox, rid: str, envelope: bytes | None = None) -> Outcome:
    result = await box.enqueue(
        caller="c",
        request_id=rid,
        priority=NORMAL,
        payload_type=0,
        envelope=rid.encode() if envelope is None else envelope,
    )
    return result.outcome


def on_disk(path: Path) -> tuple[int, int, list[tuple[str, int]]]:
    """(rows, bytes, [(request_id, state)]) as another connection sees them."""
    with sqlite3.connect(path) as db:
        count, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM messages"
        ).fetchone()
        rows = db.execute("SELECT request_id, state FROM messages ORDER BY seq").fetchall()
    return count, size, rows


class Disk:
    """Fills and frees the mailbox's "disk"."""

    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def fill(self) -> None:
        db = self.box.connection
        ((pages,),) = await db.execute("PRAGMA page_count")
        await db.execute(f"PRAGMA max_page_count={pages + 2}")

    async def free(self) -> None:
        await self.box.connection.execute("PRAGMA max_page_count=1073741823")


async def dead_letter_one(box: Mailbox, rid: str) -> None:
    await put(box, rid)
    (rec,) = await box.dequeue(1)
    await box.dead_letter(rec, "poison")


async def replay_from_another_process(path: Path) -> None:
    """What ``actr dlq replay --all`` does to a daemon's file."""
    tool = await Mailbox.open(path, recover=False)
    assert await tool.replay() == 1
    await tool.close()


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Mailbox]:
    mb = await Mailbox.open(tmp_path / "mailbox.db")
    yield mb
    await mb.close()


async def test_enqueue_that_failed_on_a_full_disk_is_accepted_when_retried(
    box: Mailbox,
) -> None:
    await put(box, "warmup")
    disk = Disk(box)
    await disk.fill()
    with pytest.raises(sqlite3.OperationalError, match="full"):
        await put(box, "r1", BIG)
    await disk.free()
    # Not "already queued": nothing of the failed enqueue was kept.
    assert await put(box, "r1", BIG) is Outcome.QUEUED
    assert [r.request_id for r in await box.dequeue(5)] == ["warmup", "r1"]
    assert (box.count, box.bytes) == on_disk(box.path)[:2]


async def test_one_failing_operation_does_not_fail_the_rest_of_its_batch(box: Mailbox) -> None:
    disk = Disk(box)
    await disk.fill()
    # Submitted together, so they share a batch; only the large one cannot fit.
    small = [
        box.enqueue(caller="c", request_id=f"s{i}", priority=NORMAL, payload_type=0, envelope=b"s")
        for i in range(3)
    ]
    big = box.enqueue(caller="c", request_id="big", priority=NORMAL, payload_type=0, envelope=BIG)
    results = await asyncio.gather(*small, big, return_exceptions=True)
    assert [r.outcome for r in results[:3]] == [Outcome.QUEUED] * 3  # type: ignore[union-attr]
    assert isinstance(results[3], sqlite3.OperationalError)
    await disk.free()
    assert [rid for rid, _ in on_disk(box.path)[2]] == ["s0", "s1", "s2"]
    assert (box.count, box.bytes) == on_disk(box.path)[:2]


async def test_rows_of_a_cancelled_dequeue_come_back_though_giving_them_back_failed(
    box: Mailbox,
) -> None:
    await put(box, "r1")
    failures = 0

    def fail_once() -> int:
        nonlocal failures
        failures += 1
        return 1 if failures == 1 else 0

    # The first statement that puts a row back to QUEUED fails (an I/O error).
    await box.connection.create_function("fail_once", 0, fail_once)
    await box.connection.execute(
        "CREATE TEMP TRIGGER boom BEFORE UPDATE OF state ON messages"
        " WHEN NEW.state = 0 AND fail_once()"
        " BEGIN SELECT RAISE(ABORT, 'simulated I/O error'); END"
    )
    taker = box.dequeue(5)
    taker.cancel()  # the rows it takes have nobody to run them: they are given back
    (rec,) = await asyncio.wait_for(box.dequeue(5, wait=True), 10)
    assert failures >= 2  # the give-back failed once, and was tried again
    assert (rec.request_id, rec.attempts) == ("r1", 1)


async def test_counts_stay_true_when_a_batch_fails_after_another_process_committed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mailbox.db"
    daemon = await Mailbox.open(path)
    await dead_letter_one(daemon, "poison")
    await replay_from_another_process(path)
    await daemon.connection.execute(
        "CREATE TEMP TRIGGER boom BEFORE INSERT ON messages"
        " BEGIN SELECT RAISE(ABORT, 'simulated I/O error'); END"
    )
    with pytest.raises(sqlite3.IntegrityError):
        await put(daemon, "x")
    await daemon.connection.execute("DROP TRIGGER temp.boom")
    assert await put(daemon, "y") is Outcome.QUEUED
    assert (daemon.count, daemon.bytes) == on_disk(path)[:2] == (2, len(b"poison") + 1)
    for rec in await daemon.dequeue(5):
        await daemon.ack(rec, None)
    assert (daemon.count, daemon.bytes) == (0, 0)
    await daemon.close()


async def test_first_batch_sees_what_another_process_committed_after_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mailbox.db"
    setup = await Mailbox.open(path)
    await dead_letter_one(setup, "r1")
    await setup.close()
    daemon = await Mailbox.open(path)  # starting: nothing queued
    await replay_from_another_process(path)  # while it starts
    # The first batch knows r1 is queued again: a duplicate of it is not accepted twice.
    assert await put(daemon, "r1") is Outcome.DUPLICATE_PENDING
    assert (daemon.count, daemon.bytes) == on_disk(path)[:2] == (1, 2)
    await daemon.close()


async def test_a_failing_backpressure_hook_does_not_stop_the_mailbox(tmp_path: Path) -> None:
    box = await Mailbox.open(
        tmp_path / "mailbox.db", limits=MailboxLimits(max_messages=2, backpressure_at=0.5)
    )

    def hook(active: bool) -> None:
        raise RuntimeError("hook bug")

    box.on_backpressure = hook
    assert await asyncio.wait_for(put(box, "r1"), 5) is Outcome.QUEUED
    (rec,) = await asyncio.wait_for(box.dequeue(1), 5)
    await asyncio.wait_for(box.ack(rec, None), 5)
    assert box.counters["backpressure_fired"] == 1
    await asyncio.wait_for(box.close(), 5)


async def test_operations_on_a_row_that_is_gone_change_nothing(box: Mailbox) -> None:
    await put(box, "r1")
    await put(box, "r2")
    r1, r2 = await box.dequeue(5)
    await box.ack(r1, b"answer")
    # Late or repeated operations on r1 (a retried ack, a fault path after the ack):
    await box.ack(r1, b"answer")
    await box.dead_letter(r1, "late")
    await box.requeue(r1)
    assert (box.count, box.bytes) == on_disk(box.path)[:2] == (1, 2)
    assert await box.dead_letters() == []
    assert [rid for rid, _ in on_disk(box.path)[2]] == ["r2"]
    # A row put back twice gives its attempt back once.
    await box.requeue(r2, started=False)
    await box.requeue(r2, started=False)
    (again,) = await box.dequeue(5)
    assert (again.request_id, again.attempts) == ("r2", 1)
