"""The mailbox's connection thread: calls run in order, one at a time, on one thread;
errors reach their caller; close runs what was submitted first."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from actr.sqlite_thread import SqliteThread


async def test_calls_run_in_order_on_one_thread_and_errors_reach_their_caller(
    tmp_path: Path,
) -> None:
    db = await SqliteThread.open(tmp_path / "t.db")
    seen: list[tuple[int, int]] = []

    def record(conn: sqlite3.Connection, i: int) -> int:
        seen.append((i, threading.get_ident()))
        return i * 2

    futures = [db.submit(record, i) for i in range(50)]
    failing = db.submit(lambda conn: conn.execute("SELECT * FROM nowhere"))
    last = db.submit(record, 50)
    assert [await f for f in futures] == [i * 2 for i in range(50)]
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await failing
    assert await last == 100
    assert [i for i, _ in seen] == list(range(51))
    assert len({t for _, t in seen}) == 1 and seen[0][1] != threading.get_ident()
    await db.close()


async def test_close_runs_what_was_submitted_then_refuses_more(tmp_path: Path) -> None:
    db = await SqliteThread.open(tmp_path / "t.db")
    await db.execute("CREATE TABLE t (x)")
    pending = db.submit(lambda conn: conn.execute("INSERT INTO t VALUES (1)").rowcount)
    await db.close()
    assert pending.done() and pending.result() == 1
    with pytest.raises(RuntimeError, match="closed"):
        db.submit(lambda conn: None)
    with sqlite3.connect(tmp_path / "t.db") as other:
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]


async def test_an_unopenable_file_fails_open(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await SqliteThread.open(tmp_path / "missing-dir" / "t.db")
