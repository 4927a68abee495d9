"""Rows taken ahead of the handlers (issue 13): one commit marks several rows in
flight, a handler that ends starts the next without waiting for a commit, and the
start journal keeps MBX-4 honest: after a crash only a row whose handler had
started counts a failure; rows taken ahead and never started go back uncounted.
MBX-2 holds among the rows taken ahead: a HIGH row taken later starts first."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from actr import Actor, Context, rpc
from actr.identity import id_text
from actr.inbound import HIGH, NORMAL, Accept
from actr.mailbox import Mailbox, MailboxLimits, MailboxRecord
from actr.mailbox_journal import ENTRY, StartJournal, journal_path
from actr.protocol.actr_pb2 import Direction, PayloadType, RpcEnvelope
from examples.echo_pb2 import SayReply, SayRequest
from tests.unit.mailbox_probe import BatchCounter
from tests.unit.node_harness import CALLER, Harness


class Gate(Actor):
    """Each request waits for ``release``; the order they ran in is kept."""

    actr_type = "acme:gate:1.0"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.ran: list[str] = []
        self.entered = asyncio.Event()

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        self.ran.append(ctx.request_id)
        self.entered.set()
        await self.release.wait()
        return SayReply(text=req.text)


@pytest.fixture
async def gate(tmp_path: Path) -> AsyncIterator[tuple[Gate, Harness]]:
    actor = Gate()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=1)
    yield actor, h
    actor.release.set()
    await h.close()


async def accept(h: Harness, request_id: str, priority: int = NORMAL) -> None:
    env = RpcEnvelope(
        route_key="echo.v1.Echo.Say",
        request_id=request_id,
        timeout_ms=10_000,
        direction=Direction.DIRECTION_REQUEST,
        payload=SayRequest(text=request_id).SerializeToString(),
    )
    ptype = PayloadType.RPC_SIGNAL if priority == HIGH else PayloadType.RPC_RELIABLE
    action = Accept(env, env.SerializeToString(), priority, ptype)
    await h.node.inbound._accept(id_text(CALLER), action)


def rows(path: Path) -> dict[str, tuple[int, int, int]]:
    """request_id -> (state, attempts, failures), as another connection sees them."""
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT request_id, state, attempts, failures FROM messages")
        return {r: (s, a, f) for r, s, a, f in found}


def watch_takes(h: Harness) -> asyncio.Event:
    """Set each time the mailbox pushes rows to the scheduler (patch before start)."""
    took = asyncio.Event()
    original = h.scheduler._take

    def take(batch: list[MailboxRecord]) -> None:
        original(batch)
        took.set()

    h.scheduler._take = take  # type: ignore[method-assign]
    return took


async def wait_until(took: asyncio.Event, check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():
            took.clear()
            await took.wait()


async def test_mbx4_rows_taken_ahead_and_never_started_go_back_uncounted(
    gate: tuple[Gate, Harness], tmp_path: Path
) -> None:
    actor, h = gate
    actor.release.clear()
    took = watch_takes(h)
    h.start_scheduler()
    for rid in ("r1", "r2", "r3", "r4"):
        await accept(h, rid)
    await asyncio.wait_for(actor.entered.wait(), 5)
    await wait_until(took, lambda: len(h.scheduler.ready) == 3)
    # All four are committed in flight; only r1's handler started.
    assert {r: s for r, (s, _, _) in rows(h.box.path).items()} == dict.fromkeys(
        ("r1", "r2", "r3", "r4"), 1
    )
    assert actor.ran == ["r1"]
    # The process dies here: nothing is put back or acked.
    h.box.serve(None)
    await h.box.close()
    again = await Mailbox.open(h.box.path)
    try:
        after = rows(h.box.path)
        assert after["r1"] == (0, 1, 1)  # it ran: one failure counted (MBX-4)
        for rid in ("r2", "r3", "r4"):
            assert after[rid] == (0, 0, 0)  # never ran: attempt given back, no failure
        first = await again.dequeue(limit=4)
        assert [r.request_id for r in first] == ["r1"]  # the suspect comes alone
        assert again.recovered(first[0])
    finally:
        await again.close()


async def test_mbx2_a_high_row_taken_later_starts_before_normal_rows_taken_ahead(
    gate: tuple[Gate, Harness],
) -> None:
    actor, h = gate
    actor.release.clear()
    took = watch_takes(h)
    h.start_scheduler()
    for rid in ("n1", "n2", "n3"):
        await accept(h, rid)
    await wait_until(took, lambda: len(h.scheduler.ready) == 2)
    await accept(h, "h1", HIGH)
    await wait_until(took, lambda: len(h.scheduler.ready) == 3)
    actor.release.set()
    for _ in range(4):
        await h.answer()
    assert actor.ran == ["n1", "h1", "n2", "n3"]


async def test_one_commit_marks_several_rows_for_a_single_handler(
    gate: tuple[Gate, Harness],
) -> None:
    actor, h = gate
    actor.release.clear()
    h.start_scheduler()
    for i in range(40):
        await accept(h, f"r{i:02d}")
    await asyncio.wait_for(actor.entered.wait(), 5)
    commits = BatchCounter(h.box)
    actor.release.set()
    for _ in range(40):
        await h.answer()
    assert actor.ran == [f"r{i:02d}" for i in range(40)]
    # One transaction per handled request before; now the marks of several share one
    # (the acks ride along).
    assert commits.count <= 20, commits.count


async def test_every_started_row_is_in_the_journal_before_its_handler_runs(
    tmp_path: Path,
) -> None:
    seen: dict[str, bool] = {}

    class Probe(Actor):
        actr_type = "acme:probe:1.0"

        @rpc("echo.v1.Echo.Say")
        async def say(self, req: SayRequest, ctx: Context) -> SayReply:
            found = StartJournal.read(journal_path(h.box.path)) or set()
            seen[ctx.request_id] = any(att == ctx.attempt for _, att in found) and bool(found)
            return SayReply(text=req.text)

    h = await Harness.open(tmp_path, Probe(), max_concurrent_handlers=2)
    try:
        h.start_scheduler()
        await asyncio.gather(*(accept(h, f"r{i}") for i in range(10)))
        for _ in range(10):
            await h.answer()
        assert seen == {f"r{i}": True for i in range(10)}
    finally:
        await h.close()


# -- the journal itself ------------------------------------------------------------------


def test_journal_reads_what_was_written_and_skips_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "m.db.started"
    assert StartJournal.read(path) is None  # no file: every in-flight row counts
    journal = StartJournal(path)
    journal.started(7, 1)
    journal.started(9, 2)
    journal.close()
    with open(path, "ab") as f:
        f.write(ENTRY.pack(11, 1)[:5])  # a power loss tore the last entry
    assert StartJournal.read(path) == {(7, 1), (9, 2)}


def test_journal_is_rewritten_with_the_rows_still_running(tmp_path: Path) -> None:
    path = tmp_path / "m.db.started"
    journal = StartJournal(path, max_bytes=ENTRY.size * 10)
    for seq in range(1, 30):
        journal.started(seq, 1)
        if seq != 5:
            journal.done(seq)
    journal.close()
    assert journal.rewrites >= 2
    assert path.stat().st_size <= ENTRY.size * 11
    found = StartJournal.read(path)
    assert found is not None and (5, 1) in found
    assert not any(seq < 5 for seq, _ in found)


def test_opening_empties_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "m.db.started"
    path.write_bytes(ENTRY.pack(1, 1))
    StartJournal(path).close()
    assert StartJournal.read(path) == set()


async def test_rows_pulled_with_dequeue_are_recorded_as_started(tmp_path: Path) -> None:
    """``dequeue`` (the pull API) hands rows to a taker that runs them now: they are in
    the journal at once, so a crash counts their attempt (MBX-4)."""
    path = tmp_path / "mailbox.db"
    box = await Mailbox.open(path)
    for rid in ("a", "b", "c"):
        await box.enqueue(caller="c", request_id=rid, priority=1, payload_type=0, envelope=b"e")
    taken = await box.dequeue(limit=2)
    assert StartJournal.read(journal_path(path)) == {(r.seq, 1) for r in taken}
    await box.close()  # dies with a and b in flight
    again = await Mailbox.open(path)
    try:
        assert [(rid, a, f) for rid, (_, a, f) in sorted(rows(path).items())] == [
            ("a", 1, 1),
            ("b", 1, 1),
            ("c", 0, 0),
        ]
    finally:
        await again.close()


async def test_an_idle_actor_commits_its_ack_right_after_the_answer(
    gate: tuple[Gate, Harness],
) -> None:
    """The ack is lazy (it waits for the next batch, up to ``ack_delay``) only while
    other work is there to share the commit with; an idle actor commits it at once,
    so it is not on the next request's path."""
    _, h = gate
    h.box.ack_delay = 60.0  # a lazy ack would wait a minute
    h.box.poll_interval = 60.0  # and so would the poll for other processes' rows
    acks: list[asyncio.Future[None]] = []
    original = h.box.ack_nowait

    def ack_nowait(*args: object, **kwargs: object) -> asyncio.Future[None]:
        fut = original(*args, **kwargs)  # type: ignore[arg-type]
        acks.append(fut)
        return fut

    h.box.ack_nowait = ack_nowait  # type: ignore[method-assign]
    h.start_scheduler()
    await accept(h, "r1")
    await h.answer()
    await asyncio.wait_for(acks[0], 2)
    assert rows(h.box.path) == {}


