"""DC-3 fragmentation and DC-4 bounded reassembly, sans-IO."""

from __future__ import annotations

import contextlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.framing import (
    HEADER,
    HEADER_SIZE,
    MAX_FRAGMENT_PAYLOAD,
    MAX_FRAME,
    Fragmenter,
    FrameRejected,
    Reassembler,
)

MIB = 1024 * 1024


def frame(msg_id: int, index: int, total: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(msg_id, index, total) + payload


def feed_all(r: Reassembler, frames: list[bytes], now: float = 0.0) -> list[bytes]:
    return [m for f in frames if (m := r.feed(f, now)) is not None]


def pattern(size: int, seed: int = 0) -> bytes:
    """A cheap, position-dependent payload (so misplaced fragments show)."""
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


def rejected(r: Reassembler, f: bytes, now: float = 0.0) -> str:
    with pytest.raises(FrameRejected) as info:
        r.feed(f, now)
    return info.value.reason


def assert_still_works(r: Reassembler, msg_id_base: int = 0x7000_0000) -> None:
    frag = Fragmenter()
    frag._next_id = msg_id_base
    for size in (0, 10, 3 * MAX_FRAGMENT_PAYLOAD + 5):
        data = pattern(size, seed=size)
        assert feed_all(r, frag.fragment(data), now=0.0) == [data]


# -- DC-3: the format ----------------------------------------------------------------


def test_dc3_header_is_8_bytes_big_endian() -> None:
    frag = Fragmenter()
    frag._next_id = 0x01020304
    frames = frag.fragment(b"x" * (MAX_FRAGMENT_PAYLOAD + 1))
    assert HEADER_SIZE == 8
    assert frames[0][:8] == bytes([1, 2, 3, 4, 0, 0, 0, 2])
    assert frames[1][:8] == bytes([1, 2, 3, 4, 0, 1, 0, 2])
    assert len(frames[0]) == MAX_FRAME == 65_535
    assert len(frames[1]) == HEADER_SIZE + 1


def test_dc3_msg_id_counts_up_per_fragmenter_and_wraps() -> None:
    frag = Fragmenter()
    ids = [HEADER.unpack_from(frag.fragment(b"m")[0])[0] for _ in range(3)]
    assert ids == [0, 1, 2]
    frag._next_id = 0xFFFFFFFF
    ids = [HEADER.unpack_from(frag.fragment(b"m")[0])[0] for _ in range(2)]
    assert ids == [0xFFFFFFFF, 0]
    other = Fragmenter()
    assert HEADER.unpack_from(other.fragment(b"")[0])[0] == 0


def test_dc3_sender_refuses_a_message_over_its_limit() -> None:
    frag = Fragmenter(max_message_size=1000)
    assert len(frag.fragment(b"x" * 1000)) == 1
    with pytest.raises(ValueError, match="over the limit"):
        frag.fragment(b"x" * 1001)


def check_round_trip(data: bytes) -> None:
    frames = Fragmenter().fragment(data)
    size = len(data)
    assert len(frames) == max(1, -(-size // MAX_FRAGMENT_PAYLOAD))
    for i, f in enumerate(frames):
        assert len(f) <= MAX_FRAME
        msg_id, index, total = HEADER.unpack_from(f)
        assert (msg_id, index, total) == (0, i, len(frames))
    # Every fragment but the last is full.
    assert all(len(f) == MAX_FRAME for f in frames[:-1])
    r = Reassembler(max_message_size=16 * MIB)
    assert feed_all(r, frames) == [data]
    assert r.partial_count == 0
    assert sum(r.rejects.values()) == 0


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 4 * MIB))
def test_dc3_any_size_from_0_to_4mib_round_trips(size: int) -> None:
    check_round_trip(os.urandom(size))


@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        MAX_FRAGMENT_PAYLOAD - 1,
        MAX_FRAGMENT_PAYLOAD,  # 65527: exactly one full fragment
        MAX_FRAGMENT_PAYLOAD + 1,  # 65528: the first size of two fragments
        2 * MAX_FRAGMENT_PAYLOAD,
        2 * MAX_FRAGMENT_PAYLOAD + 1,
        4 * MIB,
    ],
)
def test_dc3_boundary_sizes_round_trip(size: int) -> None:
    check_round_trip(pattern(size))


