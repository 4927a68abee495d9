"""The durable mailbox: a priority queue of inbound requests on SQLite (aiosqlite, WAL).

PROTOCOL.md MBX-1..5 and ENV-6:
- ``enqueue`` returns once the request is committed (MBX-1);
- ``dequeue`` marks rows in flight, HIGH before NORMAL, FIFO within (MBX-2);
- ``ack`` deletes the row and stores its answer in the same transaction, so a
  duplicate of an answered request is answered from the store (ENV-6);
- on open, rows a dead process left in flight go back to the queue (MBX-3), or
  to the dead letters once they have been handed out ``max_attempts`` times
  (a request that crashes the process every time must not crash it forever);
- past the bound, ``enqueue`` raises ResourceExhausted (MBX-5).

Group commit: every write (enqueue, dequeue, ack, requeue, dead-letter) is an
operation on a queue that one writer task drains; each drained batch is one
transaction, and each caller's future resolves only after that commit. So
concurrent producers share commits instead of paying one each, and every
aiosqlite call (a thread hop) is shared by the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import aiosqlite

from actr.errors import ResourceExhausted

log = logging.getLogger(__name__)

QUEUED = 0
IN_FLIGHT = 1
_IN_CHUNK = 400  # keys per "IN (...)" query, well under SQLite's variable limit

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
CREATE TABLE IF NOT EXISTS dead_letters (
    seq          INTEGER PRIMARY KEY,
    priority     INTEGER NOT NULL,
    caller       TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    payload_type INTEGER NOT NULL,
    envelope     BLOB    NOT NULL,
    attempts     INTEGER NOT NULL,
    accepted_at  REAL    NOT NULL,
    reason       TEXT    NOT NULL,
    failed_at    REAL    NOT NULL
);
"""

_COLUMNS = "seq, priority, caller, request_id, payload_type, envelope, attempts, accepted_at"


class Outcome(Enum):
    QUEUED = "queued"
    DUPLICATE_PENDING = "duplicate_pending"  # queued or running: not enqueued again
    DUPLICATE_ANSWERED = "duplicate_answered"  # answer the stored result


@dataclass(frozen=True)
class EnqueueResult:
    outcome: Outcome
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
class DeadLetter:
    record: MailboxRecord
    reason: str
    failed_at: float


@dataclass(frozen=True)
class MailboxStats:
    queued: int
    in_flight: int
    queued_by_priority: dict[int, int]
    oldest_age: float | None
    dead_letters: int
    answers_kept: int


@dataclass
class MailboxLimits:
    max_messages: int = 100_000
    max_bytes: int = 1024**3
    # The backpressure hook fires when the mailbox fills past this share of a
    # bound, and re-arms once it is back below.
    backpressure_at: float = 0.8
    max_attempts: int = 3
    dedup_window: float = 600.0


@dataclass
class _Op:
    kind: str
    args: tuple[Any, ...]
    future: asyncio.Future[Any] = field(repr=False)


