"""WAL checkpoints run on a thread of their own, not inside a commit on the event loop
(issue 13): the mailbox's connection has SQLite's automatic checkpoint off, and the
WAL still stays small over thousands of commits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from actr.mailbox import Mailbox, MailboxLimits


async def test_checkpoints_run_off_the_loop_and_keep_the_wal_small(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    box = await Mailbox.open(path)
    try:
        (auto,) = (await box.connection.execute("PRAGMA wal_autocheckpoint"))[0]
        assert auto == 0  # no checkpoint (nor its fsync) inside a commit on the loop
        assert box.checkpointer is not None
        for i in range(6000):  # one commit each
            await box.enqueue(
                caller="c", request_id=f"r{i}", priority=1, payload_type=0, envelope=b"e" * 150
            )
            if i % 300 == 299:
                # Each checkpoint lets a later commit start the WAL over.
                assert await asyncio.to_thread(box.checkpointer.checkpointed.wait, 10)
                box.checkpointer.checkpointed.clear()
        assert box.checkpointer.checkpoints >= 18
        # Without checkpoints 6,000 commits of a few 4 KiB pages each make a WAL of
        # ~70 MiB; with them it starts over every ``restart_every`` (2,048) commits.
        assert (tmp_path / "mailbox.db-wal").stat().st_size < 40 * 1024 * 1024
    finally:
        await box.close()
    again = await Mailbox.open(path)
    try:
        assert again.count == 6000
    finally:
        await again.close()


async def test_power_durability_leaves_checkpoints_to_its_thread(tmp_path: Path) -> None:
    box = await Mailbox.open(tmp_path / "mailbox.db", limits=MailboxLimits(durability="power"))
    try:
        assert box.checkpointer is None  # its commits are off the loop already
    finally:
        await box.close()


async def test_if_the_checkpoint_thread_cannot_start_sqlite_checkpoints_again(
    tmp_path: Path,
) -> None:
    box = await Mailbox.open(tmp_path / "mailbox.db")
    try:
        assert box.checkpointer is not None
        box.checkpointer.close()
        box.checkpointer.dead = True  # as if its connection had failed
        await box.enqueue(caller="c", request_id="r", priority=1, payload_type=0, envelope=b"e")
        (auto,) = (await box.connection.execute("PRAGMA wal_autocheckpoint"))[0]
        assert auto == 1000  # the WAL does not grow without bound
    finally:
        await box.close()