def test_dc3_a_single_fragment_message_has_total_1_and_empty_is_header_only() -> None:
    (f,) = Fragmenter().fragment(b"")
    assert f == HEADER.pack(0, 0, 1)
    assert Reassembler().feed(f, 0.0) == b""


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(0, 3 * MAX_FRAGMENT_PAYLOAD + 10), st.integers(0, 100)),
        min_size=1,
        max_size=8,
    ),
    st.randoms(use_true_random=False),
)
def test_dc3_interleaved_out_of_order_fragments_of_several_messages(
    sizes: list[int], rnd: random.Random
) -> None:
    frag = Fragmenter()
    messages = [pattern(n, seed=i) for i, n in enumerate(sizes)]
    frames = [f for m in messages for f in frag.fragment(m)]
    rnd.shuffle(frames)  # an unordered channel may deliver in any order
    r = Reassembler(max_partial=len(sizes))
    out = feed_all(r, frames)
    assert sorted(out) == sorted(messages)
    assert r.partial_count == 0
    assert sum(r.rejects.values()) == 0


def test_dc3_reverse_order_and_interleaving_of_two_messages() -> None:
    frag = Fragmenter()
    a, b = pattern(3 * MAX_FRAGMENT_PAYLOAD, 1), pattern(2 * MAX_FRAGMENT_PAYLOAD + 7, 2)
    fa, fb = frag.fragment(a), frag.fragment(b)
    r = Reassembler()
    assert r.feed(fa[2], 0.0) is None
    assert r.feed(fb[1], 0.0) is None
    assert r.feed(fa[1], 0.0) is None
    assert r.feed(fb[2], 0.0) is None
    assert r.partial_count == 2
    assert r.feed(fb[0], 0.0) == b
    assert r.feed(fa[0], 0.0) == a
    assert r.partial_count == 0


# -- DC-4: rejects -------------------------------------------------------------------


def test_dc4_short_frame() -> None:
    r = Reassembler()
    for n in range(HEADER_SIZE):
        assert rejected(r, b"\x00" * n) == "short_frame"
    assert r.rejects["short_frame"] == HEADER_SIZE
    assert_still_works(r)


def test_dc4_frame_over_65535_bytes() -> None:
    r = Reassembler()
    assert r.feed(frame(1, 0, 1, b"x" * MAX_FRAGMENT_PAYLOAD), 0.0) == b"x" * MAX_FRAGMENT_PAYLOAD
    assert rejected(r, frame(2, 0, 1, b"x" * (MAX_FRAGMENT_PAYLOAD + 1))) == "frame_too_large"
    assert r.feed(frame(3, 0, 2, b"a"), 0.0) is None
    assert rejected(r, frame(3, 1, 2, b"x" * MAX_FRAME)) == "frame_too_large"
    assert r.rejects["frame_too_large"] == 2
    assert_still_works(r)


def test_dc4_total_zero() -> None:
    r = Reassembler()
    assert rejected(r, frame(1, 0, 0, b"x")) == "zero_total"
    assert rejected(r, frame(1, 0, 0)) == "zero_total"
    assert r.rejects["zero_total"] == 2
    assert_still_works(r)


def test_dc4_index_at_or_over_total_drops_the_message() -> None:
    r = Reassembler()
    assert rejected(r, frame(1, 1, 1, b"x")) == "index_out_of_range"
    assert rejected(r, frame(1, 0xFFFF, 3, b"x")) == "index_out_of_range"
    assert r.feed(frame(2, 0, 2, b"a"), 0.0) is None
    assert rejected(r, frame(2, 2, 2, b"b")) == "index_out_of_range"
    assert r.partial_count == 0  # message 2 was dropped whole
    assert r.feed(frame(2, 1, 2, b"b"), 0.0) is None  # its rest starts over, not completes
    assert r.rejects["index_out_of_range"] == 3
    assert_still_works(r)


def test_dc4_conflicting_totals_drop_the_message() -> None:
    r = Reassembler()
    assert r.feed(frame(2, 0, 3, b"a"), 0.0) is None
    assert rejected(r, frame(2, 1, 4, b"b")) == "conflicting_total"
    assert r.partial_count == 0
    # The remaining fragments of the broken message never produce it.
    assert r.feed(frame(2, 1, 3, b"b"), 0.0) is None
    assert r.feed(frame(2, 2, 3, b"c"), 0.0) is None
    assert r.rejects["conflicting_total"] == 1
    assert_still_works(r)


