"""The scheduler: mailbox -> handler -> ack -> answer, at most N handlers at a time.

The mailbox pushes rows to the scheduler (``Mailbox.serve``) as it has room for
them (``Mailbox.want``), from its queue in memory, each from the batch that
committed the row and its in-flight mark: a row is never handed to a handler
before it is durable (MBX-1). The scheduler takes up to ``ahead`` rows beyond its
free handlers, so one commit marks several and a handler that ends starts the
next without waiting for one; a row is recorded in the start journal
(``Mailbox.started``) right before its handler runs, and only a started row counts
a failure if the process dies (MBX-4). The database's order decides (MBX-2: HIGH
first, then FIFO), among the rows taken ahead too. A handler's ack is submitted
before its answer is sent, and commits with the next batch while the next handler
starts (at once when there is nothing else to do). A request its
process died with (``Mailbox.recovered``) runs with nothing beside it, so that if
it is what kills the process only its own attempts count.

On stop, no more rows are taken, running handlers get ``stop_grace`` to finish
and answer, and those still running are cancelled and their requests requeued.

X-CALL-1: ``cancel(caller, request_id)`` cancels that request's running handler,
or marks it (queued, or not arrived yet) so that it is not run when handed out;
either way it is acked with the stored answer CANCELLED and nothing is sent. A
cancel by request is told apart from the stop's: its request is never requeued.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError

from actr.cancel import CancelMarks, cancelled_answer
from actr.envelopes import REQUEST
from actr.handling import Handling
from actr.mailbox import Mailbox, MailboxRecord
from actr.protocol.actr_pb2 import RpcEnvelope

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)

# Sends an answer: (caller key, payload type, encoded RESPONSE).
AnswerFn = Callable[[str, int, bytes], Awaitable[None]]


def _order(record: MailboxRecord) -> tuple[int, int]:
    return record.priority, record.seq


def _context_changed(before: contextvars.Context) -> bool:
    """Whether a context variable's value differs from ``before`` (identity)."""
    now = contextvars.copy_context()
    if len(now) != len(before):
        return True
    return any(before.get(var, _UNSET) is not value for var, value in now.items())


_UNSET = object()


