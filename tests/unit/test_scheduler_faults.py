"""Faults around rows taken ahead, the start journal and the handler slots' tasks
(issue 13, found by review): a journal that cannot be written stops nothing; a
handler's context variables do not reach the next request; a row given back after
a pull is not counted as started; a stop in the same turn as a recovered row's
hand-out gives it back; a recovered row behind others is taken at once."""

from __future__ import annotations

import asyncio
import contextvars
import os
import sqlite3
from pathlib import Path

from actr import Actor, Context, rpc
from actr.inbound import HIGH
from actr.mailbox import Mailbox, MailboxRecord
from examples.echo_pb2 import SayReply, SayRequest
from tests.unit.node_harness import Harness
from tests.unit.test_scheduler_ahead import accept, wait_until, watch_takes

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("review_var", default="")


def rows(path: Path) -> dict[str, tuple[int, int, int]]:
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT request_id, state, attempts, failures FROM messages")
        return {r: (s, a, f) for r, s, a, f in found}


class Echo(Actor):
    actr_type = "acme:echo:1.0"

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        return SayReply(text=req.text)


def break_journal(box: Mailbox) -> None:
    """Every later write to the start journal fails (as on a full disk: here EBADF,
    writing to a descriptor opened read-only)."""
    assert box.journal is not None
    os.close(box.journal._fd)
    box.journal._fd = os.open(os.devnull, os.O_RDONLY)


async def test_a_journal_that_cannot_be_written_stops_no_request(tmp_path: Path) -> None:
    h = await Harness.open(tmp_path, Echo(), max_concurrent_handlers=1)
    try:
        break_journal(h.box)
        h.start_scheduler()
        await h.accept("r1")
        await h.accept("r2")
        got = {(await h.answer()).request_id for _ in range(2)}
        assert got == {"r1", "r2"}
        assert h.box.journal is not None and h.box.journal.failed
        # The file is gone: after a crash every in-flight row counts as started.
        assert not (tmp_path / "mailbox.db.started").exists()
    finally:
        await h.close()


class Sticky(Actor):
    """Records the context variable it finds, then sets it (as request-scoped
    helpers do, e.g. structlog.contextvars.bind_contextvars, without a reset)."""

    actr_type = "acme:sticky:1.0"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.seen: dict[str, str] = {}

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        self.seen[ctx.request_id] = VAR.get()
        VAR.set(f"user-of-{ctx.request_id}")
        self.entered.set()
        await self.release.wait()
        return SayReply(text=req.text)


async def test_context_variables_set_by_one_request_do_not_reach_the_next(tmp_path: Path) -> None:
    """Rows run one after another in one task; a handler that leaves a context
    variable set ends that chain, so the next request gets a context of its own."""
    actor = Sticky()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=1)
    try:
        took = watch_takes(h)
        h.start_scheduler()
        await h.accept("r1")
        await asyncio.wait_for(actor.entered.wait(), 5)
        await h.accept("r2")
        await wait_until(took, lambda: len(h.scheduler.ready) == 1)
        actor.release.set()
        await h.answer()
        await h.answer()
        assert actor.seen == {"r1": "", "r2": ""}, actor.seen
    finally:
        actor.release.set()
        await h.close()


async def test_a_row_given_back_unrun_after_a_pull_is_not_counted_as_started(
    tmp_path: Path,
) -> None:
    """The pull API journals rows when handed out; requeue(started=False) gives the
    attempt back, so the journal withdraws that entry (it would match the row's next
    hand-out): taken ahead later and never started, the row is not counted after a
    crash (MBX-4)."""
    path = tmp_path / "mailbox.db"
    box = await Mailbox.open(path)
    await box.enqueue(caller="c", request_id="a", priority=1, payload_type=0, envelope=b"e")
    (a,) = await box.dequeue(limit=1)
    await box.requeue(a, started=False)  # nothing ran it
    # Taken ahead (in flight, not started), as Scheduler.ready holds rows.
    ahead: list[MailboxRecord] = []
    got = asyncio.Event()

    def take(batch: list[MailboxRecord]) -> None:
        ahead.extend(batch)
        got.set()

    box.serve(take)
    box.want(1)
    await asyncio.wait_for(got.wait(), 5)
    assert rows(path)["a"] == (1, 1, 0)
    box.serve(None)
    await box.close()  # the process dies
    again = await Mailbox.open(path)
    try:
        assert rows(path)["a"] == (0, 0, 0), rows(path)  # never started: uncounted
    finally:
        await again.close()


