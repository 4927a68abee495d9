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


def chunk(seq: int, payload: bytes | None = None, sid: str = "s", end: bool = False) -> DataStream:
    body = f"c{seq}".encode() if payload is None else payload
    return DataStream(stream_id=sid, sequence=seq, payload=body, end_of_stream=end)


def drain(stream: Stream, now: float = T0) -> list[bytes]:
    out = []
    while (c := stream.take(now)) is not None:
        out.append(c.payload)
    return out


def test_in_order_chunks_then_end_of_stream() -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0)
    for i in range(3):
        assert core.receive("peer", chunk(i), T0) is s  # its reader has news
    core.receive("peer", chunk(3, b"last", end=True), T0)
    assert not s.registered and s.error is None and len(core) == 0
    assert drain(s) == [b"c0", b"c1", b"c2", b"last"]
    assert not core.drops


def test_out_of_order_chunks_wait_then_are_released_in_sequence() -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0)
    assert core.receive("peer", chunk(2), T0) is None  # held: nothing for the reader yet
    assert core.receive("peer", chunk(3), T0) is None
    assert (s.held, s.held_bytes) == (2, 4)
    assert core.receive("peer", chunk(0), T0) is s
    assert core.receive("peer", chunk(1), T0) is s
    assert s.next_sequence == 4 and s.held == 0
    core.receive("peer", chunk(4, b"", end=True), T0)  # an empty end chunk only ends
    assert drain(s) == [b"c0", b"c1", b"c2", b"c3"]
    assert not s.registered


def test_end_of_stream_arriving_first_waits_for_earlier_chunks() -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0)
    core.receive("peer", chunk(2, b"end", end=True), T0)
    core.receive("peer", chunk(1), T0)
    assert s.registered
    core.receive("peer", chunk(0), T0)
    assert not s.registered
    assert drain(s) == [b"c0", b"c1", b"end"]


def test_duplicates_and_chunks_after_end_are_dropped_and_counted() -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0)
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
    a = core.open("s", "peerA", T0)
    core.receive("peerB", chunk(0, b"forged"), T0)  # before peerA's first chunk
    assert core.drops["chunk_from_other_sender"] == 1
    assert a.next_sequence == 0
    b = core.open("s", "peerB", T0)
    core.receive("peerB", chunk(0, b"b0", end=True), T0)
    core.receive("peerA", chunk(0, b"a0", end=True), T0)
    assert (drain(a), drain(b)) == ([b"a0"], [b"b0"])
    core.receive("peerC", chunk(0), T0)  # nobody has "s" any more
    assert core.drops == {"chunk_from_other_sender": 1, "unregistered_stream": 1}


def test_register_twice_is_refused_until_the_first_is_over() -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0)
    with pytest.raises(ValueError, match="already registered"):
        core.open("s", "peer", T0)
    core.close(s)
    assert core.open("s", "peer", T0).next_sequence == 0


def test_reorder_buffer_is_bounded_and_overflow_breaks_the_stream() -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0, max_reorder=4)
    core.receive("peer", chunk(0), T0)
    for seq in range(2, 6):  # chunk 1 is missing: 4 chunks wait
        core.receive("peer", chunk(seq), T0)
    assert s.registered
    assert core.receive("peer", chunk(6), T0) is s
    assert isinstance(s.error, StreamOverflow) and not s.registered
    assert core.drops == {"reorder_overflow": 1}
    assert (s.held, s.held_bytes) == (0, 0)  # the buffer's memory is given back
    assert drain(s) == [b"c0"]  # what was released before still reaches the reader
    core.receive("peer", chunk(1), T0)
    assert core.drops["unregistered_stream"] == 1