def _uncancel() -> None:
    """The caller's cancel was for the request just done, not for the task that runs
    the next ones (``asyncio.timeout`` in a later handler counts cancellations)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()


class Scheduler:
    def __init__(
        self,
        mailbox: Mailbox,
        handling: Handling,
        answer: AnswerFn,
        counters: Counter[str],
        *,
        max_concurrent: int,
        stop_grace: float,
        ahead: int = 16,
    ) -> None:
        self.mailbox = mailbox
        self.handling = handling
        self._answer = answer
        self.counters = counters
        self.max_concurrent = max_concurrent
        self.stop_grace = stop_grace
        self.running: set[asyncio.Task[None]] = set()  # handlers at work
        # Rows taken ahead of the handlers (committed in flight, not started), so
        # a handler that ends starts the next at once and one commit marks several:
        # at most ``ahead`` of them; more are asked for once half of that is free.
        self.ahead = max(0, ahead)
        self.ready: deque[MailboxRecord] = deque()
        self._room = 0  # room freed since the mailbox was last asked for rows
        # X-CALL-1: the handler task of each running request, by (caller, request_id);
        # those cancelled by their caller; requests marked before they ran.
        self.by_key: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Told (caller, request_id) of each request done with (the call's streams go).
        self.on_finished: Callable[[str, str], None] | None = None
        self._cancelled: set[tuple[str, str]] = set()
        self.marks = CancelMarks()
        self._slot_freed = asyncio.Event()
        # A recovered request waiting to run alone, or running: no other rows meanwhile.
        self._alone: asyncio.Task[None] | None = None
        self._alone_unstarted: MailboxRecord | None = None  # its task has not begun
        self._started = False
        self._stopping = False

    @property
    def capacity(self) -> int:
        """Rows running and taken ahead, at most."""
        return self.max_concurrent + self.ahead

    def start(self) -> None:
        self._started = True
        self.mailbox.serve(self._take)
        self.mailbox.want(self.capacity)

    async def stop(self) -> None:
        """Takes no more rows; running handlers finish within the grace or are requeued."""
        self._stopping = True
        if self._started and not self.mailbox.closed:
            self.mailbox.serve(None)
        while self.ready:  # taken ahead, never started: back, their attempt given back
            self.mailbox.give_back(self.ready.popleft())
        if self._alone is not None and not self._alone.done():
            self._alone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._alone
        if self._alone_unstarted is not None:
            # Cancelled before its first step: its own give-back never ran.
            self.mailbox.give_back(self._alone_unstarted)
            self._alone_unstarted, self._alone = None, None
        if self.running:
            await asyncio.wait(self.running, timeout=self.stop_grace)
            for task in list(self.running):
                task.cancel()
            await asyncio.gather(*self.running, return_exceptions=True)

    def _take(self, batch: list[MailboxRecord]) -> None:
        """The mailbox's push: rows committed in flight, for handlers to run now."""
        box = self.mailbox
        if len(batch) == 1 and box.recovered(batch[0]):
            box.withdraw()  # nothing beside it until it is done
            self._alone_unstarted = batch[0]
            self._alone = asyncio.ensure_future(self._run_recovered(batch[0]))
            return
        for record in batch:
            if self._stopping:
                box.give_back(record)
                continue
            # MBX-2 among rows taken ahead too: a HIGH row taken later starts first.
            bisect.insort(self.ready, record, key=_order)
        self._start_ready()

    def _start_ready(self) -> None:
        """Starts handlers for rows taken ahead, as slots allow (none beside a
        recovered request)."""
        while self.ready and len(self.running) < self.max_concurrent and self._alone is None:
            self._start_handler(self.ready.popleft())

    async def _run_recovered(self, record: MailboxRecord) -> None:
        """MBX-4: a request its process died with runs with no handler beside it.
        Handlers already running get ``stop_grace`` to finish first; one still
        running then (it may wait for a request queued behind this one) runs on
        beside it rather than stall the actor."""
        self._alone_unstarted = None
        try:
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.stop_grace):
                        while self.running:
                            await self._a_handler_finished()
            except asyncio.CancelledError:
                self.mailbox.give_back(record)  # stopped before it ran
                raise
            if self._stopping:
                self.mailbox.give_back(record)
                return
            await asyncio.wait({self._start_handler(record, chain=False)})
        finally:
            self._alone = None
            if not self._stopping and not self.mailbox.closed:
                self._start_ready()
                self._room = 0
                self.mailbox.want(self.capacity - len(self.running) - len(self.ready))

    def _start_handler(self, record: MailboxRecord, chain: bool = True) -> asyncio.Task[None]:
        """A handler slot's task: it runs ``record``, then (``chain``) rows taken
        ahead while there are any."""
        task = asyncio.create_task(self._work(record, chain))
        self.running.add(task)
        task.add_done_callback(self._handler_done)
        return task

    async def _work(self, record: MailboxRecord, chain: bool) -> None:
        """Rows run one after another in one task: a handler that does not wait ends
        and the next starts in the same turn of the loop, so their answers leave
        together (X-BATCH-1 packs them into one message) and no task is made per
        request. A cancel by request (X-CALL-1) reaches the request the task is on:
        ``by_key`` names a task only while it runs that request."""
        task = asyncio.current_task()
        assert task is not None
        while True:
            self.mailbox.started(record)  # before it runs (MBX-4 counts it from here)
            key = (record.caller, record.request_id)
            self.by_key[key] = task
            before = contextvars.copy_context()  # O(1): an immutable mapping's snapshot
            try:
                await self._run_one(record, key)
            finally:
                self._forget(key)
            if not chain or self._stopping or self._alone is not None or not self.ready:
                return
            if _context_changed(before):
                # The handler left a context variable set (request-scoped logging
                # bindings, say): the next request gets a task, and a context, of
                # its own, as it would have without chaining.
                return
            record = self.ready.popleft()
            self._freed_one()

    def _forget(self, key: tuple[str, str]) -> None:
        self.by_key.pop(key, None)
        self._cancelled.discard(key)
        if self.on_finished is not None:
            self.on_finished(*key)  # idempotent: called at the ack and at the end

    def cancel(self, caller: str, request_id: str) -> str:
        """X-CALL-1: the caller gave up ``request_id``. Returns what it found:
        "running" (its handler is cancelled), "queued" (it will not run), "unknown"
        (remembered a while: the request may come after its cancel)."""
        key = (caller, request_id)
        task = self.by_key.get(key)
        if task is not None and not task.done():
            if key not in self._cancelled:
                self._cancelled.add(key)
                task.cancel()
            return "running"
        queued = self.mailbox.holds(caller, request_id) and task is None
        self.marks.mark(key, queued)
        return "queued" if queued else "unknown"

    async def _a_handler_finished(self) -> None:
        self._slot_freed.clear()
        await self._slot_freed.wait()

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self._slot_freed.set()
        if self._alone is None and not self._stopping and not self.mailbox.closed:
            self._start_ready()
            self._freed_one()

    def _freed_one(self) -> None:
        """A request is done: room for one more row."""
        if self._alone is not None or self._stopping or self.mailbox.closed:
            return
        self._room += 1
        # Asked in groups (one commit marks them) unless the handlers run dry.
        if self._room * 2 >= max(1, self.ahead) or len(self.ready) < self.max_concurrent:
            self.mailbox.want(self._room)
            self._room = 0

    async def _run_one(self, record: MailboxRecord, key: tuple[str, str]) -> None:
        if self.marks.take((record.caller, record.request_id)):
            # Cancelled while queued: acked CANCELLED without running.
            self.counters["cancelled_queued"] += 1
            self._ack(record, self._cancelled_answer(record), lazy=False)
            return
        try:
            answer = await self._process(record, key)
        except asyncio.CancelledError:
            if key in self._cancelled:
                # Cancelled by its caller: done, with the stored answer CANCELLED; the
                # task goes on with the next request.
                _uncancel()
                self.counters["cancelled_running"] += 1
                self._ack(record, self._cancelled_answer(record), lazy=False)
                return
            # Stopped before it was answered: it goes back to the queue.
            await asyncio.shield(self.mailbox.requeue(record))
            raise
        except Exception as e:
            if key in self._cancelled:
                _uncancel()  # a caller's cancel this request consumed, not the next's
            # A fault of the runtime, not of the handler (its errors are answers). Left
            # in flight, the request would wait for a restart and its caller's retries
            # be refused as pending: it goes again until it has failed max_attempts
            # times, then to the dead letters, whose answer its caller's retry gets.
            log.exception("process_failed seq=%d request_id=%s", record.seq, record.request_id)
            self.counters["process_failed"] += 1
            try:
                if await self.mailbox.fail(record, f"runtime error: {e!r}"):
                    self.counters["dead_lettered"] += 1
            except Exception:
                # The database fails too: in flight until a restart redelivers it.
                log.exception("process_failed_left_in_flight seq=%d", record.seq)
            return
        # Acked (submitted) already: whatever happens to the send, the request is
        # done; it is never requeued or dead-lettered from here on (its caller's
        # retry gets the stored answer).
        if answer is not None:
            try:
                await self._answer(record.caller, record.payload_type, answer)
            except Exception:
                self.counters["answer_undeliverable"] += 1
                log.exception("answer_failed caller=%s seq=%d", record.caller, record.seq)
        if not self.ready and len(self.running) <= 1:
            # Nothing else to do: the ack commits now, after the answer is on its way,
            # rather than with the next request's commit, on that request's path.
            self.mailbox.flush_soon()

    async def _process(self, record: MailboxRecord, key: tuple[str, str]) -> bytes | None:
        """Runs the handler and submits the ack; returns the answer to send (None for
        a tell, or a request dead-lettered here)."""
        env = RpcEnvelope()
        try:
            env.ParseFromString(record.envelope)
        except DecodeError:
            # MBX-4: a stored envelope that does not decode never will: dead letter at once.
            await self.mailbox.dead_letter(record, "stored envelope does not decode")
            self.counters["dead_lettered"] += 1
            return None
        reply = await self.handling.handle(record, env)
        data = reply.SerializeToString() if env.direction == REQUEST else None
        if key in self._cancelled:
            # The handler swallowed its caller's cancel: still CANCELLED, not sent.
            _uncancel()
            self.counters["cancelled_running"] += 1
            self._ack(record, self._cancelled_answer(record), lazy=False)
            return None
        # Acked: a cancel from here on finds nothing to stop.
        self._forget(key)
        # Submitted before the send, outside the requeue-on-stop and fault paths: a
        # request that ran is never put back. A crash before it commits redelivers
        # the request, as a crash during the handler would.
        self._ack(record, data)
        return data

    @staticmethod
    def _cancelled_answer(record: MailboxRecord) -> bytes | None:
        """The stored answer of a cancelled REQUEST (a TELL stores none)."""
        env = RpcEnvelope()
        try:
            env.ParseFromString(record.envelope)
        except DecodeError:
            return None
        if env.direction != REQUEST:
            return None
        return cancelled_answer(env)

    def _ack(
        self, record: MailboxRecord, data: bytes | None, delay: float = 0.5, lazy: bool = True
    ) -> None:
        """Submits the ack; ``lazy`` false (a cancelled request: nothing else tells
        its caller's retry the answer) commits it with this turn's batch."""
        box = self.mailbox
        if box.closed:
            return  # left in flight: the next start redelivers it

        def done(fut: asyncio.Future[None]) -> None:
            if fut.cancelled() or fut.exception() is None:
                return
            # The database is failing (disk full, I/O error): try again, backing off,
            # or the request's duplicates would be refused as pending until a restart.
            self.counters["ack_failed"] += 1
            log.error(
                "ack_failed seq=%d retry_in=%.1f error=%r", record.seq, delay, fut.exception()
            )
            asyncio.get_running_loop().call_later(
                delay, self._ack, record, data, min(delay * 2, 30.0), lazy
            )

        box.ack_nowait(record, data, lazy=lazy).add_done_callback(done)