class Mailbox:
    def __init__(self, db: aiosqlite.Connection, path: Path, limits: MailboxLimits) -> None:
        self._db = db
        self.path = path
        self.limits = limits
        self.count = 0  # rows in messages (queued + in flight)
        self.bytes = 0
        self.on_backpressure: Callable[[bool], None] | None = None
        self.backpressure = False
        self.counters: dict[str, int] = {"backpressure_fired": 0, "refused_full": 0}
        self._work = asyncio.Event()
        self._ops: list[_Op] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        # One transaction at a time on the connection: the writer's batches, and the
        # dead-letter tools' own transactions.
        self._txn = asyncio.Lock()
        self._closed = False
        self._last_prune = time.time()

    @property
    def dedup_window(self) -> float:
        return self.limits.dedup_window

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        limits: MailboxLimits | None = None,
        dedup_window: float | None = None,
        recover: bool = True,
    ) -> Mailbox:
        """Opens (creating) the mailbox. ``recover`` (the daemon, not a tool looking at
        a running daemon's file) puts what a dead process left in flight back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        limits = limits or MailboxLimits()
        if dedup_window is not None:
            limits.dedup_window = dedup_window
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (the case MBX-1 is about);
        # only an OS crash or power loss can roll back the last commits.
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(_SCHEMA)
        box = cls(db, path, limits)
        if recover:
            await box._recover()
        rows = await db.execute_fetchall(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0), SUM(state = 0) FROM messages"
        )
        count, size, queued = next(iter(rows))
        box.count, box.bytes = int(count), int(size)
        if queued:
            box._work.set()
        box._writer = asyncio.create_task(box._write_loop())
        return box

    async def _recover(self) -> None:
        now = time.time()
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = await self._db.execute(
                f"INSERT INTO dead_letters ({_COLUMNS}, reason, failed_at)"
                f" SELECT {_COLUMNS}, ?, ? FROM messages WHERE state = ? AND attempts >= ?",
                (
                    f"handed out {self.limits.max_attempts} times without an answer"
                    " (the process died while handling it)",
                    now,
                    IN_FLIGHT,
                    self.limits.max_attempts,
                ),
            )
            poisoned = cur.rowcount
            if poisoned:
                await self._db.execute(
                    "DELETE FROM messages WHERE state = ? AND attempts >= ?",
                    (IN_FLIGHT, self.limits.max_attempts),
                )
            cur = await self._db.execute(
                "UPDATE messages SET state = ? WHERE state = ?", (QUEUED, IN_FLIGHT)
            )
            requeued = cur.rowcount
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        if requeued:
            log.info("mailbox_redelivery count=%d path=%s", requeued, self.path)
        if poisoned:
            log.warning("mailbox_dead_lettered_on_start count=%d path=%s", poisoned, self.path)

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._wake.set()
            await self._writer
        await self._db.close()

    # -- the operations --------------------------------------------------------

    def _submit(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        if self._closed:
            raise RuntimeError("mailbox is closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._ops.append(_Op(kind, args, fut))
        self._wake.set()
        return fut

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
        """Commits one request; raises ResourceExhausted past the bound (MBX-5)."""
        now = time.time() if now is None else now
        result: EnqueueResult = await self._submit(
            "enqueue", caller, request_id, priority, payload_type, envelope, now
        )
        return result

    async def dequeue(self, limit: int = 32) -> list[MailboxRecord]:
        records: list[MailboxRecord] = await self._submit("dequeue", limit)
        return records

    async def wait_for_work(self, timeout: float | None = None) -> None:
        """Waits until something may be queued (or ``timeout`` passed: another process,
        such as ``actr dlq replay``, may have queued rows this one was not told of)."""
        if timeout is None:
            await self._work.wait()
            return
        try:
            await asyncio.wait_for(self._work.wait(), timeout)
        except TimeoutError:
            self._work.set()

    def has_work(self) -> bool:
        return self._work.is_set()

    async def ack(
        self, record: MailboxRecord, answer: bytes | None, now: float | None = None
    ) -> None:
        """Deletes the row and records its answer in one transaction (MBX-2, MBX-3)."""
        await self._submit("ack", record, answer, time.time() if now is None else now)

    def ack_nowait(
        self, record: MailboxRecord, answer: bytes | None, now: float | None = None
    ) -> asyncio.Future[None]:
        """``ack`` without waiting: the future resolves once the ack is committed."""
        return self._submit("ack", record, answer, time.time() if now is None else now)

    async def requeue(self, record: MailboxRecord) -> None:
        """Puts an in-flight row back (the runtime stops before answering it)."""
        await self._submit("requeue", record)

    async def dead_letter(self, record: MailboxRecord, reason: str) -> None:
        """Moves a row that cannot be handled to the dead letters (MBX-4)."""
        await self._submit("dead_letter", record, reason, time.time())

    async def prune_answers(self, now: float | None = None) -> int:
        pruned: int = await self._submit("prune", time.time() if now is None else now)
        return pruned

    # -- the writer --------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            ops, self._ops = self._ops, []
            if ops:
                await self._run_batch(ops)
            elif self._closed:
                return
            if time.time() - self._last_prune > min(60.0, max(1.0, self.dedup_window / 10)):
                self._last_prune = time.time()
                self._ops.append(
                    _Op("prune", (time.time(),), asyncio.get_running_loop().create_future())
                )
                self._wake.set()

    async def _run_batch(self, ops: list[_Op]) -> None:
        results: list[Any] = [None] * len(ops)
        db = self._db
        count, size = self.count, self.bytes
        try:
            async with self._txn:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    count, size = await self._apply(ops, results, count, size)
                    await db.execute("COMMIT")
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
        except Exception as e:
            log.exception("mailbox_batch_failed ops=%d", len(ops))
            for op in ops:
                if not op.future.done():
                    op.future.set_exception(e)
            return
        self.count, self.bytes = count, size
        self._check_backpressure()
        for op, result in zip(ops, results, strict=True):
            if op.future.done():
                continue
            if isinstance(result, BaseException):
                op.future.set_exception(result)
            else:
                op.future.set_result(result)

    async def _apply(
        self, ops: list[_Op], results: list[Any], count: int, size: int
    ) -> tuple[int, int]:
        """Runs the batch's operations, in order of kind, inside one transaction."""
        db = self._db
        by_kind: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            by_kind.setdefault(op.kind, []).append(i)

        acks = [ops[i] for i in by_kind.get("ack", [])]
        if acks:
            await db.executemany(
                "DELETE FROM messages WHERE seq = ?", [(op.args[0].seq,) for op in acks]
            )
            await db.executemany(
                "INSERT OR REPLACE INTO answers (caller, request_id, answer, answered_at)"
                " VALUES (?, ?, ?, ?)",
                [(op.args[0].caller, op.args[0].request_id, op.args[1], op.args[2]) for op in acks],
            )
            count -= len(acks)
            size -= sum(len(op.args[0].envelope) for op in acks)

        dead = [ops[i] for i in by_kind.get("dead_letter", [])]
        if dead:
            await db.executemany(
                f"INSERT OR REPLACE INTO dead_letters ({_COLUMNS}, reason, failed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*_row(op.args[0]), op.args[1], op.args[2]) for op in dead],
            )
            await db.executemany(
                "DELETE FROM messages WHERE seq = ?", [(op.args[0].seq,) for op in dead]
            )
            count -= len(dead)
            size -= sum(len(op.args[0].envelope) for op in dead)

        requeues = [ops[i] for i in by_kind.get("requeue", [])]
        if requeues:
            await db.executemany(
                "UPDATE messages SET state = ? WHERE seq = ?",
                [(QUEUED, op.args[0].seq) for op in requeues],
            )
            self._work.set()

        enq = by_kind.get("enqueue", [])
        if enq:
            count, size = await self._apply_enqueues(ops, enq, results, count, size)

        for i in by_kind.get("prune", []):
            cur = await db.execute(
                "DELETE FROM answers WHERE answered_at < ?", (ops[i].args[0] - self.dedup_window,)
            )
            results[i] = cur.rowcount

        for i in by_kind.get("dequeue", []):
            results[i] = await self._claim(ops[i].args[0])
        return count, size

    async def _apply_enqueues(
        self, ops: list[_Op], indexes: list[int], results: list[Any], count: int, size: int
    ) -> tuple[int, int]:
        db = self._db
        keys = [(ops[i].args[0], ops[i].args[1]) for i in indexes]
        answered = await _lookup(
            db, "SELECT caller, request_id, answer, answered_at FROM answers", keys
        )
        pending = await _lookup(db, "SELECT caller, request_id, 0, 0 FROM messages", keys)
        rows = []
        seen: set[tuple[str, str]] = set()
        for i, key in zip(indexes, keys, strict=True):
            caller, request_id, priority, payload_type, envelope, now = ops[i].args
            hit = answered.get(key)
            if hit is not None and now - hit[1] <= self.dedup_window:
                results[i] = EnqueueResult(Outcome.DUPLICATE_ANSWERED, answer=hit[0])
                continue
            if key in pending or key in seen:
                results[i] = EnqueueResult(Outcome.DUPLICATE_PENDING)
                continue
            limits = self.limits
            if count + 1 > limits.max_messages or size + len(envelope) > limits.max_bytes:
                self.counters["refused_full"] += 1
                results[i] = ResourceExhausted(
                    f"mailbox full ({count} messages, {size} bytes;"
                    f" bound {limits.max_messages} messages, {limits.max_bytes} bytes)"
                )
                continue
            seen.add(key)
            if hit is not None:  # an expired answer record: the request runs again
                await db.execute("DELETE FROM answers WHERE caller = ? AND request_id = ?", key)
            rows.append((priority, caller, request_id, payload_type, envelope, now))
            count += 1
            size += len(envelope)
            results[i] = EnqueueResult(Outcome.QUEUED)
        if rows:
            await db.executemany(
                "INSERT INTO messages (priority, caller, request_id, payload_type, envelope,"
                " accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            self._work.set()
        return count, size

    async def _claim(self, limit: int) -> list[MailboxRecord]:
        rows = await self._db.execute_fetchall(
            "UPDATE messages SET state = ?, attempts = attempts + 1 WHERE seq IN"
            " (SELECT seq FROM messages WHERE state = ? ORDER BY priority, seq LIMIT ?)"
            f" RETURNING {_COLUMNS}",
            (IN_FLIGHT, QUEUED, limit),
        )
        records = sorted((MailboxRecord(*r) for r in rows), key=lambda r: (r.priority, r.seq))
        if len(records) < limit:
            self._work.clear()
        return records

    def _check_backpressure(self) -> None:
        limits = self.limits
        share = max(self.count / limits.max_messages, self.bytes / limits.max_bytes)
        high = share >= limits.backpressure_at
        if high == self.backpressure:
            return
        self.backpressure = high
        if high:
            self.counters["backpressure_fired"] += 1
            log.warning("mailbox_backpressure on count=%d bytes=%d", self.count, self.bytes)
        else:
            log.info("mailbox_backpressure off count=%d bytes=%d", self.count, self.bytes)
        if self.on_backpressure is not None:
            self.on_backpressure(high)

    # -- reading (also for tools on a running daemon's file) ----------------------

    async def stats(self, now: float | None = None) -> MailboxStats:
        now = time.time() if now is None else now
        rows = await self._db.execute_fetchall(
            "SELECT state, priority, COUNT(*), MIN(accepted_at) FROM messages"
            " GROUP BY state, priority"
        )
        queued = in_flight = 0
        by_priority: dict[int, int] = {}
        oldest: float | None = None
        for state, priority, count, first in rows:
            if state == QUEUED:
                queued += count
                by_priority[priority] = by_priority.get(priority, 0) + count
            else:
                in_flight += count
            oldest = first if oldest is None else min(oldest, first)
        (dead,) = next(iter(await self._db.execute_fetchall("SELECT COUNT(*) FROM dead_letters")))
        (kept,) = next(iter(await self._db.execute_fetchall("SELECT COUNT(*) FROM answers")))
        return MailboxStats(
            queued,
            in_flight,
            by_priority,
            None if oldest is None else now - oldest,
            int(dead),
            int(kept),
        )

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_COLUMNS}, reason, failed_at FROM dead_letters ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [DeadLetter(MailboxRecord(*r[:8]), r[8], r[9]) for r in rows]

    async def replay(self, seqs: Iterable[int] | None = None) -> int:
        """Moves dead letters (all, or these) back to the queue with a fresh count."""
        where, args = _seq_filter(seqs)
        async with self._txn:
            return await self._replay(where, args)

    async def _replay(self, where: str, args: tuple[int, ...]) -> int:
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = await self._db.execute(
                f"INSERT OR IGNORE INTO messages ({_COLUMNS}, state)"
                " SELECT seq, priority, caller, request_id, payload_type, envelope, 0,"
                f" accepted_at, {QUEUED} FROM dead_letters{where}",
                args,
            )
            moved = cur.rowcount
            await self._db.execute(f"DELETE FROM dead_letters{where}", args)
            rows = await self._db.execute_fetchall(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(envelope)), 0) FROM messages"
            )
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        count, size = next(iter(rows))
        self.count, self.bytes = int(count), int(size)
        if moved:
            self._work.set()
        return moved

    async def purge(self, seqs: Iterable[int] | None = None) -> int:
        where, args = _seq_filter(seqs)
        async with self._txn:
            cur = await self._db.execute(f"DELETE FROM dead_letters{where}", args)
        return cur.rowcount


def _row(r: MailboxRecord) -> tuple[Any, ...]:
    return (
        r.seq,
        r.priority,
        r.caller,
        r.request_id,
        r.payload_type,
        r.envelope,
        r.attempts,
        r.accepted_at,
    )


def _seq_filter(seqs: Iterable[int] | None) -> tuple[str, tuple[int, ...]]:
    if seqs is None:
        return "", ()
    chosen = tuple(int(s) for s in seqs)
    if not chosen:
        return " WHERE 0", ()
    return f" WHERE seq IN ({','.join('?' * len(chosen))})", chosen


async def _lookup(
    db: aiosqlite.Connection, select: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[Any, Any]]:
    """Rows of ``select`` whose (caller, request_id) is among ``keys``: one query per
    chunk, on the (caller, request_id) index."""
    found: dict[tuple[str, str], tuple[Any, Any]] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start : start + _IN_CHUNK]
        values = ",".join("(?, ?)" for _ in chunk)
        flat = [part for key in chunk for part in key]
        rows = await db.execute_fetchall(
            f"{select} WHERE (caller, request_id) IN (VALUES {values})", flat
        )
        for caller, request_id, a, b in rows:
            found[(caller, request_id)] = (a, b)
    return found
