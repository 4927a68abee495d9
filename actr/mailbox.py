"""The durable mailbox: a priority queue of inbound requests on SQLite (WAL).

The rules (PROTOCOL.md MBX-1..5, ENV-6) are ``actr.mailbox_rules``'s, the SQL
``actr.mailbox_store``'s, the queue in memory ``actr.mailbox_queue``'s; this
module is the asyncio layer around them:

- group commit (``actr.mailbox_batches``): every write (enqueue, dequeue, ack,
  requeue, fail, dead letter) is an operation on a list; what gathered during one
  turn of the event loop is one ``MailboxCore.apply``, one transaction, and each
  caller's future resolves only after that commit (``enqueue``'s: MBX-1);
- where the commit runs is the durability setting (``MailboxLimits.durability``):
  "process" (synchronous=NORMAL) commits on the loop's thread, at the end of the
  turn (~25 us for a small batch, against ~250 us for a hop to a thread and
  back); "power" (synchronous=FULL, an fsync per commit) on the connection's own
  thread, one batch at a time, the next gathering while one commits;
- ``serve``/``want``: the scheduler's rows are pushed to it from the batch that
  commits their in-flight mark, as many as it has room for, from the queue in
  memory; a request reaching an idle actor is queued, marked and handed out by
  one commit. ``dequeue(wait=True)`` is the same as a pull (a long poll);
- rows another process queued (``actr dlq replay``) are found within
  ``poll_interval`` while someone waits for rows;
- the backpressure hook (MBX-5) and the periodic prune of stored answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from actr import data_dir
from actr.envelopes import dead_letter_answer
from actr.mailbox_batches import Batches
from actr.mailbox_journal import StartJournal, journal_path
from actr.mailbox_rules import (
    Ack,
    Bury,
    Dequeue,
    Enqueue,
    EnqueueResult,
    Fail,
    MailboxCore,
    MailboxLimits,
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
from actr.sqlite_thread import InlineSqlite, SqliteConnection, SqliteThread
from actr.wal_checkpoint import Checkpointer

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

_new_enqueue: Callable[[tuple[str, str, int, int, bytes, float]], Enqueue] = partial(
    tuple.__new__, Enqueue
)


class Mailbox(Batches):
    def __init__(self, db: SqliteConnection, path: Path, core: MailboxCore) -> None:
        super().__init__(db, core)
        self.path = path

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
        power = limits.durability == "power"
        db: SqliteConnection
        if power:
            db = await SqliteThread.open(path, name="actr-mailbox")
        else:
            db = await InlineSqlite.open(path)
        checkpointer: Checkpointer | None = None
        try:
            await db.call(prepare, limits.durability)
            if not power:
                # Checkpoints (and their fsync) on a thread, not inside a loop commit.
                await db.execute("PRAGMA wal_autocheckpoint=0")
                checkpointer = Checkpointer(path)
            core = MailboxCore(limits, dead_letter_answer)
            journal: StartJournal | None = None
            if recover:
                started = StartJournal.read(journal_path(path))
                requeued, buried = await db.call(core.recover, time.time(), started)
                if requeued:
                    log.info("mailbox_redelivery count=%d path=%s", requeued, path)
                if buried:
                    log.warning("mailbox_dead_lettered_on_start count=%d path=%s", buried, path)
                # Emptied only now: what it said is committed in the rows.
                journal = StartJournal(journal_path(path))
            await db.call(core.load)
        except BaseException:
            if checkpointer is not None:
                checkpointer.close()
            await db.close()
            raise
        box = cls(db, path, core)
        box.journal, box.checkpointer = journal, checkpointer
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
        """Batches (transactions) committed."""
        return self._core.commits

    @property
    def parked(self) -> int:
        """Waiting dequeues (``wait=True``) that found nothing and wait for rows."""
        return len(self._parked)

    @property
    def connection(self) -> SqliteConnection:
        """The connection (tools and tests: ``call``, ``execute``)."""
        return self._db

    @property
    def closed(self) -> bool:
        return self._closed

    def holds(self, caller: str, request_id: str) -> bool:
        """Whether that request is queued or in flight (X-CALL-1: a cancel finds it)."""
        return self._core.holds(caller, request_id)

    def recovered(self, record: MailboxRecord) -> bool:
        """Whether the row was in flight when a process died (it is handed out alone)."""
        return self._core.recovered(record.seq)

    async def close(self) -> None:
        """Commits what was submitted (and what is given back meanwhile), then closes."""
        if self._closed:
            return
        self._closed = True
        self._consumer, self._want = None, 0
        for timer in (self._poll, self._prune, self._lazy):
            if timer is not None:
                timer.cancel()
        await self._caught_up()
        for _, fut in self._parked:
            if not fut.done():
                fut.set_result([])
        self._parked = []
        self._db_closed = True
        if self.checkpointer is not None:
            self.checkpointer.close()
        await self._db.close()
        if self.journal is not None:
            self.journal.close()

    # -- the operations ----------------------------------------------------------

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
        if now is None:
            now = time.time()
        # The tuple built without NamedTuple's __new__ (a Python-level function): the
        # per-request path of every call and tell.
        op = _new_enqueue((caller, request_id, priority, payload_type, envelope, now))
        return self._submit(op)

    def dequeue(
        self, limit: int = 32, *, wait: bool = False
    ) -> asyncio.Future[list[MailboxRecord]]:
        """Marks up to ``limit`` rows in flight, HIGH first, FIFO within (MBX-2). A
        row a dead process left in flight (``recovered``) comes alone.

        ``wait``: when nothing is queued, the future stays pending (a long poll) and
        is served by the first later batch that finds rows. Rows queued by another
        process (``actr dlq replay``) are found within ``poll_interval``. Cancelling
        the future is safe: rows a cancelled dequeue took go back to the queue with
        their attempt given back.
        """
        return self._submit(Dequeue(limit, wait))

    def serve(self, consumer: Callable[[list[MailboxRecord]], None] | None) -> None:
        """Rows are pushed to ``consumer`` (None: no more) as ``want`` asks for them,
        each batch's from the batch that committed their in-flight mark. Rows it
        cannot run it gives back (``give_back``)."""
        self._consumer = consumer
        if consumer is None:
            self._want = 0

    def want(self, n: int) -> None:
        """The consumer has room for ``n`` more rows (0 and less: take back room)."""
        self._want = max(0, self._want + n)
        if self._want and not self._closed:
            self._arm_poll()
            if not self._scheduled and not self._busy and self._core.queue.has_ready():
                self._schedule()

    def started(self, record: MailboxRecord) -> None:
        """A handler is about to run this served row: recorded first (the start
        journal), so a crash from here on counts this attempt as a failure (MBX-4).
        Rows served but never started go back without counting one."""
        if self.journal is not None:
            self.journal.started(record.seq, record.attempts)

    def withdraw(self) -> None:
        """The consumer wants nothing more until its next ``want``."""
        self._want = 0

    async def ack(
        self, record: MailboxRecord, answer: bytes | None, now: float | None = None
    ) -> None:
        """Deletes the row and records its answer in one transaction (MBX-2, MBX-3)."""
        await self.ack_nowait(record, answer, now)

    def ack_nowait(
        self,
        record: MailboxRecord,
        answer: bytes | None,
        now: float | None = None,
        *,
        lazy: bool = True,
    ) -> asyncio.Future[None]:
        """``ack`` without waiting: the future resolves once the ack is committed, with
        the next batch, at most ``ack_delay`` later (a crash before that commit
        redelivers the request, as a crash while its handler ran would). Not
        ``lazy``: committed at the end of this turn of the loop, like an enqueue."""
        self._left_flight(record)
        return self._submit(Ack(record, answer, time.time() if now is None else now), lazy=lazy)

    async def requeue(self, record: MailboxRecord, *, started: bool = True) -> None:
        """Puts an in-flight row back (the runtime stops before answering it). A row
        whose handler never ran gives its attempt back: it failed nothing."""
        self._left_flight(record, started)
        await self._submit(Requeue(record, started))

    async def fail(self, record: MailboxRecord, reason: str) -> bool:
        """Counts a failed handling of an in-flight row (MBX-4): it goes back to the
        queue, or to the dead letters once it has failed ``max_attempts`` times
        (returns True then). A stop that puts a row back is not a failure."""
        self._left_flight(record)
        dead: bool = await self._submit(Fail(record, reason, time.time()))
        return dead

    async def dead_letter(self, record: MailboxRecord, reason: str) -> None:
        """Moves a row that cannot be handled to the dead letters (MBX-4)."""
        self._left_flight(record)
        await self._submit(Bury(record, reason, time.time()))

    async def prune_answers(self, now: float | None = None) -> int:
        pruned: int = await self._submit(Prune(time.time() if now is None else now))
        return pruned

    # -- reading and the dead-letter tools (also on a running daemon's file) ---------

    async def stats(self, now: float | None = None) -> MailboxStats:
        await self._caught_up()
        return await self._db.call(read_stats, time.time() if now is None else now)

    async def dead_letters(
        self, limit: int = 100, seqs: Iterable[int] | None = None
    ) -> list[DeadLetter]:
        """The dead letters (all, or these), oldest first, at most ``limit``."""
        await self._caught_up()
        return await self._db.call(read_dead_letters, seqs, limit)

    async def replay(self, seqs: Iterable[int] | None = None) -> int:
        """Moves dead letters (all, or these) back to the queue with a fresh count."""
        moved, skipped = await self._db.call(self._core.replay, seqs)
        if skipped:
            log.info("dlq_replay_skipped_answered count=%d", skipped)
        if moved and not self._closed:
            self._poll_due = True  # a batch now serves the waiting dequeues
            if not self._scheduled:
                self._schedule()
        return moved

    async def purge(self, seqs: Iterable[int] | None = None) -> int:
        return await self._db.call(purge_dead_letters, seqs)
