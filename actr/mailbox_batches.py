"""The mailbox's group commit, the asyncio half of ``actr.mailbox``: operations gather
in a list, and what gathered during one turn of the event loop runs as one
``MailboxCore.apply``, one transaction; each operation's result then goes to its
sink (its caller's future, or a callback of ours). Where the transaction runs is
the durability setting: on the loop's thread right away (``InlineSqlite``,
synchronous=NORMAL: ~25 us, against ~250 us for a hop to a thread and back), or
on the connection's thread (``SqliteThread``, synchronous=FULL: its fsync must not
block the loop), one batch at a time while the next gathers.

A failed batch goes again one operation per transaction, so one failing
operation (a large row on a full disk) fails nobody else. Rows for the consumer
(``serve``/``want`` in ``Mailbox``) are taken by a dequeue added to each batch
while it wants rows, and pushed to it once that batch committed their in-flight
mark. Acks are lazy: they wait for the next batch, at most ``ack_delay``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from actr.errors import ResourceExhausted
from actr.mailbox_journal import StartJournal
from actr.mailbox_ops import Ack, Dequeue, Enqueue, MailboxLimits, Op, Prune, Requeue
from actr.mailbox_rules import MailboxCore
from actr.mailbox_store import MailboxRecord
from actr.sqlite_thread import InlineSqlite, SqliteConnection
from actr.wal_checkpoint import Checkpointer

__all__ = ["Batches"]

log = logging.getLogger(__name__)

# Where an operation's result goes: its caller's future, or a callback of ours.
_Sink = asyncio.Future[Any] | Callable[[Any], None]
_Pending = tuple[Op, _Sink]


def _push(result: Any) -> None:
    """The sink of the served rows' dequeue (``serve``): handled by ``_settle``."""


