"""DC-3 fragmentation and DC-4 bounded reassembly, without sockets."""

from __future__ import annotations

import contextlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.framing import (
    HEADER,
    MAX_FRAGMENT_PAYLOAD,
    MAX_FRAME,
    Fragmenter,
    FrameRejected,
    Reassembler,
)

MIB = 1024 * 1024


def reassemble(frames: list[bytes], r: Reassembler | None = None) -> list[bytes]:
    r = r or Reassembler(max_message_size=8 * MIB)
    return [m for f in frames if (m := r.feed(f, 0.0)) is not None]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 4 * MIB))
def test_dc3_any_size_up_to_4mib_round_trips(size: int) -> None:
    data = os.urandom(size)
    frames = Fragmenter().fragment(data)
    assert all(len(f) <= MAX_FRAME for f in frames)
    assert len(frames) == max(1, -(-size // MAX_FRAGMENT_PAYLOAD))
    assert reassemble(frames) == [data]


@pytest.mark.parametrize(
    "size",
    [0, 1, MAX_FRAGMENT_PAYLOAD, MAX_FRAGMENT_PAYLOAD + 1, 2 * MAX_FRAGMENT_PAYLOAD, 4 * MIB],
)
def test_dc3_boundary_sizes(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    frames = Fragmenter().fragment(data)
    _, index, total = HEADER.unpack_from(frames[-1])
    assert (index, total) == (len(frames) - 1, len(frames))
    assert reassemble(frames) == [data]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 300_000), min_size=1, max_size=6), st.randoms())
def test_dc3_interleaved_out_of_order_fragments_of_several_messages(
    sizes: list[int], rnd: random.Random
) -> None:
    frag = Fragmenter()
    messages = [os.urandom(n) for n in sizes]
    frames = [f for m in messages for f in frag.fragment(m)]
    rnd.shuffle(frames)  # the unordered channel may deliver in any order
    out = reassemble(frames)
    assert sorted(out) == sorted(messages)


def test_dc3_msg_id_counts_up_and_wraps() -> None:
    frag = Fragmenter()
    frag._next_id = 0xFFFFFFFF
    ids = [HEADER.unpack_from(frag.fragment(b"x")[0])[0] for _ in range(2)]
    assert ids == [0xFFFFFFFF, 0]


def rejected(r: Reassembler, frame: bytes) -> str:
    with pytest.raises(FrameRejected) as info:
        r.feed(frame, 0.0)
    return info.value.reason


def test_dc4_malformed_headers_are_rejected_and_counted() -> None:
    r = Reassembler(max_message_size=200_000)
    assert rejected(r, b"\x00\x01") == "short_frame"
    assert rejected(r, HEADER.pack(1, 0, 0)) == "zero_total"
    assert rejected(r, HEADER.pack(1, 3, 3)) == "index_out_of_range"
    assert rejected(r, HEADER.pack(1, 0, 1) + b"x" * (MAX_FRAME)) == "frame_too_large"
    assert r.feed(HEADER.pack(2, 0, 3) + b"a", 0.0) is None
    assert rejected(r, HEADER.pack(2, 1, 4) + b"b") == "conflicting_total"
    assert r.feed(HEADER.pack(3, 0, 3) + b"a", 0.0) is None
    assert rejected(r, HEADER.pack(3, 0, 3) + b"a") == "duplicate_fragment"
    big = b"z" * MAX_FRAGMENT_PAYLOAD
    assert r.feed(HEADER.pack(4, 0, 9) + big, 0.0) is None
    assert r.feed(HEADER.pack(4, 1, 9) + big, 0.0) is None
    assert r.feed(HEADER.pack(4, 2, 9) + big, 0.0) is None
    assert rejected(r, HEADER.pack(4, 3, 9) + big) == "message_too_large"
    assert r.rejects["message_too_large"] == 1
    assert r.partial_count == 0  # every broken message was dropped whole
    # And the reassembler still works.
    data = os.urandom(150_000)
    assert reassemble(Fragmenter().fragment(data), r) == [data]


def test_dc4_partials_expire_and_are_bounded() -> None:
    r = Reassembler(max_partial=2, partial_ttl=5.0)
    r.feed(HEADER.pack(1, 0, 2) + b"a", 0.0)
    r.feed(HEADER.pack(2, 0, 2) + b"b", 1.0)
    r.feed(HEADER.pack(3, 0, 2) + b"c", 2.0)  # evicts the oldest
    assert r.rejects["partial_evicted"] == 1 and r.partial_count == 2
    assert r.expire(10.0) == 2
    assert r.partial_count == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=30))
def test_dc4_random_bytes_only_ever_raise_frame_rejected(frames: list[bytes]) -> None:
    r = Reassembler(max_message_size=100_000, max_partial=4)
    for f in frames:
        with contextlib.suppress(FrameRejected):
            r.feed(f, 0.0)
    assert r.partial_count <= 4
    # A good message afterwards still reassembles (its msg_id unlike the junk's).
    frag = Fragmenter()
    frag._next_id = 0x5A5A5A5A
    data = os.urandom(70_000)
    assert [m for f in frag.fragment(data) if (m := r.feed(f, 1.0)) is not None] == [data]
