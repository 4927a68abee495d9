"""MBX-4 with handlers running side by side: a request that was running when its
process died runs alone when handed out again, so if it is the one that kills the
process, only its own attempts count towards the dead letters."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from actr import Actor, Context, rpc
from actr.mailbox import MailboxRecord
from examples.echo_pb2 import SayReply, SayRequest
from tests.unit.node_harness import Harness

ROUTE = "work.v1.Work.Do"
RENDEZVOUS = "meet.v1.Meet.Do"


class Work(Actor):
    actr_type = "acme:work:1.0"

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.beside: dict[str, set[str]] = {}  # request id -> what ran when it started

    @rpc(ROUTE)
    async def do(self, req: SayRequest, ctx: Context) -> SayReply:
        self.beside[ctx.request_id] = set(self.running)
        self.running.add(ctx.request_id)
        for _ in range(3):
            await asyncio.sleep(0.01)  # work that yields, so handlers interleave
        self.running.discard(ctx.request_id)
        return SayReply(text=req.text)


class Rendezvous(Actor):
    """``wait`` returns once ``go`` has run (a handler waiting on a later request)."""

    actr_type = "acme:meet:1.0"

    def __init__(self) -> None:
        self.went = asyncio.Event()

    @rpc(RENDEZVOUS)
    async def do(self, req: SayRequest, ctx: Context) -> SayReply:
        if ctx.request_id == "wait":
            await self.went.wait()
        elif ctx.request_id == "go":
            self.went.set()
        return SayReply(text=ctx.request_id)


async def test_mbx4_a_request_its_process_died_with_runs_alone(tmp_path: Path) -> None:
    first = await Harness.open(tmp_path, Work(), max_concurrent_handlers=4)
    for rid in ("a1", "a2", "b", "c"):
        await first.accept(rid, route=ROUTE)
    # The process dies running b; a1, a2 and c had been taken but not started.
    taken = {r.request_id: r for r in await first.box.dequeue(10)}
    for rid in ("a1", "a2", "c"):
        await first.box.requeue(taken[rid], started=False)
    await first.box.close()

    actor = Work()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=4)  # recovers b
    assert [(rid, attempts) for rid, _, attempts in h.rows()] == [
        ("a1", 0),
        ("a2", 0),
        ("b", 1),
        ("c", 0),
    ]
    h.start_scheduler()
    answered = {(await h.answer()).request_id for _ in range(4)}
    assert answered == {"a1", "a2", "b", "c"}
    assert actor.beside["a2"] == {"a1"}  # the untried ones before b ran side by side
    assert actor.beside["b"] == set()  # b started once they had finished
    assert "b" not in actor.beside["c"]  # and nothing started while b ran
    await h.close()


async def test_a_request_put_back_in_this_process_does_not_hold_the_others_up(
    tmp_path: Path,
) -> None:
    """Only a request a dead process left in flight runs alone: one put back by this
    process (a runtime fault) runs beside a handler that waits for a later request."""
    actor = Rendezvous()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=4)
    original = h.scheduler.handling._run
    faults = ["c"]

    async def flaky(record: MailboxRecord, env: Any) -> Any:
        if record.request_id in faults:
            faults.remove(record.request_id)
            raise RuntimeError("runtime bug")
        return await original(record, env)

    h.scheduler.handling._run = flaky  # type: ignore[method-assign]
    h.start_scheduler()
    await h.accept("wait", route=RENDEZVOUS)  # runs until "go" has run
    await h.accept("c", route=RENDEZVOUS)  # fails once, is put back
    await h.accept("go", route=RENDEZVOUS)
    answered = {(await h.answer()).request_id for _ in range(3)}
    assert answered == {"wait", "c", "go"}
    await h.close()