class Batches:
    """The group commit of one mailbox (``Mailbox`` adds the operations' API)."""

    def __init__(self, db: SqliteConnection, core: MailboxCore) -> None:
        self._db = db
        self._core = core
        self.on_backpressure: Callable[[bool], None] | None = None
        self.backpressure = False
        self.counters: dict[str, int] = {"backpressure_fired": 0, "refused_full": 0}
        self._loop = asyncio.get_running_loop()
        # Rows whose handler started (actr.mailbox_journal); None: a tool's mailbox.
        self.journal: StartJournal | None = None
        # Runs the WAL checkpoints off the loop (inline commits); None: SQLite's own.
        self.checkpointer: Checkpointer | None = None
        self._ops: list[_Pending] = []
        self._scheduled = False  # a flush is due at the end of this turn of the loop
        # Acks wait for the next batch, up to ``ack_delay``: under load they share the
        # commit of the next enqueues, and an answer's ack never delays its send.
        self._lazy: asyncio.TimerHandle | None = None
        self.ack_delay = 0.002
        self._busy = False  # a batch is on the connection's thread, or being retried
        self._retrying: asyncio.Future[None] | None = None
        self._idle: asyncio.Future[None] | None = None  # close() waits for the batch
        self._closed = False
        self._db_closed = False
        # Dequeues waiting for rows (``wait=True``): they join every batch.
        self._parked: list[tuple[Dequeue, asyncio.Future[Any]]] = []
        # serve(): rows are pushed to the consumer, up to ``_want`` of them.
        self._consumer: Callable[[list[MailboxRecord]], None] | None = None
        self._want = 0
        self._poll: asyncio.TimerHandle | None = None
        self._poll_due = False  # the next batch looks for rows even if none are known
        self.poll_interval = 5.0
        window = core.limits.dedup_window
        self._prune_every = min(60.0, max(1.0, window / 10))
        self._prune: asyncio.TimerHandle | None = self._loop.call_later(
            self._prune_every, self._prune_tick
        )

    @property
    def limits(self) -> MailboxLimits:
        return self._core.limits

    async def _caught_up(self) -> None:
        """Returns once what was submitted before is committed (so tools and tests
        read what was written before they asked)."""
        while (self._ops or self._busy) and not self._db_closed:
            if not self._busy:
                self._flush()
            if self._busy:
                if self._idle is None or self._idle.done():
                    self._idle = self._loop.create_future()
                await asyncio.shield(self._idle)

    def _submit(self, op: Op, *, lazy: bool = False) -> asyncio.Future[Any]:
        if self._closed:
            raise RuntimeError("mailbox is closed")
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._ops.append((op, fut))
        if not self._scheduled:
            if lazy:
                if self._lazy is None:
                    self._lazy = self._loop.call_later(self.ack_delay, self._flush)
            else:
                self._schedule()
        return fut

    def flush_soon(self) -> None:
        """What was submitted (a lazy ack) commits at the end of this turn of the loop."""
        if self._ops and not self._scheduled and not self._closed:
            self._schedule()

    def give_back(self, record: MailboxRecord, delay: float = 0.5) -> None:
        """Requeues, without waiting, a row that no handler got, its attempt given
        back; tried again (backing off) while the database fails. It is taken while
        the mailbox closes too; once the connection is closed the row stays in
        flight, and the next start's recovery requeues it."""
        if self._db_closed:
            return
        self._left_flight(record, started=False)

        def done(result: Any) -> None:
            if isinstance(result, BaseException):
                self._loop.call_later(delay, self.give_back, record, min(delay * 2, 30.0))

        self._ops.append((Requeue(record, False), done))
        if not self._scheduled:
            self._schedule()

    def _left_flight(self, record: MailboxRecord, started: bool = True) -> None:
        if self.journal is not None:
            if started:
                self.journal.done(record.seq)
            else:  # its attempt is given back: that attempt number comes again
                self.journal.release(record.seq)

    def _schedule(self) -> None:
        self._scheduled = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Runs what gathered as one batch: here (inline) or on the thread."""
        self._scheduled = False
        if self._lazy is not None:
            self._lazy.cancel()
            self._lazy = None
        if self._busy or self._db_closed:
            return
        batch, self._ops = self._ops, []
        if self._parked and not self._closed:  # close() answers them with nothing
            batch += [p for p in self._parked if not p[1].done()]
            self._parked = []
        serving = self._want and self._consumer is not None
        if serving and (batch or self._poll_due or self._core.queue.has_ready()):
            batch.append((Dequeue(self._want), _push))
        self._poll_due = False
        if not batch:
            return
        ops = [op for op, _ in batch]
        if isinstance(self._db, InlineSqlite):
            try:
                results = self._db.run(self._core.apply, ops)
            except Exception as e:
                self._failed(batch, e)
            else:
                self._settle(batch, results)
                if self.checkpointer is not None:
                    self.checkpointer.committed()
                    self.checkpointer.catch_up(self._db.db)
                if (
                    not self._scheduled
                    and self._want
                    and self._consumer is not None
                    and self._core.queue.has_ready()
                ):
                    # The take stopped short (at a row a dead process left in flight,
                    # which comes alone): the next batch takes it, as _done_busy does.
                    self._schedule()
            return
        self._busy = True
        self._db.submit(self._core.apply, ops).add_done_callback(
            lambda fut: self._threaded_done(batch, fut)
        )

    def _threaded_done(self, batch: list[_Pending], fut: asyncio.Future[list[Any]]) -> None:
        error = fut.exception()
        if error is not None:
            if len(batch) > 1:
                self._retrying = asyncio.ensure_future(self._one_by_one(batch, error))
                return
            self._fail_one(batch[0], error)
        else:
            self._settle(batch, fut.result())
        self._done_busy()

    def _done_busy(self) -> None:
        self._busy = False
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
        if not self._scheduled and (
            self._ops or (self._want and self._core.queue.has_ready()) or self._poll_due
        ):
            self._schedule()

    def _failed(self, batch: list[_Pending], error: BaseException) -> None:
        """Inline: a failed batch goes again one operation per transaction, so one
        failing operation (a large row on a full disk) fails nobody else."""
        if len(batch) == 1:
            self._fail_one(batch[0], error)
            return
        log.warning("mailbox_batch_failed ops=%d error=%r retry=one_by_one", len(batch), error)
        assert isinstance(self._db, InlineSqlite)
        for one in batch:
            try:
                results = self._db.run(self._core.apply, [one[0]])
            except Exception as e:
                self._fail_one(one, e)
            else:
                self._settle([one], results)

    async def _one_by_one(self, batch: list[_Pending], error: BaseException) -> None:
        """The thread's ``_failed``."""
        log.warning("mailbox_batch_failed ops=%d error=%r retry=one_by_one", len(batch), error)
        try:
            for one in batch:
                try:
                    results = await self._db.submit(self._core.apply, [one[0]])
                except Exception as e:
                    self._fail_one(one, e)
                else:
                    self._settle([one], results)
        finally:
            self._done_busy()

    def _fail_one(self, one: _Pending, error: BaseException) -> None:
        op, sink = one
        log.error("mailbox_op_failed op=%s error=%r", type(op).__name__, error)
        if sink is not _push:
            _deliver(sink, error)

    def _settle(self, batch: list[_Pending], results: list[Any]) -> None:
        try:
            self._check_backpressure()
        except Exception:
            # The hook is the owner's code; its failure must not stop the mailbox.
            log.exception("backpressure_hook_failed")
        served: list[MailboxRecord] = []
        for (op, sink), result in zip(batch, results, strict=True):
            kind = type(op)
            if kind is Enqueue or kind is Ack:
                # The common case, inline: their sinks are their callers' futures.
                if type(result) is ResourceExhausted:
                    self.counters["refused_full"] += 1
                    _deliver(sink, result)
                elif not sink.done():  # type: ignore[union-attr]
                    sink.set_result(result)  # type: ignore[union-attr]
                continue
            if sink is _push:
                served += result
                continue
            if type(op) is Dequeue:
                assert isinstance(sink, asyncio.Future)
                if sink.done():
                    # Its waiter is gone (cancelled): the rows go back to the queue, and
                    # the attempt this dequeue counted is given back (nothing ran them).
                    for record in result:
                        self.give_back(record)
                    continue
                if op.wait and not result:
                    self._parked.append((op, sink))
                    self._arm_poll()
                    continue
                if self.journal is not None and result:
                    # Rows pulled are rows their taker runs now (``serve``'s rows are
                    # recorded when their handler starts: ``Mailbox.started``).
                    self.journal.started_many([(r.seq, r.attempts) for r in result])
            elif type(result) is ResourceExhausted:
                self.counters["refused_full"] += 1
            _deliver(sink, result)
        if served:
            consumer = self._consumer
            if consumer is None:
                for record in served:
                    self.give_back(record)
            else:
                self._want = max(0, self._want - len(served))
                consumer(served)

    def _arm_poll(self) -> None:
        if self._poll is None and not self._closed:
            self._poll = self._loop.call_later(self.poll_interval, self._poll_tick)

    def _poll_tick(self) -> None:
        """Another process may queue rows (a dlq replay): look now and then while
        someone waits for rows."""
        self._poll = None
        if self._closed or not (self._parked or (self._want and self._consumer)):
            return
        self._poll_due = True
        if not self._scheduled:
            self._schedule()
        self._arm_poll()

    def _prune_tick(self) -> None:
        self._prune = None
        if self._closed:
            return
        self._ops.append((Prune(time.time()), _ignore))
        if not self._scheduled:
            self._schedule()
        self._prune = self._loop.call_later(self._prune_every, self._prune_tick)

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

    # -- figures (last: ``bytes`` would shadow the type in the annotations above) ----

    @property
    def count(self) -> int:
        """Rows queued or in flight, as of the last commit."""
        return self._core.count

    @property
    def bytes(self) -> int:
        """Their envelopes' bytes, as of the last commit."""
        return self._core.bytes


def _ignore(result: Any) -> None:
    if isinstance(result, BaseException):
        log.warning("mailbox_background_op_failed error=%r", result)


def _deliver(sink: _Sink, result: Any) -> None:
    if isinstance(sink, asyncio.Future):
        if sink.done():  # its waiter gave up (cancelled)
            return
        if isinstance(result, BaseException):
            sink.set_exception(result)
        else:
            sink.set_result(result)
        return
    try:
        sink(result)
    except Exception:
        log.exception("mailbox_callback_failed")
