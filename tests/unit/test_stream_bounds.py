"""Stream bounds and ends that a review found missing: caps on inbound streams,
a failed call's stream not read as whole, an interrupted end() still telling the
reader, a sender's early reset held with its early chunks, and no credit deadlock
with a small window. Sans-IO tests pass time in; asyncio ones wait with timeouts."""

from __future__ import annotations

import asyncio

import pytest

from actr.errors import ActrError, Cancelled, ErrorCode, Internal, ResourceExhausted
from actr.protocol.actr_pb2 import DataStream
from actr.stream_core import Stream, StreamCore, StreamLimit
from actr.stream_credit import reset_frame
from actr.streams import StreamRegistry
from tests.unit.test_stream_sender import Link, read_all

T0 = 100.0


def chunk(seq: int, payload: bytes = b"x", sid: str = "s", end: bool = False) -> DataStream:
    return DataStream(stream_id=sid, sequence=seq, payload=payload, end_of_stream=end)


def take_all(core: StreamCore, s: Stream) -> list[bytes]:
    out = []
    while (item := core.take(s, T0)[0]) is not None:
        assert isinstance(item, DataStream)
        out.append(item.payload)
    return out


# -- 1. caps on inbound streams -----------------------------------------------


def test_open_past_the_per_sender_cap_raises_stream_limit_and_is_counted() -> None:
    core = StreamCore(max_streams_per_sender=2, max_streams=3)
    a, _ = core.open("a", "p", T0)
    core.open("b", "p", T0)
    with pytest.raises(StreamLimit) as err:
        core.open("c", "p", T0)
    assert isinstance(err.value, ResourceExhausted)
    assert err.value.raw_code == ErrorCode.RESOURCE_EXHAUSTED
    core.open("c", "q", T0)  # another sender has its own share
    with pytest.raises(StreamLimit):
        core.open("d", "r", T0)  # but 3 in all
    assert core.drops == {"stream_limit": 2} and len(core) == 3
    core.close(a, T0)  # a slot frees: the sender may open one more
    core.open("c", "p", T0)


def test_an_ended_stream_holds_its_slot_until_its_reader_took_or_freed_its_chunks() -> None:
    core = StreamCore(max_streams_per_sender=1)
    s, _ = core.open("a", "p", T0, credit=True)
    core.receive("p", chunk(0, b"x" * 1000, sid="a", end=True), T0)  # a whole window's worth
    assert not s.registered and len(core) == 0
    with pytest.raises(StreamLimit):  # its unread chunks still pin memory
        core.open("b", "p", T0)
    assert take_all(core, s) == [b"x" * 1000]
    b, _ = core.open("b", "p", T0)  # taken: the slot is free
    core.receive("p", chunk(0, sid="b", end=True), T0)
    core.close(b, T0)  # or freed by its reader
    core.open("c", "p", T0)


def test_the_caps_are_registry_arguments() -> None:
    reg = StreamRegistry(clock=lambda: T0, max_streams_per_sender=1, max_streams=5)
    reg.register("a", "p")
    with pytest.raises(StreamLimit):
        reg.register("b", "p")
    assert reg.drops["stream_limit"] == 1


# -- 2. a failed call's ended stream is not read as whole ---------------------


def test_close_with_an_error_after_the_end_surfaces_it_instead_of_the_unread_chunks() -> None:
    core = StreamCore()
    s, _ = core.open("s", "p", T0)
    core.receive("p", chunk(0, b"a"), T0)
    core.receive("p", chunk(1, b"b", end=True), T0)
    assert not s.registered and s.unread == 2
    err = Internal("call failed")
    assert core.close(s, T0, err).send == []  # it ended: nobody to reset
    assert s.error is err and s.unread == 0
    done, _ = core.open("d", "p", T0)
    core.receive("p", chunk(0, b"a", sid="d", end=True), T0)
    assert take_all(core, done) == [b"a"]
    core.close(done, T0, err)  # read whole already: nothing was lost
    assert done.error is None


# -- 3. end() interrupted resets the stream -----------------------------------


async def test_end_cancelled_while_waiting_for_credit_resets_the_stream_cancelled() -> None:
    link = Link()
    rx = link.b.register("s", "A")
    tx = link.a.open_sender("B", "s", link.send)
    await asyncio.wait_for(tx.send(b"x" * 1000), 5)  # the whole window; nobody reads
    with pytest.raises(TimeoutError):  # a deadline cancels it while it waits for credit
        await asyncio.wait_for(tx.end(b"y" * 10), 0.05)
    assert tx.closed
    with pytest.raises(Cancelled):
        await asyncio.wait_for(read_all(rx), 5)  # told, not left to its idle timeout
    await link.close()


async def test_end_failing_to_send_resets_with_its_error() -> None:
    sent: list[DataStream] = []

    async def send(frame: DataStream) -> None:
        if frame.end_of_stream:
            raise ActrError.from_code(ErrorCode.UNAVAILABLE, "link down")
        sent.append(frame)

    reg = StreamRegistry(clock=lambda: T0)
    tx = reg.open_sender("B", "s", send, credit=True)
    with pytest.raises(ActrError):
        await tx.end(b"z")
    assert tx.closed and len(reg.core.out) == 0
    assert [f.control.reset.code for f in sent] == [ErrorCode.UNAVAILABLE]


# -- 4. a sender's reset before registration is held with its chunks ----------


def test_a_reset_after_early_chunks_is_held_and_raised_after_them() -> None:
    core = StreamCore()
    core.set_peer("p", credit=True, window=1000, now=T0)
    core.receive("p", chunk(0, b"a"), T0)
    fail = reset_frame("s", ErrorCode.APPLICATION_ERROR, "boom", from_receiver=False)
    assert core.receive("p", fail, T0).send == []
    assert "forged_reset" not in core.drops
    s, fx = core.open("s", "p", T0 + 1)
    assert fx.wake and not s.registered and isinstance(s.error, ActrError)
    assert s.error.raw_code == ErrorCode.APPLICATION_ERROR
    assert take_all(core, s) == [b"a"]
    assert core.receive("q", fail, T0).send == [] and core.drops == {"forged_reset": 1}


def test_a_held_reset_goes_with_its_chunks_and_the_sender_is_not_reset_back() -> None:
    core = StreamCore()
    core.set_peer("p", credit=True, window=1000, now=T0)
    core.receive("p", chunk(0), T0)
    core.receive("p", reset_frame("s", ErrorCode.CANCELLED, "", from_receiver=False), T0)
    fx = core.expire(T0 + 2)
    assert fx.send == [] and core.drops == {"unregistered_stream": 1}
    assert core.hold.chunks == 0 and not core.hold._resets


# -- 5. no credit deadlock with a small window --------------------------------


async def test_a_small_window_never_deadlocks_a_sender() -> None:
    link = Link(window=1000)
    rx = link.b.register("s", "A")
    tx = link.a.open_sender("B", "s", link.send)
    reading = asyncio.ensure_future(read_all(rx))
    data = b"a" * 400 + b"b" * 1000 + b"c" * 999

    async def write() -> None:
        await tx.send(data[:400])
        await tx.send(data[400:1400])
        await tx.end(data[1400:])

    await asyncio.wait_for(write(), 5)
    assert await asyncio.wait_for(reading, 5) == data
    assert all(len(c.payload) <= 500 for c in link.on_b)  # half a window at most
    await link.close()