def test_bytes_held_and_not_taken_are_bounded_per_stream() -> None:
    core = StreamCore(max_buffered_bytes=10)
    s = core.open("s", "peer", T0)
    core.receive("peer", chunk(0, b"x" * 4), T0)  # released, not taken
    core.receive("peer", chunk(2, b"y" * 4), T0)  # held
    assert s.buffered_bytes == 8
    assert s.take(T0) is not None  # the reader takes 4 bytes: room again
    core.receive("peer", chunk(3, b"z" * 6), T0)
    assert s.buffered_bytes == 10 and s.registered
    core.receive("peer", chunk(1, b"!"), T0)  # one byte too many
    assert isinstance(s.error, StreamOverflow) and "buffer full" in str(s.error)
    assert core.drops == {"buffer_overflow": 1}
    other = core.open("t", "peer", T0)  # the bound is per stream
    core.receive("peer", chunk(0, b"x" * 10, sid="t"), T0)
    assert other.registered


def test_fail_sender_breaks_its_open_streams_only() -> None:
    core = StreamCore()
    a, b = core.open("a", "peerA", T0), core.open("b", "peerB", T0)
    core.receive("peerA", chunk(0, sid="a"), T0)
    err = ConnectionError("gone")
    assert core.fail_sender("peerA", err) == [a]
    assert (a.error, a.registered, b.registered, len(core)) == (err, False, True, 1)
    assert drain(a) == [b"c0"]


def test_close_takes_the_stream_out_and_frees_what_it_held() -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0)
    core.receive("peer", chunk(0), T0)
    core.receive("peer", chunk(2), T0)
    core.close(s)
    assert (len(core), s.registered, s.buffered_bytes, s.take(T0)) == (0, False, 0, None)
    core.receive("peer", chunk(1), T0)
    assert core.drops == {"unregistered_stream": 1}
    core.close(s)  # twice: nothing more


def test_an_idle_stream_expires_and_activity_keeps_it_alive() -> None:
    core = StreamCore(idle_timeout=30)
    quiet = core.open("quiet", "peer", T0)
    busy = core.open("busy", "peer", T0)
    assert core.next_deadline() == T0 + 30
    core.receive("peer", chunk(0, sid="busy"), T0 + 20)  # a chunk: active
    assert core.expire(T0 + 29) == []
    assert core.expire(T0 + 30) == [quiet]
    assert isinstance(quiet.error, TimedOut) and not quiet.registered
    assert core.drops == {"stream_expired": 1}
    # "busy" was pushed back to its true deadline; taking a chunk is activity too.
    assert core.next_deadline() == T0 + 50
    assert busy.take(T0 + 45) is not None
    assert core.expire(T0 + 50) == []
    assert core.next_deadline() == T0 + 75
    assert core.expire(T0 + 75) == [busy]
    assert core.next_deadline() is None


def test_an_expired_stream_frees_what_nobody_read() -> None:
    core = StreamCore(idle_timeout=5)
    s = core.open("s", "peer", T0)
    for i in range(3):
        core.receive("peer", chunk(i), T0)
    core.receive("peer", chunk(9), T0)
    assert core.expire(T0 + 5) == [s]
    assert (s.buffered_bytes, s.take(T0 + 5)) == (0, None)


def test_streams_that_are_over_leave_no_deadline_behind() -> None:
    core = StreamCore(idle_timeout=5)
    for i in range(200):
        core.open(f"s{i}", "peer", T0 + i)
        core.receive("peer", chunk(0, sid=f"s{i}", end=True), T0 + i)
    assert core.next_deadline() is None
    assert len(core._deadlines) == 0
    assert core.expire(T0 + 1000) == []


def test_no_idle_timeout_no_deadlines() -> None:
    core = StreamCore(idle_timeout=None)
    core.open("s", "peer", T0)
    assert core.next_deadline() is None
    assert core.expire(T0 + 10**9) == []


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.randoms(use_true_random=False), st.booleans())
def test_any_arrival_order_yields_sequence_order(
    n: int, rnd: random.Random, with_duplicates: bool
) -> None:
    core = StreamCore()
    s = core.open("s", "peer", T0, max_reorder=n)
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
