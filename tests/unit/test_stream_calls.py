"""Calls with streams (X-STR-6) between two nodes of one process (X-LOCAL-1, no
signaling): how a call's streams end when the call does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actr import local
from actr.actor import Actor, Context, rpc
from actr.errors import ActrError, InvalidArgument, TimedOut
from actr.identity import id_text
from actr.inbound_shell import Inbound
from actr.node import Node
from tests.unit.node_harness import Harness

PUT = "t.Sink.Put"
REFUSE = "t.Sink.Refuse"
STALL = "t.Sink.Stall"


class Sink(Actor):
    actr_type = "acme:sink:1.0"

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.exits: asyncio.Queue[str] = asyncio.Queue()

    @rpc(PUT)
    async def put(self, data: AsyncIterator[bytes], ctx: Context) -> bytes:
        self.running.set()
        n = 0
        try:
            async for block in data:
                n += len(block)
        except BaseException as e:
            self.exits.put_nowait(type(e).__name__)
            raise
        self.exits.put_nowait("end")
        return b"%d" % n

    @rpc(REFUSE)
    async def refuse(self, data: AsyncIterator[bytes], ctx: Context) -> bytes:
        raise InvalidArgument("offset 7 is not where the receiver is")

    @rpc(STALL)
    async def stall(self, data: AsyncIterator[bytes], ctx: Context) -> bytes:
        self.running.set()
        await asyncio.Event().wait()  # never reads its input
        return b""


class Src(Actor):
    actr_type = "acme:src:1.0"


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Node, Node, Sink]]:
    sink = Sink()
    hb = await Harness.open(tmp_path / "b", sink, max_concurrent_handlers=4)
    ha = await Harness.open(tmp_path / "a", Src())
    for h in (ha, hb):
        h.set_answer(Inbound.answer.__get__(h.node.inbound))
        local.register(h.node, actor=True)
    hb.start_scheduler()
    ha.start_scheduler()
    try:
        yield ha.node, hb.node, sink
    finally:
        for h in (ha, hb):
            local.unregister(h.node)
        await ha.close()
        await hb.close()


def open_streams(node: Node) -> tuple[int, int]:
    s = node.streams.core.stats()
    return s["inbound_open"], s["outbound_open"]


async def test_the_handlers_error_not_a_reset_reaches_a_client_stream(
    pair: tuple[Node, Node, Sink],
) -> None:
    a, b, _ = pair
    blocks = [b"x" * 60_000] * 60  # past the window: the sender meets the handler's end
    with pytest.raises(InvalidArgument, match="offset 7"):
        await a.call_client_stream(b.actr_id, REFUSE, blocks, bytes, timeout=10)  # type: ignore[type-var]


async def test_a_sender_waiting_for_credit_wakes_at_the_calls_deadline(
    pair: tuple[Node, Node, Sink],
) -> None:
    a, b, sink = pair
    call = await a.open_call(b.actr_id, STALL, send=bytes, timeout=1.0)
    await asyncio.wait_for(sink.running.wait(), 5)
    with pytest.raises(TimedOut):
        async with asyncio.timeout(10):
            while True:  # the stalled handler grants nothing after the first window
                await call.send(b"y" * 60_000)
    assert open_streams(a) == (0, 0)


async def test_a_caller_node_stopping_ends_the_callees_call_and_streams(
    pair: tuple[Node, Node, Sink],
) -> None:
    a, b, sink = pair
    call = await a.open_call(b.actr_id, PUT, send=bytes, timeout=30)
    await call.send(b"z" * 1000)
    await asyncio.wait_for(sink.running.wait(), 5)
    local.unregister(a)  # as a connection that closed
    assert await asyncio.wait_for(sink.exits.get(), 5) in ("CancelledError", "Unavailable")
    assert b.stream_calls.calls_of(id_text(a.actr_id)) == []
    assert open_streams(b) == (0, 0)


async def test_a_cancelled_call_leaves_no_stream_open(pair: tuple[Node, Node, Sink]) -> None:
    a, b, sink = pair
    call = await a.open_call(b.actr_id, PUT, send=bytes, timeout=30)
    await call.send(b"z" * 1000)
    await asyncio.wait_for(sink.running.wait(), 5)
    call.cancel()
    assert await asyncio.wait_for(sink.exits.get(), 5) == "CancelledError"
    with pytest.raises(ActrError) as err:
        await call.result()
    assert err.value.raw_code == 10102
    for _ in range(500):  # the ends' resets cross the link: a few loop turns
        if open_streams(a) == open_streams(b) == (0, 0):
            break
        await asyncio.sleep(0.01)
    assert open_streams(a) == open_streams(b) == (0, 0)


async def test_open_call_refused_before_sending_raises_at_once(
    pair: tuple[Node, Node, Sink],
) -> None:
    a, b, _ = pair
    with pytest.raises(InvalidArgument):
        await a.open_call(b.actr_id, PUT, send=bytes, metadata={"actr.stream.in": "mine"})
    assert open_streams(a) == (0, 0)
