"""The durable mailbox: a priority queue of inbound requests on SQLite (aiosqlite, WAL).

PROTOCOL.md MBX-1..3 and ENV-6: a request is committed before ``enqueue``
returns; ``dequeue`` marks rows in flight (HIGH before NORMAL, FIFO within);
``ack`` deletes the row and stores its answer in the same transaction, so a
duplicate of an answered request is answered from the store; on open, rows a
dead process left in flight go back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

QUEUED = 0
IN_FLIGHT = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    priority     INTEGER NOT NULL,
    caller       TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    payload_type INTEGER NOT NULL,
    envelope     BLOB    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    accepted_at  REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_order ON messages (state, priority, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_key ON messages (caller, request_id);
CREATE TABLE IF NOT EXISTS answers (
    caller      TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    answer      BLOB,
    answered_at REAL NOT NULL,
    PRIMARY KEY (caller, request_id)
);
CREATE INDEX IF NOT EXISTS answers_age ON answers (answered_at);
"""


class Outcome(Enum):
    QUEUED = "queued"
    DUPLICATE_PENDING = "duplicate_pending"  # queued or running: not enqueued again
    DUPLICATE_ANSWERED = "duplicate_answered"  # answer the stored result


@dataclass(frozen=True)
class EnqueueResult:
    outcome: Outcome
    seq: int | None = None
    answer: bytes | None = None


@dataclass(frozen=True)
class MailboxRecord:
    seq: int
    priority: int
    caller: str
    request_id: str
    payload_type: int
    envelope: bytes
    attempts: int
    accepted_at: float


@dataclass(frozen=True)
class MailboxStats:
    queued: int
    in_flight: int
    queued_by_priority: dict[int, int]
    oldest_age: float | None


class Mailbox:
    def __init__(self, db: aiosqlite.Connection, path: Path, dedup_window: float) -> None:
        self._db = db
        self.path = path
        self.dedup_window = dedup_window
        self._work = asyncio.Event()
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path, *, dedup_window: float = 600.0) -> Mailbox:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (the case MBX-1 is about);
        # only an OS crash or power loss can roll back the last commits.
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(_SCHEMA)
        box = cls(db, path, dedup_window)
        requeued = await box._requeue_in_flight()
        if requeued:
            log.info("mailbox_redelivery count=%d path=%s", requeued, path)
        if (await box.stats()).queued:
            box._work.set()
        return box

    async def close(self) -> None:
        await self._db.close()

    async def _requeue_in_flight(self) -> int:
        cur = await self._db.execute(
            "UPDATE messages SET state = ? WHERE state = ?", (QUEUED, IN_FLIGHT)
        )
        return cur.rowcount

    async def enqueue(
        self,
        *,
        caller: str,
        request_id: str,
        priority: int,
        payload_type: int,
        envelope: bytes,
        now: float | None = None,
    ) -> EnqueueResult:
        now = time.time() if now is None else now
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._db.execute(
                    "SELECT answer, answered_at FROM answers WHERE caller = ? AND request_id = ?",
                    (caller, request_id),
                )
                row = await cur.fetchone()
                if row is not None and now - row[1] <= self.dedup_window:
                    await self._db.execute("COMMIT")
                    return EnqueueResult(Outcome.DUPLICATE_ANSWERED, answer=row[0])
                cur = await self._db.execute(
                    "INSERT OR IGNORE INTO messages (priority, caller, request_id, payload_type,"
                    " envelope, accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (priority, caller, request_id, payload_type, envelope, now),
                )
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
        if cur.rowcount == 0:
            return EnqueueResult(Outcome.DUPLICATE_PENDING)
        self._work.set()
        return EnqueueResult(Outcome.QUEUED, seq=cur.lastrowid)

    async def dequeue(self, limit: int = 32) -> list[MailboxRecord]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = await self._db.execute(
                    "SELECT seq, priority, caller, request_id, payload_type, envelope, attempts,"
                    " accepted_at FROM messages WHERE state = ? ORDER BY priority, seq LIMIT ?",
                    (QUEUED, limit),
                )
                rows = list(await cur.fetchall())
                if rows:
                    await self._db.executemany(
                        "UPDATE messages SET state = ?, attempts = attempts + 1 WHERE seq = ?",
                        [(IN_FLIGHT, r[0]) for r in rows],
                    )
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
        if len(rows) < limit:
            self._work.clear()
        return [MailboxRecord(*r) for r in rows]

    async def wait_for_work(self) -> None:
        await self._work.wait()

    async def ack(
        self, record: MailboxRecord, answer: bytes | None, now: float | None = None
    ) -> None:
        """Deletes the row and records its answer in one transaction (MBX-2, MBX-3)."""
        now = time.time() if now is None else now
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await self._db.execute("DELETE FROM messages WHERE seq = ?", (record.seq,))
                await self._db.execute(
                    "INSERT OR REPLACE INTO answers (caller, request_id, answer, answered_at)"
                    " VALUES (?, ?, ?, ?)",
                    (record.caller, record.request_id, answer, now),
                )
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise

    async def requeue(self, record: MailboxRecord) -> None:
        """Puts an in-flight row back (the runtime stops before answering it)."""
        async with self._lock:
            await self._db.execute(
                "UPDATE messages SET state = ? WHERE seq = ?", (QUEUED, record.seq)
            )
        self._work.set()

    async def prune_answers(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        async with self._lock:
            cur = await self._db.execute(
                "DELETE FROM answers WHERE answered_at < ?", (now - self.dedup_window,)
            )
        return cur.rowcount

    async def stats(self, now: float | None = None) -> MailboxStats:
        now = time.time() if now is None else now
        cur = await self._db.execute(
            "SELECT state, priority, COUNT(*), MIN(accepted_at) FROM messages"
            " GROUP BY state, priority"
        )
        queued = in_flight = 0
        by_priority: dict[int, int] = {}
        oldest: float | None = None
        for state, priority, count, first in await cur.fetchall():
            if state == QUEUED:
                queued += count
                by_priority[priority] = by_priority.get(priority, 0) + count
            else:
                in_flight += count
            oldest = first if oldest is None else min(oldest, first)
        return MailboxStats(
            queued, in_flight, by_priority, None if oldest is None else now - oldest
        )