def test_dc4_single_fragment_frame_for_a_partial_msg_id_conflicts() -> None:
    """total=1 under a msg_id that has a partial with total=3 is a conflicting total:
    the partial is dropped, and the frame is not handed up as a message."""
    r = Reassembler()
    assert r.feed(frame(5, 0, 3, b"a"), 0.0) is None
    assert rejected(r, frame(5, 0, 1, b"b")) == "conflicting_total"
    assert r.partial_count == 0
    assert_still_works(r)


def test_dc4_duplicate_index_drops_the_message() -> None:
    r = Reassembler()
    assert r.feed(frame(3, 0, 3, b"a"), 0.0) is None
    assert r.feed(frame(3, 1, 3, b"b"), 0.0) is None
    assert rejected(r, frame(3, 1, 3, b"b")) == "duplicate_fragment"
    assert r.partial_count == 0
    assert r.feed(frame(3, 2, 3, b"c"), 0.0) is None  # no message from the broken one
    assert r.rejects["duplicate_fragment"] == 1
    assert_still_works(r)


def test_dc4_oversize_message_is_dropped_without_keeping_its_bytes() -> None:
    limit = 2 * MAX_FRAGMENT_PAYLOAD + 100
    r = Reassembler(max_message_size=limit)
    full = b"z" * MAX_FRAGMENT_PAYLOAD
    assert r.feed(frame(4, 0, 9, full), 0.0) is None
    assert r.feed(frame(4, 1, 9, full), 0.0) is None
    assert rejected(r, frame(4, 2, 9, full)) == "message_too_large"
    assert r.partial_count == 0
    # Exactly at the limit is accepted.
    data = pattern(limit)
    assert feed_all(r, Fragmenter().fragment(data)) == [data]
    # A single fragment over a small limit too.
    small = Reassembler(max_message_size=10)
    assert small.feed(frame(1, 0, 1, b"x" * 10), 0.0) == b"x" * 10
    assert rejected(small, frame(2, 0, 1, b"x" * 11)) == "message_too_large"
    assert small.rejects["message_too_large"] == 1


def test_dc4_every_reject_is_counted_and_leaves_a_working_reassembler() -> None:
    r = Reassembler(max_message_size=200_000)
    bad = [
        b"\x00\x01",
        frame(1, 0, 0),
        frame(1, 3, 3),
        frame(1, 0, 1, b"x" * MAX_FRAME),
    ]
    for f in bad:
        with pytest.raises(FrameRejected):
            r.feed(f, 0.0)
        assert_still_works(r)
    assert sum(r.rejects.values()) == len(bad)


# -- DC-4: partial bounds ---------------------------------------------------------------


def test_dc4_partials_past_the_ttl_expire() -> None:
    r = Reassembler(partial_ttl=5.0)
    assert r.feed(frame(1, 0, 2, b"a"), 0.0) is None
    assert r.feed(frame(2, 0, 2, b"b"), 3.0) is None
    assert r.expire(5.0) == 0  # exactly the TTL old: still alive
    assert r.expire(5.5) == 1
    assert r.partial_count == 1
    assert r.rejects["partial_expired"] == 1
    assert r.feed(frame(2, 1, 2, b"B"), 6.0) == b"bB"
    assert r.expire(100.0) == 0


def test_dc4_a_late_fragment_does_not_complete_an_expired_partial() -> None:
    """The TTL holds even when nobody called expire(): a fragment arriving after it
    starts over instead of completing a message that is already dropped."""
    r = Reassembler(partial_ttl=5.0)
    assert r.feed(frame(1, 0, 2, b"a"), 0.0) is None
    assert r.feed(frame(1, 1, 2, b"b"), 10.0) is None
    assert r.rejects["partial_expired"] == 1
    assert r.partial_count == 1


def test_dc4_partial_count_is_bounded_by_evicting_the_oldest() -> None:
    r = Reassembler(max_partial=2, partial_ttl=100.0)
    assert r.feed(frame(1, 0, 2, b"a"), 0.0) is None
    assert r.feed(frame(2, 0, 2, b"b"), 1.0) is None
    assert r.feed(frame(3, 0, 2, b"c"), 2.0) is None  # evicts message 1
    assert r.rejects["partial_evicted"] == 1
    assert r.partial_count == 2
    assert r.feed(frame(2, 1, 2, b"B"), 3.0) == b"bB"
    assert r.feed(frame(3, 1, 2, b"C"), 3.0) == b"cC"
    assert r.feed(frame(1, 1, 2, b"A"), 3.0) is None  # message 1 was dropped
    assert r.partial_count == 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=60))
