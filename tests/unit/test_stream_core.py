"""The stream core, sans-IO and with time passed in: chunks released in sequence
order, end_of_stream, the reorder and byte bounds, F7 ownership by (sender,
stream_id), drops counted by reason, and idle streams expired by ``expire(now)``."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.errors import TimedOut
from actr.protocol.actr_pb2 import DataStream
from actr.stream_core import Stream, StreamCore, StreamOverflow

T0 = 100.0


def open_(core: StreamCore, sid: str, sender: str, now: float = T0, **kw: object) -> Stream:
    stream, fx = core.open(sid, sender, now, **kw)  # type: ignore[arg-type]
    assert not fx.send
    return stream


def rx(core: StreamCore, sender: str, c: DataStream, now: float = T0) -> Stream | None:
    """The stream whose reader has news after ``c``, if any."""
    fx = core.receive(sender, c, now)
    assert len(fx.wake) <= 1
    return fx.wake[0] if fx.wake else None


def chunk(seq: int, payload: bytes | None = None, sid: str = "s", end: bool = False) -> DataStream:
    body = f"c{seq}".encode() if payload is None else payload
    return DataStream(stream_id=sid, sequence=seq, payload=body, end_of_stream=end)


def drain(stream: Stream, now: float = T0, core: StreamCore | None = None) -> list[bytes]:
    core = core or StreamCore()
    out = []
    while (c := core.take(stream, now)[0]) is not None:
        assert isinstance(c, DataStream)
        out.append(c.payload)
    return out


def test_in_order_chunks_then_end_of_stream() -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0)
    for i in range(3):
        assert rx(core, "peer", chunk(i), T0) is s  # its reader has news
    core.receive("peer", chunk(3, b"last", end=True), T0)
    assert not s.registered and s.error is None and len(core) == 0
    assert drain(s) == [b"c0", b"c1", b"c2", b"last"]
    assert not core.drops


def test_out_of_order_chunks_wait_then_are_released_in_sequence() -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0)
    assert rx(core, "peer", chunk(2), T0) is None  # held: nothing for the reader yet
    assert rx(core, "peer", chunk(3), T0) is None
    assert (s.held, s.held_bytes) == (2, 4)
    assert rx(core, "peer", chunk(0), T0) is s
    assert rx(core, "peer", chunk(1), T0) is s
    assert s.next_sequence == 4 and s.held == 0
    core.receive("peer", chunk(4, b"", end=True), T0)  # an empty end chunk only ends
    assert drain(s) == [b"c0", b"c1", b"c2", b"c3"]
    assert not s.registered


def test_end_of_stream_arriving_first_waits_for_earlier_chunks() -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0)
    core.receive("peer", chunk(2, b"end", end=True), T0)
    core.receive("peer", chunk(1), T0)
    assert s.registered
    core.receive("peer", chunk(0), T0)
    assert not s.registered
    assert drain(s) == [b"c0", b"c1", b"end"]


def test_duplicates_and_chunks_after_end_are_dropped_and_counted() -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0)
    core.receive("peer", chunk(0), T0)
    core.receive("peer", chunk(0), T0)  # already released
    core.receive("peer", chunk(3), T0)
    core.receive("peer", chunk(3), T0)  # already held
    core.receive("peer", chunk(2, end=True), T0)  # the held 3 is past the end: dropped
    core.receive("peer", chunk(5), T0)
    assert core.drops == {"duplicate_chunk": 2, "chunk_after_end": 2}
    assert (s.held, s.held_bytes) == (1, 2)
    core.receive("peer", chunk(1), T0)
    assert drain(s) == [b"c0", b"c1", b"c2"]
    core.receive("peer", chunk(6), T0)  # ended and out of the table
    assert core.drops["unregistered_stream"] == 1


def test_f7_a_stream_is_its_senders_and_one_id_from_two_senders_is_two_streams() -> None:
    core = StreamCore()
    a = open_(core, "s", "peerA", T0)
    core.receive("peerB", chunk(0, b"b0"), T0)  # before peerA's first chunk
    assert core.drops["chunk_from_other_sender"] == 1  # counted: an F7 signal
    assert a.next_sequence == 0 and core.hold.chunks == 1  # held as peerB's own (X-STR-8)
    b = open_(core, "s", "peerB", T0)
    core.receive("peerB", chunk(1, b"b1", end=True), T0)
    core.receive("peerA", chunk(0, b"a0", end=True), T0)
    assert (drain(a), drain(b)) == ([b"a0"], [b"b0", b"b1"])
    core.receive("peerC", chunk(0), T0)  # nobody has "s" any more: held a while (X-STR-8)
    assert core.drops == {"chunk_from_other_sender": 1} and core.hold.chunks == 1
    core.expire(T0 + core.hold.hold_time)
    assert core.drops == {"chunk_from_other_sender": 1, "unregistered_stream": 1}


def test_register_twice_is_refused_until_the_first_is_over() -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0)
    with pytest.raises(ValueError, match="already registered"):
        open_(core, "s", "peer", T0)
    core.close(s, T0)
    assert open_(core, "s", "peer", T0).next_sequence == 0


def test_x_str_5_a_sequence_too_far_ahead_is_dropped_and_the_stream_goes_on() -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0, max_reorder=4)
    core.receive("peer", chunk(0), T0)
    for seq in range(2, 6):  # chunk 1 is missing: 2..5 wait (at most 4 ahead of 1)
        core.receive("peer", chunk(seq), T0)
    assert rx(core, "peer", chunk(6), T0) is None  # 5 ahead of 1: not held
    assert rx(core, "peer", chunk(2**64 - 1), T0) is None  # nor any huge number
    assert core.drops == {"sequence_too_far": 2}
    assert s.registered and s.error is None and s.held == 4
    core.receive("peer", chunk(1), T0)
    core.receive("peer", chunk(6, end=True), T0)  # sent again, now in reach
    assert drain(s) == [f"c{i}".encode() for i in range(7)]
    assert not s.registered and s.error is None
    core.receive("peer", chunk(7), T0)  # a straggler of a stream that ended
    assert core.drops["unregistered_stream"] == 1


def test_bytes_held_and_not_taken_are_bounded_per_stream() -> None:
    core = StreamCore(max_buffered_bytes=10)
    s = open_(core, "s", "peer", T0)
    core.receive("peer", chunk(0, b"x" * 4), T0)  # released, not taken
    core.receive("peer", chunk(2, b"y" * 4), T0)  # held
    assert s.buffered_bytes == 8
    assert core.take(s, T0)[0] is not None  # the reader takes 4 bytes: room again
    core.receive("peer", chunk(3, b"z" * 6), T0)
    assert s.buffered_bytes == 10 and s.registered
    core.receive("peer", chunk(1, b"!"), T0)  # one byte too many
    assert isinstance(s.error, StreamOverflow) and "buffer full" in str(s.error)
    assert core.drops == {"buffer_overflow": 1}
    other = open_(core, "t", "peer", T0)  # the bound is per stream
    core.receive("peer", chunk(0, b"x" * 10, sid="t"), T0)
    assert other.registered


def test_fail_sender_breaks_its_open_streams_only() -> None:
    core = StreamCore()
    a, b = open_(core, "a", "peerA", T0), open_(core, "b", "peerB", T0)
    core.receive("peerA", chunk(0, sid="a"), T0)
    err = ConnectionError("gone")
    assert core.fail_sender("peerA", err).wake == [a]
    assert (a.error, a.registered, b.registered, len(core)) == (err, False, True, 1)
    assert drain(a) == [b"c0"]


def test_close_takes_the_stream_out_and_frees_what_it_held() -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0)
    core.receive("peer", chunk(0), T0)
    core.receive("peer", chunk(2), T0)
    core.close(s, T0)
    assert (len(core), s.registered, s.buffered_bytes, core.take(s, T0)[0]) == (0, False, 0, None)
    core.receive("peer", chunk(1), T0)
    assert core.drops == {"unregistered_stream": 1}
    core.close(s, T0)  # twice: nothing more


def test_an_idle_stream_expires_and_activity_keeps_it_alive() -> None:
    core = StreamCore(idle_timeout=30)
    quiet = open_(core, "quiet", "peer", T0)
    busy = open_(core, "busy", "peer", T0)
    assert core.next_deadline() == T0 + 30
    core.receive("peer", chunk(0, sid="busy"), T0 + 20)  # a chunk: active
    assert core.expire(T0 + 29).wake == []
    assert core.expire(T0 + 30).wake == [quiet]
    assert isinstance(quiet.error, TimedOut) and not quiet.registered
    assert core.drops == {"stream_expired": 1}
    # "busy" was pushed back to its true deadline; taking a chunk is activity too.
    assert core.next_deadline() == T0 + 50
    assert core.take(busy, T0 + 45)[0] is not None
    assert core.expire(T0 + 50).wake == []
    assert core.next_deadline() == T0 + 75
    assert core.expire(T0 + 75).wake == [busy]
    assert core.next_deadline() is None


def test_an_expired_stream_frees_what_nobody_read() -> None:
    core = StreamCore(idle_timeout=5)
    s = open_(core, "s", "peer", T0)
    for i in range(3):
        core.receive("peer", chunk(i), T0)
    core.receive("peer", chunk(9), T0)
    assert core.expire(T0 + 5).wake == [s]
    assert (s.buffered_bytes, core.take(s, T0 + 5)[0]) == (0, None)


def test_streams_that_are_over_leave_no_deadline_behind() -> None:
    core = StreamCore(idle_timeout=5, max_streams_per_sender=200)  # ended, unread: counted
    for i in range(200):
        open_(core, f"s{i}", "peer", T0 + i)
        core.receive("peer", chunk(0, sid=f"s{i}", end=True), T0 + i)
    assert core.next_deadline() is None
    assert len(core._idle) == 0
    assert core.expire(T0 + 1000).wake == []


def test_no_idle_timeout_no_deadlines() -> None:
    core = StreamCore(idle_timeout=None)
    open_(core, "s", "peer", T0)
    assert core.next_deadline() is None
    assert core.expire(T0 + 10**9).wake == []


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.randoms(use_true_random=False), st.booleans())
def test_any_arrival_order_yields_sequence_order(
    n: int, rnd: random.Random, with_duplicates: bool
) -> None:
    core = StreamCore()
    s = open_(core, "s", "peer", T0, max_reorder=n)
    chunks = [chunk(i, end=i == n - 1) for i in range(n)]
    order = chunks + (chunks[: n // 2] if with_duplicates else [])
    rnd.shuffle(order)
    got: list[bytes] = []
    for c in order:
        core.receive("peer", c, T0)
        if rnd.random() < 0.5:  # the reader takes at any point
            got += drain(s)
    got += drain(s)
    assert not s.registered and s.error is None
    assert got == [f"c{i}".encode() for i in range(n)]
    assert sum(core.drops.values()) == len(order) - n
    assert s.buffered_bytes == 0
