"""The durable mailbox: a priority queue of inbound requests on SQLite (WAL).

The rules (PROTOCOL.md MBX-1..5, ENV-6) are ``actr.mailbox_rules``'s, the SQL
``actr.mailbox_store``'s; this module is the asyncio layer around them:

- ``enqueue`` returns once the request is committed (MBX-1);
- group commit: every write (enqueue, dequeue, ack, requeue, fail, dead letter)
  is an operation on a list that one writer task drains; each drained batch is
  one ``MailboxCore.apply``, one transaction, run as one call on the
  connection's thread, and each caller's future resolves only after that commit.
  Concurrent producers share commits instead of paying one each;
- a ``dequeue(wait=True)`` that finds nothing stays pending (a long poll) and
  joins every later batch until one hands it rows;
- the backpressure hook (MBX-5) and the periodic prune of stored answers.

The connection is a plain ``sqlite3`` connection on a thread of our own
(``actr.sqlite_thread``), not aiosqlite: a batch must be one hop to the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from actr import data_dir
from actr.envelopes import dead_letter_answer
from actr.errors import ResourceExhausted
from actr.mailbox_rules import (
    Ack,
    Bury,
    Dequeue,
    Enqueue,
    EnqueueResult,
    Fail,
    MailboxCore,
    MailboxLimits,
    Op,
    Outcome,
    Prune,
    Requeue,
)
from actr.mailbox_store import (
    AnswerFor,
    DeadLetter,
    MailboxRecord,
    MailboxStats,
    RowState,
    prepare,
    purge_dead_letters,
    read_dead_letters,
    read_stats,
)
from actr.sqlite_thread import SqliteThread

__all__ = [
    "DeadLetter",
    "EnqueueResult",
    "Mailbox",
    "MailboxLimits",
    "MailboxRecord",
    "MailboxStats",
    "Outcome",
    "RowState",
]

log = logging.getLogger(__name__)

_Pending = tuple[Op, asyncio.Future[Any]]


class Mailbox:
    def __init__(self, db: SqliteThread, path: Path, core: MailboxCore) -> None:
        self._db = db
        self.path = path
        self._core = core
        self.on_backpressure: Callable[[bool], None] | None = None
        self.backpressure = False
        self.counters: dict[str, int] = {"backpressure_fired": 0, "refused_full": 0}
        self._ops: list[_Pending] = []
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._last_prune = time.time()
        # Dequeues waiting for rows (``wait=True``): they join every batch.
        self._parked: list[_Pending] = []
        self.poll_interval = 5.0

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        limits: MailboxLimits | None = None,
        dedup_window: float | None = None,
        recover: bool = True,
        dead_letter_answer: AnswerFor = dead_letter_answer,
    ) -> Mailbox:
        """Opens (creating) the mailbox. ``recover`` (the daemon, not a tool looking at
        a running daemon's file) puts what a dead process left in flight back.
        ``dead_letter_answer(envelope, reason)``: what a duplicate of a dead letter is
        answered (default: INTERNAL "dead-lettered: <reason>" for a REQUEST, MBX-4)."""
        path = Path(path)
        # Request payloads and stored answers: owner-only (see actr/data_dir.py).
        path.parent.mkdir(mode=data_dir.DIR_MODE, parents=True, exist_ok=True)
        data_dir.create_private(path)
        limits = limits or MailboxLimits()
        if dedup_window is not None:
            limits.dedup_window = dedup_window
        db = await SqliteThread.open(path, name="actr-mailbox")
        try:
            await db.call(prepare)
            core = MailboxCore(limits, dead_letter_answer)
            if recover:
                requeued, buried = await db.call(core.recover, time.time())
                if requeued:
                    log.info("mailbox_redelivery count=%d path=%s", requeued, path)
                if buried:
                    log.warning("mailbox_dead_lettered_on_start count=%d path=%s", buried, path)
            await db.call(core.load)
        except BaseException:
            await db.close()
            raise
        box = cls(db, path, core)
        box._writer = asyncio.create_task(box._write_loop())
        return box

    # -- what it holds -----------------------------------------------------------

    @property
    def limits(self) -> MailboxLimits:
        return self._core.limits

    @property
    def dedup_window(self) -> float:
        return self._core.limits.dedup_window

    @property
    def commits(self) -> int:
        """Batches (transactions) committed by the writer."""
        return self._core.commits

    @property
    def parked(self) -> int:
        """Waiting dequeues (``wait=True``) that found nothing and wait for rows."""
        return len(self._parked)

    @property
    def connection(self) -> SqliteThread:
        """The connection and its thread (tools and tests: ``call``, ``execute``)."""
        return self._db

    @property
    def closed(self) -> bool:
        return self._closed

    def recovered(self, record: MailboxRecord) -> bool:
        """Whether the row was in flight when a process died (it is handed out alone)."""
        return self._core.recovered(record.seq)

    async def close(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._wake.set()
            await self._writer
        for _, fut in self._parked:
            if not fut.done():
                fut.set_result([])
        self._parked = []
        await self._db.close()

    # -- the operations ----------------------------------------------------------

    def _submit(self, op: Op) -> asyncio.Future[Any]:
        if self._closed:
            raise RuntimeError("mailbox is closed")
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._ops.append((op, fut))
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
        return self._submit(Enqueue(caller, request_id, priority, payload_type, envelope, now))

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
        return self._submit(Dequeue(limit, wait))

    async def ack(
        self, record: MailboxRecord, answer: bytes | None, now: float | None = None
    ) -> None:
        """Deletes the row and records its answer in one transaction (MBX-2, MBX-3)."""
        await self.ack_nowait(record, answer, now)

    def ack_nowait(
        self, record: MailboxRecord, answer: bytes | None, now: float | None = None
    ) -> asyncio.Future[None]:
        """``ack`` without waiting: the future resolves once the ack is committed."""
        return self._submit(Ack(record, answer, time.time() if now is None else now))

    async def requeue(self, record: MailboxRecord, *, started: bool = True) -> None:
        """Puts an in-flight row back (the runtime stops before answering it). A row
        whose handler never ran gives its attempt back: it failed nothing."""
        await self._submit(Requeue(record, started))

    async def fail(self, record: MailboxRecord, reason: str) -> bool:
        """Counts a failed handling of an in-flight row (MBX-4): it goes back to the
        queue, or to the dead letters once it has failed ``max_attempts`` times
        (returns True then). A stop that puts a row back is not a failure."""
        dead: bool = await self._submit(Fail(record, reason, time.time()))
        return dead

    async def dead_letter(self, record: MailboxRecord, reason: str) -> None:
        """Moves a row that cannot be handled to the dead letters (MBX-4)."""
        await self._submit(Bury(record, reason, time.time()))

    async def prune_answers(self, now: float | None = None) -> int:
        pruned: int = await self._submit(Prune(time.time() if now is None else now))
        return pruned

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
        self._ops.append((Requeue(record, False), fut))
        self._wake.set()

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
            batch, self._ops = self._ops, []
            if not self._closed:  # close() answers parked dequeues with nothing
                batch += [p for p in self._parked if not p[1].done()]
                self._parked = []
            if batch:
                await self._run_batch(batch)
            now = time.time()
            if now - self._last_prune > min(60.0, max(1.0, self.dedup_window / 10)):
                self._last_prune = now
                self._ops.append((Prune(now), self._loop.create_future()))
                self._wake.set()

    async def _run_batch(self, batch: list[_Pending]) -> None:
        try:
            results = await self._db.submit(self._core.apply, [op for op, _ in batch])
        except Exception as e:
            if len(batch) > 1:
                # One failing operation (a large row on a full disk) must not fail the
                # others with it: each goes again in a transaction of its own.
                log.warning("mailbox_batch_failed ops=%d error=%r retry=one_by_one", len(batch), e)
                for one in batch:
                    await self._run_batch([one])
                return
            op, fut = batch[0]
            log.error("mailbox_op_failed op=%s error=%r", type(op).__name__, e)
            if not fut.done():
                fut.set_exception(e)
            return
        try:
            self._check_backpressure()
        except Exception:
            # The hook is the owner's code; its failure must not stop the writer.
            log.exception("backpressure_hook_failed")
        for (op, fut), result in zip(batch, results, strict=True):
            if type(op) is Dequeue:
                if fut.done():
                    # Its waiter is gone (cancelled): the rows go back to the queue, and
                    # the attempt this dequeue counted is given back (nothing ran them).
                    for record in result:
                        self.give_back(record)
                    continue
                if op.wait and not result:
                    self._parked.append((op, fut))
                    continue
            if isinstance(result, ResourceExhausted):
                self.counters["refused_full"] += 1
            if fut.done():
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

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

    # -- reading and the dead-letter tools (also on a running daemon's file) ---------

    async def stats(self, now: float | None = None) -> MailboxStats:
        return await self._db.call(read_stats, time.time() if now is None else now)

    async def dead_letters(
        self, limit: int = 100, seqs: Iterable[int] | None = None
    ) -> list[DeadLetter]:
        """The dead letters (all, or these), oldest first, at most ``limit``."""
        return await self._db.call(read_dead_letters, seqs, limit)

    async def replay(self, seqs: Iterable[int] | None = None) -> int:
        """Moves dead letters (all, or these) back to the queue with a fresh count."""
        moved, skipped = await self._db.call(self._core.replay, seqs)
        if skipped:
            log.info("dlq_replay_skipped_answered count=%d", skipped)
        if moved:
            self._wake.set()  # a batch now serves the parked dequeues
        return moved

    async def purge(self, seqs: Iterable[int] | None = None) -> int:
        return await self._db.call(purge_dead_letters, seqs)

    # -- figures (last: ``bytes`` would shadow the type in the annotations above) ----

    @property
    def count(self) -> int:
        """Rows queued or in flight, as of the last commit."""
        return self._core.count

    @property
    def bytes(self) -> int:
        """Their envelopes' bytes, as of the last commit."""
        return self._core.bytes
