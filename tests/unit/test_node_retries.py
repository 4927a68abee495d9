"""MBX-4 with handlers running side by side: a request that was running when its
process died (or stopped) runs alone when handed out again, so if it is the one
that kills the process, only its own attempts count towards the dead letters."""

from __future__ import annotations

import asyncio
from pathlib import Path

from actr import Actor, Context, rpc
from actr.mailbox import Mailbox
from examples.echo_pb2 import SayReply, SayRequest
from tests.unit.node_harness import Harness

ROUTE = "work.v1.Work.Do"


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


async def test_mbx4_a_request_that_ran_before_runs_alone(tmp_path: Path) -> None:
    actor = Work()
    h = await Harness.open(tmp_path, actor, max_concurrent_handlers=4)
    box: Mailbox = h.box
    for rid in ("a1", "a2", "b", "c"):
        await h.accept(rid, route=ROUTE)
    # b was running when the process stopped (its attempt counted); the others were
    # taken but not started (their attempts given back).
    taken = {r.request_id: r for r in await box.dequeue(10)}
    for rid, record in taken.items():
        await box.requeue(record, started=rid == "b")
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
