"""The durable mailbox: a priority queue of inbound requests on SQLite (aiosqlite, WAL).

PROTOCOL.md MBX-1..5 and ENV-6:
- ``enqueue`` returns once the request is committed (MBX-1);
- ``dequeue`` marks rows in flight, HIGH before NORMAL, FIFO within (MBX-2);
- ``ack`` deletes the row and stores its answer in the same transaction, so a
  duplicate of an answered request is answered from the store (ENV-6);
- on open, rows a dead process left in flight go back to the queue (MBX-3), or
  to the dead letters once their handling has failed ``max_attempts`` times
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
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

import aiosqlite

from actr import data_dir
from actr.errors import ResourceExhausted
from actr.mailbox_store import (
    COLUMNS,
    IN_FLIGHT,
    QUEUED,
    SCHEMA,
    MailboxRecord,
    all_keys,
    bury,
    count_rows,
    execute_rows,
    lookup,
    migrate,
    record_order,
    replay_rows,
    seq_filter,
    transaction,
    untried_run,
)

__all__ = [
    "IN_FLIGHT",
    "QUEUED",
    "DeadLetter",
    "EnqueueResult",
    "Mailbox",
    "MailboxLimits",
    "MailboxRecord",
    "MailboxStats",
    "Outcome",
]

log = logging.getLogger(__name__)


class Outcome(Enum):
    QUEUED = "queued"
    DUPLICATE_PENDING = "duplicate_pending"  # queued or running: not enqueued again
    DUPLICATE_ANSWERED = "duplicate_answered"  # answer the stored result


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    outcome: Outcome
    answer: bytes | None = None


_QUEUED = EnqueueResult(Outcome.QUEUED)
_PARKED = object()  # the result of a waiting dequeue that found nothing
_DUPLICATE_PENDING = EnqueueResult(Outcome.DUPLICATE_PENDING)


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


class _Op(NamedTuple):
    kind: str
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


class Mailbox:
    def __init__(self, db: aiosqlite.Connection, path: Path, limits: MailboxLimits) -> None:
        self._db = db
        self.path = path
        self.limits = limits
        self.count = 0  # rows in messages (queued + in flight)
        # (caller, request_id) of every row in messages, bounded like the table:
        # the duplicate check for queued and running requests needs no query.
        self._keys: set[tuple[str, str]] = set()
        self._data_version = -1
        self.bytes = 0
        self.on_backpressure: Callable[[bool], None] | None = None
        self.backpressure = False
        self.counters: dict[str, int] = {"backpressure_fired": 0, "refused_full": 0}
        self._ops: list[_Op] = []
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._writer: asyncio.Task[None] | None = None
        # One transaction at a time on the connection: the writer's batches, and the
        # dead-letter tools' own transactions.
        self._txn = asyncio.Lock()
        self._closed = False
        self._last_prune = time.time()
        # Dequeues waiting for rows (``wait=True``): they join every batch.
        self._parked: list[_Op] = []
        # Rows a dead process left in flight (found on open) until they are done:
        # each is handed out alone (see untried_run).
        self._suspects: set[int] = set()
        self.poll_interval = 5.0

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
        # Request payloads and stored answers: owner-only (see actr/data_dir.py).
        path.parent.mkdir(mode=data_dir.DIR_MODE, parents=True, exist_ok=True)
        data_dir.create_private(path)
        limits = limits or MailboxLimits()
        if dedup_window is not None:
            limits.dedup_window = dedup_window
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash (the case MBX-1 is about);
        # only an OS crash or power loss can roll back the last commits.
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(SCHEMA)
        await db._execute(migrate, db._conn)  # type: ignore[no-untyped-call]
        box = cls(db, path, limits)
        if recover:
            await box._recover()
        await db._execute(box._load, db._conn)  # type: ignore[no-untyped-call]
        box._writer = asyncio.create_task(box._write_loop())
        return box

    def _load(self, db: sqlite3.Connection) -> None:
        """Reads the row count, size, keys and data version in one snapshot, so a
        commit by another process after it is seen by the first batch."""
        with transaction(db, "BEGIN"):
            self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
            self.count, self.bytes = count_rows(db)
            self._keys = all_keys(db)

    async def _recover(self) -> None:
        requeued, poisoned = await self._db._execute(  # type: ignore[no-untyped-call]
            self._recover_sync, self._db._conn, time.time()
        )
        if requeued:
            log.info("mailbox_redelivery count=%d path=%s", requeued, self.path)
        if poisoned:
            log.warning("mailbox_dead_lettered_on_start count=%d path=%s", poisoned, self.path)

    def _recover_sync(self, db: sqlite3.Connection, now: float) -> tuple[int, int]:
        with transaction(db):
            # A row in flight when its process died: a failed handling (MBX-4).
            db.execute("UPDATE messages SET failures = failures + 1 WHERE state = ?", (IN_FLIGHT,))
            rows = db.execute(
                f"SELECT {COLUMNS} FROM messages WHERE state = ? AND failures >= ?",
                (IN_FLIGHT, self.limits.max_attempts),
            ).fetchall()
            reason = (
                f"failed {self.limits.max_attempts} times without an answer"
                " (the process died while handling it)"
            )
            bury(db, [MailboxRecord(*r) for r in rows], reason, now)
            back = db.execute(
                "UPDATE messages SET state = ? WHERE state = ? RETURNING seq", (QUEUED, IN_FLIGHT)
            ).fetchall()
        self._suspects = {seq for (seq,) in back}
        return len(back), len(rows)

    def recovered(self, record: MailboxRecord) -> bool:
        """Whether the row was in flight when a process died (it is handed out alone)."""
        return record.seq in self._suspects

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._wake.set()
            await self._writer
        for op in self._parked:
            if not op.future.done():
                op.future.set_result([])
        self._parked = []
        await self._db.close()

    # -- the operations --------------------------------------------------------

    def _submit(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        if self._closed:
            raise RuntimeError("mailbox is closed")
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._ops.append(_Op(kind, args, fut))
        if not self._wake.is_set():
            self._wake.set()
        return fut

    def enqueue(
        self,
        *,
        caller: str,
        request_id: str,
        priority: int,
        payload_type: int,
        envelope: bytes,
        now: float | None = None,
    ) -> asyncio.Future[EnqueueResult]:
        """Commits one request: await the result, which resolves after the commit;
        raises ResourceExhausted past the bound (MBX-5). A plain function returning
        the future, not a coroutine: one frame less per message on the hot path."""
        now = time.time() if now is None else now
        return self._submit("enqueue", caller, request_id, priority, payload_type, envelope, now)

    def dequeue(
        self, limit: int = 32, *, wait: bool = False
    ) -> asyncio.Future[list[MailboxRecord]]:
        """Marks up to ``limit`` rows in flight, HIGH first, FIFO within (MBX-2). A
        row a dead process left in flight (``recovered``) comes alone.

        ``wait``: when nothing is queued, the future stays pending (a long poll) and
        is served by the first later batch that finds rows, so a request arriving at
        an idle actor is queued and handed out in one transaction, one commit. Rows
        queued by another process (``actr dlq replay``) are found within
        ``poll_interval``. Cancelling the future is safe: rows a cancelled dequeue
        took go back to the queue with their attempt given back.
        """
        return self._submit("dequeue", limit, wait)

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

    async def requeue(self, record: MailboxRecord, *, started: bool = True) -> None:
        """Puts an in-flight row back (the runtime stops before answering it). A row
        whose handler never ran gives its attempt back: it failed nothing."""
        await self._submit("requeue", record, started)

    async def fail(self, record: MailboxRecord, reason: str) -> bool:
        """Counts a failed handling of an in-flight row (MBX-4): it goes back to the
        queue, or to the dead letters once it has failed ``max_attempts`` times
        (returns True then). A stop that puts a row back is not a failure."""
        dead: bool = await self._submit("fail", record, reason, time.time())
        return dead

    async def dead_letter(self, record: MailboxRecord, reason: str) -> None:
        """Moves a row that cannot be handled to the dead letters (MBX-4)."""
        await self._submit("dead_letter", record, reason, time.time())

    async def prune_answers(self, now: float | None = None) -> int:
        pruned: int = await self._submit("prune", time.time() if now is None else now)
        return pruned

    # -- the writer --------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            if not self._ops:
                if self._closed:
                    return
                if self._parked:
                    # Another process may queue rows (a dlq replay): look now and then.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                else:
                    await self._wake.wait()
            self._wake.clear()
            ops, self._ops = self._ops, []
            if not self._closed:  # close() answers parked dequeues with nothing
                ops += [op for op in self._parked if not op.future.done()]
                self._parked = []
            if ops:
                await self._run_batch(ops)
            if time.time() - self._last_prune > min(60.0, max(1.0, self.dedup_window / 10)):
                self._last_prune = time.time()
                self._ops.append(
                    _Op("prune", (time.time(),), asyncio.get_running_loop().create_future())
                )
                self._wake.set()

    async def _run_batch(self, ops: list[_Op]) -> None:
        jobs = [(op.kind, op.args) for op in ops]
        try:
            async with self._txn:
                # The whole batch is one call on aiosqlite's connection thread (its own
                # mechanism, as behind its execute()): one thread hop per batch, not
                # one per statement, which is what made per-message costs dominate.
                results, count, size = await self._db._execute(  # type: ignore[no-untyped-call]
                    self._apply_batch, self._db._conn, jobs, self.count, self.bytes
                )
        except Exception as e:
            if len(ops) > 1:
                # One failing operation (a large row on a full disk) must not fail the
                # others with it: each goes again in a transaction of its own.
                log.warning("mailbox_batch_failed ops=%d error=%r retry=one_by_one", len(ops), e)
                for op in ops:
                    await self._run_batch([op])
                return
            log.error("mailbox_op_failed kind=%s error=%r", ops[0].kind, e)
            if not ops[0].future.done():
                ops[0].future.set_exception(e)
            return
        self.count, self.bytes = count, size
        try:
            self._check_backpressure()
        except Exception:
            # The hook is the owner's code; its failure must not stop the writer.
            log.exception("backpressure_hook_failed")
        for op, result in zip(ops, results, strict=True):
            if result is _PARKED:
                self._parked.append(op)
                continue
            if op.future.done():
                if op.kind == "dequeue" and result:
                    # Its waiter is gone (cancelled): the rows go back to the queue, and
                    # the attempt this dequeue counted is given back (nothing ran them).
                    for record in result:
                        self.give_back(record)
                continue
            if isinstance(result, BaseException):
                op.future.set_exception(result)
            else:
                op.future.set_result(result)

    def give_back(self, record: MailboxRecord, delay: float = 0.5) -> None:
        """Requeues, without waiting, a row that no handler got, its attempt given
        back; tried again (backing off) while the database fails. It is taken while
        the mailbox closes too; once the writer is gone the row stays in flight, and
        the next start's recovery requeues it."""
        if self._writer is None or self._writer.done():
            return

        def done(fut: asyncio.Future[None]) -> None:
            if not fut.cancelled() and fut.exception() is not None:
                self._loop.call_later(delay, self.give_back, record, min(delay * 2, 30.0))

        fut: asyncio.Future[None] = self._loop.create_future()
        fut.add_done_callback(done)
        self._ops.append(_Op("requeue", (record, False), fut))
        self._wake.set()

    def _apply_batch(
        self, db: sqlite3.Connection, jobs: list[tuple[str, tuple[Any, ...]]], count: int, size: int
    ) -> tuple[list[Any], int, int]:
        """Runs on the connection thread: the batch's operations in one transaction.
        Returns the results and the new row count and size. Dequeues come last, so
        they see what the same batch queued."""
        results: list[Any] = [None] * len(jobs)
        by_kind: dict[str, list[int]] = {}
        for i, (kind, _) in enumerate(jobs):
            by_kind.setdefault(kind, []).append(i)
        try:
            with transaction(db):
                if self._data_version_changed(db):
                    # Another process (a dlq tool) committed, or a batch failed: what we
                    # keep in memory is stale.
                    self._keys = all_keys(db)
                    count, size = count_rows(db)
                acks = [jobs[i][1] for i in by_kind.get("ack", [])]
                gone = [a[0] for a in acks]  # rows this batch removed
                recount = False
                if acks:
                    execute_rows(
                        db,
                        "INSERT OR REPLACE INTO answers (caller, request_id, answer, answered_at)"
                        " VALUES ",
                        "",
                        [(a[0].caller, a[0].request_id, a[1], a[2]) for a in acks],
                    )
                    removed = execute_rows(
                        db, "DELETE FROM messages WHERE seq IN (", ")", [(a[0].seq,) for a in acks]
                    )
                    recount = removed != len(acks)
                for i in by_kind.get("dead_letter", []):
                    record, reason, now = jobs[i][1]
                    gone += bury(db, [record], reason, now)
                for i in by_kind.get("fail", []):
                    record, reason, now = jobs[i][1]
                    failed = db.execute(
                        "UPDATE messages SET failures = failures + 1, state = ?"
                        " WHERE seq = ? AND state = ? RETURNING failures",
                        (QUEUED, record.seq, IN_FLIGHT),
                    ).fetchone()
                    results[i] = bool(failed and failed[0] >= self.limits.max_attempts)
                    if results[i]:
                        text = f"failed {failed[0]} times, the last: {reason}"
                        gone += bury(db, [record], text, now)
                keys = self._keys
                for record in gone:
                    keys.discard((record.caller, record.request_id))
                    self._suspects.discard(record.seq)
                if recount:
                    # An ack found its row gone already (acked twice): read what is there.
                    self._keys = all_keys(db)
                    count, size = count_rows(db)
                else:
                    count -= len(gone)
                    size -= sum(len(record.envelope) for record in gone)

                requeues = [jobs[i][1] for i in by_kind.get("requeue", [])]
                if requeues:
                    db.executemany(
                        "UPDATE messages SET state = ?, attempts = attempts - ?"
                        " WHERE seq = ? AND state = ?",
                        [(QUEUED, 0 if a[1] else 1, a[0].seq, IN_FLIGHT) for a in requeues],
                    )

                enq = by_kind.get("enqueue", [])
                if enq:
                    count, size = self._apply_enqueues(db, jobs, enq, results, count, size)

                for i in by_kind.get("prune", []):
                    cur = db.execute(
                        "DELETE FROM answers WHERE answered_at < ?",
                        (jobs[i][1][0] - self.dedup_window,),
                    )
                    results[i] = cur.rowcount

                for i in by_kind.get("dequeue", []):
                    limit, wait = jobs[i][1]
                    rows = db.execute(
                        "UPDATE messages SET state = ?, attempts = attempts + 1 WHERE seq IN"
                        " (SELECT seq FROM messages WHERE state = ? ORDER BY priority, seq LIMIT ?)"
                        f" RETURNING {COLUMNS}",
                        (IN_FLIGHT, QUEUED, untried_run(db, limit, self._suspects)),
                    ).fetchall()
                    records = sorted(map(MailboxRecord._make, rows), key=record_order)
                    results[i] = _PARKED if wait and not records else records
        except BaseException:
            # What this batch changed in memory (keys) is void: the next batch reloads
            # it all.
            self._data_version = -1
            raise
        return results, count, size

    def _apply_enqueues(
        self,
        db: sqlite3.Connection,
        jobs: list[tuple[str, tuple[Any, ...]]],
        indexes: list[int],
        results: list[Any],
        count: int,
        size: int,
    ) -> tuple[int, int]:
        pending = self._keys
        limits = self.limits
        rows: list[tuple[Any, ...]] = []
        taken: list[int] = []
        for i in indexes:
            caller, request_id, priority, payload_type, envelope, now = jobs[i][1]
            key = (caller, request_id)
            if key in pending:
                results[i] = _DUPLICATE_PENDING
                continue
            if count + 1 > limits.max_messages or size + len(envelope) > limits.max_bytes:
                self.counters["refused_full"] += 1
                results[i] = ResourceExhausted(
                    f"mailbox full ({count} messages, {size} bytes;"
                    f" bound {limits.max_messages} messages, {limits.max_bytes} bytes)"
                )
                continue
            pending.add(key)
            count += 1
            size += len(envelope)
            results[i] = _QUEUED
            taken.append(i)
            rows.append(
                (
                    priority,
                    caller,
                    request_id,
                    payload_type,
                    envelope,
                    now,
                )
            )
        if not rows:
            return count, size
        # A request answered within the window is not inserted (ENV-6); the common
        # case, no such duplicate, costs no lookup.
        # Rows go in in the order given (FIFO): a VALUES list is read in order.
        inserted = execute_rows(
            db,
            "INSERT OR IGNORE INTO messages (priority, caller, request_id, payload_type,"
            " envelope, accepted_at) SELECT * FROM (VALUES ",
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM answers AS a WHERE a.caller = v.column2"
            " AND a.request_id = v.column3 AND a.answered_at >= v.column6 - ?)",
            rows,
            (self.dedup_window,),
        )
        if inserted < len(rows):
            # Rare: some were answered within the window. (A row queued by another
            # process cannot be the reason: the keys were reloaded when it committed,
            # and we hold the write lock since.)
            keys = [(jobs[i][1][0], jobs[i][1][1]) for i in taken]
            answered = lookup(
                db, "SELECT caller, request_id, answer, answered_at FROM answers", keys
            )
            for i, key in zip(taken, keys, strict=True):
                hit = answered.get(key)
                if hit is not None and hit[1] >= jobs[i][1][5] - self.dedup_window:
                    results[i] = EnqueueResult(Outcome.DUPLICATE_ANSWERED, answer=hit[0])
                    pending.discard(key)
                    count -= 1
                    size -= len(jobs[i][1][4])
        return count, size

    def _data_version_changed(self, db: sqlite3.Connection) -> bool:
        """Whether another connection committed since this one last looked (or a
        failed batch left the in-memory state unknown: version -1)."""
        (version,) = db.execute("PRAGMA data_version").fetchone()
        changed = version != self._data_version
        self._data_version = version
        return bool(changed)

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

    async def dead_letters(
        self, limit: int = 100, seqs: Iterable[int] | None = None
    ) -> list[DeadLetter]:
        """The dead letters (all, or these), oldest first, at most ``limit``."""
        where, args = seq_filter(seqs)
        rows = await self._db.execute_fetchall(
            f"SELECT {COLUMNS}, reason, failed_at FROM dead_letters{where} ORDER BY seq LIMIT ?",
            (*args, limit),
        )
        return [DeadLetter(MailboxRecord(*r[:8]), r[8], r[9]) for r in rows]

    async def replay(self, seqs: Iterable[int] | None = None) -> int:
        """Moves dead letters (all, or these) back to the queue with a fresh count."""
        where, args = seq_filter(seqs)
        async with self._txn:
            return await self._replay(where, args)

    async def _replay(self, where: str, args: tuple[int, ...]) -> int:
        moved, skipped, keys, (count, size) = await self._db._execute(  # type: ignore[no-untyped-call]
            replay_rows, self._db._conn, where, args
        )
        if skipped:
            log.info("dlq_replay_skipped_answered count=%d", skipped)
        self._keys, self.count, self.bytes = keys, count, size
        if moved:
            self._wake.set()  # a batch now serves the parked dequeues
        return int(moved)

    async def purge(self, seqs: Iterable[int] | None = None) -> int:
        where, args = seq_filter(seqs)
        async with self._txn:
            cur = await self._db.execute(f"DELETE FROM dead_letters{where}", args)
        return cur.rowcount