def test_dc4_partials_never_exceed_max_partial(ids: list[int]) -> None:
    r = Reassembler(max_partial=4)
    for t, msg_id in enumerate(ids):
        with contextlib.suppress(FrameRejected):
            r.feed(frame(msg_id, 0, 3, b"x"), float(t))
        assert r.partial_count <= 4


# -- DC-4: robustness -------------------------------------------------------------------

HEADERISH = st.builds(
    lambda m, i, t, p: HEADER.pack(m, i, t) + p,
    st.integers(0, 3),
    st.integers(0, 4),
    st.integers(0, 4),
    st.binary(max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=64), HEADERISH, st.just(b"\x00" * (MAX_FRAME + 1))),
        max_size=40,
    ),
    st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=4),
)
def test_dc4_random_frames_only_ever_raise_frame_rejected(
    frames: list[bytes], times: list[float]
) -> None:
    r = Reassembler(max_message_size=1000, max_partial=4, partial_ttl=10.0)
    rejects = 0
    for k, f in enumerate(frames):
        try:
            out = r.feed(f, times[k % len(times)])
        except FrameRejected as e:
            rejects += 1
            assert e.reason in r.rejects
        else:
            assert out is None or len(out) <= 1000
        assert r.partial_count <= 4
    assert rejects == sum(
        n for reason, n in r.rejects.items() if reason not in ("partial_evicted", "partial_expired")
    )
    # A good message afterwards (msg ids unlike the junk's) still reassembles.
    frag = Fragmenter()
    frag._next_id = 0x5A5A5A5A
    data = pattern(900)
    assert feed_all(r, frag.fragment(data), now=200.0) == [data]


# -- DC-4 per connection (F2): bounds hold however many channels a peer opens ----------


def test_f2_bounds_are_per_connection_across_channels() -> None:
    r = Reassembler(max_partial=16, partial_ttl=100.0)
    for channel in range(40):
        for msg_id in range(16):
            assert r.feed(frame(msg_id, 0, 2, b"x"), 0.0, channel) is None
            assert r.partial_count <= 16
    assert r.rejects["partial_evicted"] == 40 * 16 - 16
    # The same msg_id on two channels are two messages.
    r2 = Reassembler()
    assert r2.feed(frame(5, 0, 2, b"a"), 0.0, "A") is None
    assert r2.feed(frame(5, 0, 2, b"b"), 0.0, "B") is None
    assert r2.feed(frame(5, 1, 2, b"A"), 0.0, "A") == b"aA"
    assert r2.feed(frame(5, 1, 2, b"B"), 0.0, "B") == b"bB"


def test_f2_a_claimed_fragment_count_allocates_nothing() -> None:
    import tracemalloc

    r = Reassembler(max_partial=16)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for msg_id in range(16):
            r.feed(frame(msg_id, 0, 0xFFFF, b"x"), 0.0)
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # 16 partials claiming 65,535 fragments each: a few KiB, not 16 x 512 KiB.
    assert grown < 64 * 1024, grown


def test_f2_bytes_held_in_partials_are_bounded_per_connection() -> None:
    chunk = b"z" * MAX_FRAGMENT_PAYLOAD
    r = Reassembler(max_message_size=4 * MAX_FRAGMENT_PAYLOAD, max_partial=64)
    for msg_id in range(40):
        assert r.feed(frame(msg_id, 0, 4, chunk), float(msg_id), msg_id % 3) is None
        assert r.partial_bytes <= 4 * MAX_FRAGMENT_PAYLOAD
    assert r.rejects["partial_evicted"] >= 36
    # A largest message still goes through.
    assert_still_works(r)


def test_f2_expiry_runs_from_next_deadline_and_closed_channels_let_go() -> None:
    r = Reassembler(partial_ttl=5.0)
    assert r.next_deadline() is None
    r.feed(frame(1, 0, 2, b"a"), 10.0, "A")
    r.feed(frame(2, 0, 2, b"b"), 12.0, "B")
    assert r.next_deadline() == 15.0
    assert r.expire(15.5) == 1 and r.partial_count == 1
    assert r.next_deadline() == 17.0
    r.forget_channel("B")
    assert r.partial_count == 0 and r.partial_bytes == 0 and r.next_deadline() is None