async def test_a_stop_right_after_a_recovered_row_is_taken_gives_it_back(
    tmp_path: Path,
) -> None:
    """Scheduler._take starts _run_recovered in a task; a stop() in the same loop turn
    cancels it before its first step, so the stop gives the row back itself."""
    first = await Harness.open(tmp_path, Echo(), max_concurrent_handlers=1)
    await first.accept("b")
    taken = await first.box.dequeue(1)  # journaled: started
    assert [r.request_id for r in taken] == ["b"]
    await first.box.close()  # dies while b runs

    h = await Harness.open(tmp_path, Echo(), max_concurrent_handlers=1)
    try:
        sched = h.scheduler
        original = sched._take
        stopping: list[asyncio.Task[None]] = []
        pushed = asyncio.Event()

        def take(batch: list[MailboxRecord]) -> None:
            # Node.stop's task, already scheduled in this turn of the loop, reaches
            # Scheduler.stop before the _alone task's first step.
            stopping.append(asyncio.get_running_loop().create_task(sched.stop()))
            original(batch)
            pushed.set()

        sched._take = take  # type: ignore[method-assign]
        sched.start()
        await asyncio.wait_for(pushed.wait(), 5)
        # Let the stop begin before the _alone task's first step.
        await asyncio.wait_for(stopping[0], 5)
        await h.box._caught_up()
        assert rows(h.box.path)["b"][0] == 0, rows(h.box.path)  # given back (READY)
    finally:
        if not h.box.closed:
            await h.box.close()


async def test_a_journal_error_while_rows_are_pulled_fails_no_caller(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.db"
    box = await Mailbox.open(path)
    try:
        await box.enqueue(caller="c", request_id="a", priority=1, payload_type=0, envelope=b"e")
        break_journal(box)
        pulled = box.dequeue(limit=1)
        queued = box.enqueue(caller="c", request_id="b", priority=1, payload_type=0, envelope=b"e")
        async with asyncio.timeout(5):
            assert [r.request_id for r in await pulled] == ["a"]
            assert (await queued).outcome.value == "queued"
    finally:
        await box.close()


class Slow(Actor):
    actr_type = "acme:slow:1.0"

    def __init__(self) -> None:
        self.release = asyncio.Event()

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        if ctx.request_id.startswith("long"):
            await self.release.wait()
        return SayReply(text=req.text)


async def test_a_recovered_row_behind_rows_of_the_same_batch_is_taken_without_the_poll(
    tmp_path: Path,
) -> None:
    """queue.take stops at a recovered row when it already took rows; the next batch
    takes it at once (not at the next poll for other processes' rows, 2 s here), and
    it runs beside the long handler after the stop grace. Room accounting holds."""

    first = await Harness.open(tmp_path, Echo(), max_concurrent_handlers=2)
    await first.accept("s")
    assert [r.request_id for r in await first.box.dequeue(1)] == ["s"]
    await first.box.close()  # dies while s runs

    actor = Slow()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=2, stop_grace=0.05)
    try:
        await accept(h, "long", HIGH)
        h.box.poll_interval = 2.0  # the only thing that brings "s" (below)
        h.start_scheduler()
        t0 = asyncio.get_running_loop().time()
        assert (await h.answer()).request_id == "s"  # ran beside "long" after the grace
        waited_s = asyncio.get_running_loop().time() - t0
        for i in range(30):
            await h.accept(f"r{i}")
        got = {(await h.answer()).request_id for _ in range(30)}
        actor.release.set()
        assert (await h.answer()).request_id == "long"
        assert len(got) == 30
        s = h.scheduler
        await asyncio.gather(*list(s.running))  # their done callbacks ran first
        assert not s.running and not s.ready
        assert h.box._want + s._room == s.capacity, (h.box._want, s._room, s.capacity)
        assert waited_s < 1.0, waited_s
    finally:
        actor.release.set()
        await h.close()
