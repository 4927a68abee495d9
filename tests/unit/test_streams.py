"""The stream registry: chunks handed over in sequence order, end_of_stream, the bounded
reorder buffer, chunks of unregistered streams dropped and counted, and a stream taking
chunks from its own sender only (F7)."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.protocol.actr_pb2 import DataStream
from actr.streams import StreamOverflow, StreamReceiver, StreamRegistry, StreamSender


def chunk(seq: int, payload: bytes | None = None, sid: str = "s", end: bool = False) -> DataStream:
    body = f"c{seq}".encode() if payload is None else payload
    return DataStream(stream_id=sid, sequence=seq, payload=body, end_of_stream=end)


async def collect(rx: StreamReceiver) -> list[bytes]:
    return [c.payload for c in await asyncio.wait_for(rx.collect(), 5)]


async def test_in_order_chunks_then_end_of_stream() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    for i in range(3):
        reg.deliver("peer", chunk(i))
    reg.deliver("peer", chunk(3, b"last", end=True))
    assert rx.closed
    assert await collect(rx) == [b"c0", b"c1", b"c2", b"last"]
    assert not reg.drops


async def test_out_of_order_chunks_are_delivered_in_sequence() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    for seq in (2, 0, 3, 1):
        reg.deliver("peer", chunk(seq))
    assert rx.next_sequence == 4
    reg.deliver("peer", chunk(4, b"", end=True))  # an empty end chunk only closes
    assert await collect(rx) == [b"c0", b"c1", b"c2", b"c3"]


async def test_end_of_stream_arriving_first_waits_for_earlier_chunks() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    reg.deliver("peer", chunk(2, b"end", end=True))
    assert not rx.closed
    reg.deliver("peer", chunk(1))
    assert not rx.closed
    reg.deliver("peer", chunk(0))
    assert rx.closed
    assert await collect(rx) == [b"c0", b"c1", b"end"]


async def test_duplicates_and_chunks_after_end_are_dropped_and_counted() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer")
    reg.deliver("peer", chunk(0))
    reg.deliver("peer", chunk(0))  # already delivered
    reg.deliver("peer", chunk(3))
    reg.deliver("peer", chunk(3))  # already held
    reg.deliver("peer", chunk(2, end=True))
    reg.deliver("peer", chunk(5))  # held 3 is past the end too, but arrived first
    assert reg.drops["duplicate_chunk"] == 2
    assert reg.drops["chunk_after_end"] == 1
    reg.deliver("peer", chunk(1))
    assert await collect(rx) == [b"c0", b"c1", b"c2"]
    # The stream is closed and unregistered: later chunks count as unregistered.
    reg.deliver("peer", chunk(6))
    assert reg.drops["unregistered_stream"] == 1


async def test_chunks_for_an_unregistered_stream_are_dropped_and_counted() -> None:
    reg = StreamRegistry()
    rx = reg.register("mine", "peer")
    reg.deliver("peer", chunk(0, sid="other"))
    reg.deliver("peer", chunk(1, sid="other"))
    assert reg.drops["unregistered_stream"] == 2
    reg.unregister("mine", "peer")
    reg.deliver("peer", chunk(0, sid="mine"))
    assert reg.drops["unregistered_stream"] == 3
    assert rx.next_sequence == 0


async def test_f7_a_third_peer_cannot_feed_a_stream_another_sender_announced() -> None:
    """A stream is its sender's (DC-2: the sender is the connection's): the same
    stream_id from anyone else is dropped, also when it arrives first."""
    reg = StreamRegistry()
    rx = reg.register("s", "peerA")
    reg.deliver("peerB", chunk(0, b"forged"))  # before the announced sender's first chunk
    reg.deliver("peerB", chunk(1, b"forged", end=True))
    assert reg.drops["chunk_from_other_sender"] == 2
    assert rx.next_sequence == 0 and not rx.closed
    reg.deliver("peerA", chunk(0))
    reg.deliver("peerA", chunk(1, end=True))
    assert await collect(rx) == [b"c0", b"c1"]


async def test_f7_one_stream_id_from_two_senders_is_two_streams() -> None:
    reg = StreamRegistry()
    a, b = reg.register("s", "peerA"), reg.register("s", "peerB")
    reg.deliver("peerB", chunk(0, b"b0", end=True))
    reg.deliver("peerA", chunk(0, b"a0"))
    reg.deliver("peerA", chunk(1, b"a1", end=True))
    assert (await collect(a), await collect(b)) == ([b"a0", b"a1"], [b"b0"])
    assert not reg.drops
    reg.deliver("peerC", chunk(0))  # nobody registered "s" any more
    assert reg.drops["unregistered_stream"] == 1


async def test_f7_refused_chunks_are_counted_and_touch_no_stream() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peerA")
    reg.refuse("peerA", chunk(0, end=True))
    assert reg.drops["sender_refused_by_acl"] == 1
    assert rx.next_sequence == 0 and not rx.closed


async def test_reorder_buffer_is_bounded_and_overflow_breaks_the_stream() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", "peer", max_reorder=4)
    reg.deliver("peer", chunk(0))
    for seq in range(2, 6):  # chunk 1 is missing: 4 chunks wait
        reg.deliver("peer", chunk(seq))
    assert not rx.closed
    reg.deliver("peer", chunk(6))
    assert rx.closed
    assert reg.drops["reorder_overflow"] == 1
    got: list[bytes] = []
    with pytest.raises(StreamOverflow):
        async for c in rx:
            got.append(c.payload)
    assert got == [b"c0"]  # what was delivered before the overflow still arrives
    assert rx._held == {}  # the buffer's memory is given back
    reg.deliver("peer", chunk(1))
    assert reg.drops["unregistered_stream"] == 1


async def test_fail_sender_breaks_its_open_streams_only() -> None:
    reg = StreamRegistry()
    a, b = reg.register("a", "peerA"), reg.register("b", "peerB")
    reg.deliver("peerA", chunk(0, sid="a"))
    reg.deliver("peerB", chunk(0, sid="b"))
    reg.fail_sender("peerA", ConnectionError("gone"))
    with pytest.raises(ConnectionError):
        await collect(a)
    assert not b.closed
    reg.deliver("peerB", chunk(1, sid="b", end=True))
    assert await collect(b) == [b"c0", b"c1"]


async def test_register_twice_is_refused_until_closed() -> None:
    reg = StreamRegistry()
    reg.register("s", "peer")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("s", "peer")
    reg.deliver("peer", chunk(0, end=True))
    rx = reg.register("s", "peer")  # the first one is closed
    assert rx.next_sequence == 0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.randoms(use_true_random=False), st.booleans())
def test_any_arrival_order_yields_sequence_order(
    n: int, rnd: random.Random, with_duplicates: bool
) -> None:
    async def run() -> None:
        reg = StreamRegistry()
        rx = reg.register("s", "peer", max_reorder=n)
        chunks = [chunk(i, end=i == n - 1) for i in range(n)]
        order = chunks + (chunks[: n // 2] if with_duplicates else [])
        rnd.shuffle(order)
        for c in order:
            reg.deliver("peer", c)
        assert rx.closed
        assert await collect(rx) == [f"c{i}".encode() for i in range(n)]
        assert sum(reg.drops.values()) == len(order) - n

    asyncio.run(run())


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