async def test_rows_taken_ahead_run_one_after_another_in_one_turn_of_the_loop(
    gate: tuple[Gate, Harness],
) -> None:
    """A handler slot runs the rows taken ahead in one task, so handlers that do not
    wait answer in the same turn of the loop (and X-BATCH-1 packs those answers)."""
    actor, h = gate
    actor.release.clear()
    took = watch_takes(h)
    turns = 0
    loop = asyncio.get_running_loop()
    ticking = True

    def tick() -> None:
        nonlocal turns
        turns += 1
        if ticking:
            loop.call_soon(tick)

    answered_in: list[int] = []

    async def capture(caller: str, ptype: int, data: bytes) -> None:
        answered_in.append(turns)
        h.answers.put_nowait(RpcEnvelope())

    h.set_answer(capture)
    h.start_scheduler()
    for i in range(10):
        await accept(h, f"r{i}")
    await wait_until(took, lambda: len(h.scheduler.ready) == 9)
    tick()
    actor.release.set()
    for _ in range(10):
        await h.answer()
    ticking = False
    assert actor.ran == [f"r{i}" for i in range(10)]
    assert len(set(answered_in)) == 1, answered_in


class Cancellable(Actor):
    """r1 waits until cancelled; the others time out within a second of their own."""

    actr_type = "acme:cancellable:1.0"

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.timed_out: list[str] = []

    @rpc("echo.v1.Echo.Say")
    async def say(self, req: SayRequest, ctx: Context) -> SayReply:
        if ctx.request_id == "r1":
            self.entered.set()
            await asyncio.Event().wait()
        try:
            async with asyncio.timeout(0.05):
                await asyncio.Event().wait()
        except TimeoutError:
            self.timed_out.append(ctx.request_id)
        return SayReply(text=req.text)


