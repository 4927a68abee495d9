"""The stream registry: chunks in sequence order, end_of_stream, bounded reordering."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.protocol.actr_pb2 import DataStream
from actr.streams import StreamOverflow, StreamRegistry


def chunk(seq: int, end: bool = False, sid: str = "s") -> DataStream:
    c = DataStream(stream_id=sid, sequence=seq, payload=f"{seq}".encode())
    if end:
        c.end_of_stream = True
    return c


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(range(30))))
def test_chunks_arrive_in_sequence_order_whatever_the_arrival_order(order: list[int]) -> None:
    async def run() -> list[int]:
        reg = StreamRegistry()
        rx = reg.register("s")
        for seq in order:
            reg.deliver("peer", chunk(seq, end=seq == 29))
        return [c.sequence for c in await asyncio.wait_for(rx.collect(), 1)]

    assert asyncio.run(run()) == list(range(30))


async def test_unregistered_duplicate_and_foreign_chunks_are_dropped_and_counted() -> None:
    reg = StreamRegistry()
    reg.deliver("peer", chunk(0, sid="nobody"))
    rx = reg.register("s")
    reg.deliver("peer", chunk(0))
    reg.deliver("peer", chunk(0))
    reg.deliver("other", chunk(1))
    reg.deliver("peer", chunk(1, end=True))
    assert [c.sequence for c in await rx.collect()] == [0, 1]
    assert reg.drops == {
        "unregistered_stream": 1,
        "duplicate_chunk": 1,
        "chunk_from_other_sender": 1,
    }


async def test_reorder_buffer_is_bounded() -> None:
    reg = StreamRegistry()
    rx = reg.register("s", max_reorder=3)
    for seq in range(1, 5):  # sequence 0 never comes
        reg.deliver("peer", chunk(seq))
    with pytest.raises(StreamOverflow):
        await rx.collect()
    assert reg.drops["reorder_overflow"] == 1


async def test_a_lost_sender_breaks_its_streams() -> None:
    reg = StreamRegistry()
    rx = reg.register("s")
    reg.deliver("peer", chunk(0))
    reg.fail_sender("peer", ConnectionError("gone"))
    with pytest.raises(ConnectionError):
        await rx.collect()
