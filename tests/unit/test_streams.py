"""The asyncio layer of streams: a receiver iterates what the core releases and wakes
when chunks come; closing it (explicitly, by leaving or dropping its iteration, by
``async with``, or by its sender failing or going idle) takes it out of the
registry; the sender numbers its chunks. The rules themselves: test_stream_core.py."""

from __future__ import annotations

import asyncio
import gc

import pytest

from actr.errors import TimedOut
from actr.protocol.actr_pb2 import DataStream
from actr.streams import StreamOverflow, StreamReceiver, StreamRegistry, StreamSender


def chunk(seq: int, payload: bytes | None = None, sid: str = "s", end: bool = False) -> DataStream:
    body = f"c{seq}".encode() if payload is None else payload
    return DataStream(stream_id=sid, sequence=seq, payload=body, end_of_stream=end)


async def collect(rx: StreamReceiver) -> list[bytes]:
    return [c.payload for c in await asyncio.wait_for(rx.collect(), 5)]


async def test_chunks_in_order_then_end_of_stream() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    for seq in (2, 0, 1):
        reg.deliver("peer", chunk(seq))
    reg.deliver("peer", chunk(3, b"last", end=True))
    assert rx.closed and len(reg) == 0
    assert await collect(rx) == [b"c0", b"c1", b"c2", b"last"]
    assert not reg.drops


async def test_a_waiting_reader_wakes_when_a_chunk_is_released() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    it = aiter(rx)
    # Step the reader by hand up to its wait: it hands out the future it waits on.
    step = anext(it).__await__()
    waiter = step.send(None)
    assert isinstance(waiter, asyncio.Future) and not waiter.done()
    reg.deliver("peer", chunk(1))  # held: nothing for the reader yet
    assert not waiter.done()
    reg.deliver("peer", chunk(0))  # released: the reader is woken
    assert waiter.done()
    with pytest.raises(StopIteration) as got:
        step.send(None)
    assert got.value.value.payload == b"c0"
    assert (await asyncio.wait_for(anext(it), 5)).payload == b"c1"
    await it.aclose()  # type: ignore[attr-defined]


async def test_closing_a_receiver_unregisters_it() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    reg.deliver("peer", chunk(0))
    rx.close()
    assert rx.closed and len(reg) == 0
    await asyncio.wait_for(rx.wait_closed(), 5)
    assert await collect(rx) == []  # what it held was freed
    reg.deliver("peer", chunk(1))
    assert reg.drops["unregistered_stream"] == 1
    reg.register("s", "peer")  # the key is free again


async def test_a_reader_waiting_when_its_receiver_is_closed_stops() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    reading = asyncio.ensure_future(rx.collect())
    reg.deliver("peer", chunk(1))  # held: the reader keeps waiting
    rx.close()
    assert await asyncio.wait_for(reading, 5) == []


async def test_leaving_the_iteration_closes_the_receiver() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    reg.deliver("peer", chunk(0))
    reg.deliver("peer", chunk(1))
    async for c in rx:
        assert c.payload == b"c0"
        break
    gc.collect()  # the abandoned iterator is finalized (at once, under CPython)
    await asyncio.wait_for(rx.wait_closed(), 5)
    assert len(reg) == 0
    reg.deliver("peer", chunk(2))
    assert reg.drops["unregistered_stream"] == 1


async def test_aclose_and_async_with_close_the_receiver() -> None:
    reg = StreamRegistry()
    rx = reg.register("a", "peer")
    it = aiter(rx)
    reg.deliver("peer", chunk(0, sid="a"))
    await anext(it)
    await it.aclose()  # type: ignore[attr-defined]
    assert rx.closed
    async with reg.register("b", "peer") as rb:
        assert len(reg) == 1
    assert rb.closed and len(reg) == 0


async def test_an_error_in_the_loop_body_closes_the_receiver() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    reg.deliver("peer", chunk(0))
    with pytest.raises(KeyError):
        async for _ in rx:
            raise KeyError("handler bug")
    gc.collect()
    await asyncio.wait_for(rx.wait_closed(), 5)  # its iterator was dropped: it closes
    assert len(reg) == 0


async def test_fail_sender_breaks_and_unregisters_its_streams_only() -> None:
    reg = StreamRegistry()
    a, b = reg.register("a", "peerA"), reg.register("b", "peerB")
    reg.deliver("peerA", chunk(0, sid="a"))
    reading = asyncio.ensure_future(a.collect())
    reg.fail_sender("peerA", ConnectionError("gone"))
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(reading, 5)
    assert a.closed and not b.closed and len(reg) == 1
    reg.deliver("peerB", chunk(0, sid="b", end=True))
    assert await collect(b) == [b"c0"]


async def test_overflow_raises_after_what_was_released() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer", max_buffered_bytes=6)
    for seq in (0, 2, 3, 4):  # 2 bytes each: the fourth is one too many
        reg.deliver("peer", chunk(seq))
    got: list[bytes] = []
    with pytest.raises(StreamOverflow):
        async for c in rx:
            got.append(c.payload)
    assert got == [b"c0"]
    assert reg.drops["buffer_overflow"] == 1


async def test_idle_receivers_expire_on_the_timer_the_node_drives() -> None:
    now = [0.0]
    reg = StreamRegistry(idle_timeout=30, clock=lambda: now[0])
    armed: list[float] = []
    reg.on_deadline = armed.append
    rx = reg.register("s", "peer")
    assert armed == [30.0] and reg.next_deadline() == 30.0
    reading = asyncio.ensure_future(rx.collect())
    assert reg.expire(29.0) == 0
    now[0] = 30.0
    assert reg.expire() == 1
    with pytest.raises(TimedOut, match="idle for 30s"):
        await asyncio.wait_for(reading, 5)
    assert len(reg) == 0 and reg.drops["stream_expired"] == 1
    assert reg.next_deadline() is None


async def test_sender_numbers_chunks_and_flags_the_end() -> None:
    sent: list[DataStream] = []

    async def send(c: DataStream) -> None:
        sent.append(c)

    tx = StreamSender("s", send)
    await tx.send(b"a", {"k": "v"})
    await tx.send(b"b")
    await tx.end(b"z")
    assert [(c.sequence, c.payload, c.end_of_stream) for c in sent] == [
        (0, b"a", False),
        (1, b"b", False),
        (2, b"z", True),
    ]
    assert [(m.key, m.value) for m in sent[0].metadata] == [("k", "v")]
    assert all(c.stream_id == "s" and c.IsInitialized() for c in sent)
    with pytest.raises(RuntimeError, match="already ended"):
        await tx.send(b"more")
    with pytest.raises(RuntimeError):
        await tx.end()

    # What the sender writes, the registry reads back in order.
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    for c in reversed(sent):
        reg.deliver("peer", c)
    assert await collect(rx) == [b"a", b"b", b"z"]