async def test_a_cancel_stops_its_request_and_not_the_next_on_the_same_task(
    tmp_path: Path,
) -> None:
    actor = Cancellable()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=1)
    try:
        took = watch_takes(h)
        h.start_scheduler()
        for rid in ("r1", "r2", "r3"):
            await accept(h, rid)
        await asyncio.wait_for(actor.entered.wait(), 5)
        await wait_until(took, lambda: len(h.scheduler.ready) == 2)
        assert h.scheduler.cancel(id_text(CALLER), "r1") == "running"
        # r1 is done CANCELLED (stored, not sent); r2 and r3 run on and their own
        # timeouts work (the task's cancellation was r1's alone).
        answers = [await h.answer(), await h.answer()]
        assert [a.request_id for a in answers] == ["r2", "r3"]
        assert all(not a.HasField("error") for a in answers)
        assert actor.timed_out == ["r2", "r3"]
        assert h.node.counters["cancelled_running"] == 1
    finally:
        await h.close()


def test_a_released_entry_withdraws_its_start(tmp_path: Path) -> None:
    """A row pulled (journaled) and given back unrun gets its attempt back; the
    release entry keeps the old start from matching its next hand-out."""
    path = tmp_path / "m.db.started"
    journal = StartJournal(path)
    journal.started(5, 1)
    journal.release(5)
    journal.started(6, 2)
    journal.release(7)  # not started: nothing written
    journal.close()
    assert StartJournal.read(path) == {(6, 2)}
    assert path.stat().st_size == 3 * ENTRY.size


@pytest.mark.parametrize(("durability", "ahead"), [("process", 16), ("power", 64)])
async def test_rows_taken_ahead_by_durability(tmp_path: Path, durability: str, ahead: int) -> None:
    """With an fsync per commit ("power") the scheduler takes more rows per commit."""
    h = await Harness.open(tmp_path, Gate(), mailbox=MailboxLimits(durability=durability))
    try:
        assert h.scheduler.ahead == ahead
        assert h.scheduler.capacity == 1 + ahead
    finally:
        await h.close()
