"""X-BATCH-1 batch frames, sans-IO: layout, round trips, and what a receiver refuses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.framing import (
    BATCH_ENTRY_SIZE,
    BATCH_HEADER,
    HEADER,
    HEADER_SIZE,
    MAX_BATCH_ENTRIES,
    MAX_FRAME,
    Fragmenter,
    FrameRejected,
    Reassembler,
    is_batch,
    pack_batch,
    split_batch,
)


def malformed(frame: bytes) -> str:
    with pytest.raises(FrameRejected) as info:
        split_batch(frame)
    assert info.value.reason == "batch_malformed"
    return str(info.value)


def fits(envelopes: list[bytes]) -> bool:
    return HEADER_SIZE + sum(BATCH_ENTRY_SIZE + len(e) for e in envelopes) <= MAX_FRAME


def test_xbatch1_layout_is_a_zero_header_then_length_prefixed_envelopes() -> None:
    frame = pack_batch([b"ab", b"", b"xyz"])
    assert frame == (
        b"\x00" * 8 + b"\x00\x00\x00\x02ab" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x03xyz"
    )
    assert HEADER.pack(0, 0, 0) == BATCH_HEADER
    assert is_batch(frame)
    assert split_batch(frame) == [b"ab", b"", b"xyz"]


def test_xbatch1_no_dc3_frame_is_a_batch_and_a_dc3_receiver_refuses_a_batch() -> None:
    frag = Fragmenter()  # msg_id 0 first: still total_frags >= 1
    for data in (b"", b"x", bytes(200_000)):
        assert not any(is_batch(f) for f in frag.fragment(data))
    assert not is_batch(b"")
    assert not is_batch(b"\x00" * 7)
    # A peer that knows no batches (the Rust actr) drops one as zero_total (DC-4).
    r = Reassembler()
    with pytest.raises(FrameRejected) as info:
        r.feed(pack_batch([b"a", b"b"]), 0.0)
    assert info.value.reason == "zero_total"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=64).filter(fits))
def test_xbatch1_split_of_pack_is_the_envelopes(envelopes: list[bytes]) -> None:
    frame = pack_batch(envelopes)
    assert len(frame) <= MAX_FRAME
    assert split_batch(frame) == envelopes


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=4), min_size=1, max_size=MAX_BATCH_ENTRIES))
def test_xbatch1_many_small_envelopes_round_trip(envelopes: list[bytes]) -> None:
    assert split_batch(pack_batch(envelopes)) == envelopes


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_xbatch1_split_refuses_arbitrary_bytes_only_with_frame_rejected(tail: bytes) -> None:
    for frame in (tail, BATCH_HEADER + tail):
        try:
            out = split_batch(frame)
        except FrameRejected as e:
            assert e.reason == "batch_malformed"
        else:
            assert out and pack_batch(out) == frame


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=200), min_size=1, max_size=20),
    st.integers(min_value=0),
    st.binary(min_size=1, max_size=8),
)
def test_xbatch1_cut_or_extended_batches_never_raise_anything_else(
    envelopes: list[bytes], cut: int, extra: bytes
) -> None:
    frame = pack_batch(envelopes)
    for bad in (frame[: HEADER_SIZE + cut % (len(frame) - HEADER_SIZE + 1)], frame + extra):
        try:
            split_batch(bad)
        except FrameRejected as e:
            assert e.reason == "batch_malformed"


def test_xbatch1_malformed_batches_are_refused() -> None:
    assert "no entries" in malformed(BATCH_HEADER)
    assert "truncated length" in malformed(BATCH_HEADER + b"\x00\x00\x01")
    assert "overruns" in malformed(BATCH_HEADER + b"\x00\x00\x00\x09abc")
    assert "overruns" in malformed(BATCH_HEADER + b"\xff\xff\xff\xff" + bytes(100))
    good = pack_batch([b"one", b"two"])
    assert "truncated length" in malformed(good + b"\x00\x00")  # trailing garbage
    assert "overruns" in malformed(good + b"\x00\x00\x00\x05ab")
    assert "more than" in malformed(BATCH_HEADER + b"\x00\x00\x00\x00" * (MAX_BATCH_ENTRIES + 1))
    too_big = BATCH_HEADER + b"\x00\x00\xff\xf7" + bytes(MAX_FRAME - HEADER_SIZE - 3)
    assert malformed(too_big) == f"batch_malformed: {MAX_FRAME + 1} bytes"
    assert "not a batch" in malformed(HEADER.pack(0, 0, 1) + b"\x00\x00\x00\x01a")
    assert "not a batch" in malformed(b"\x00\x00")


def test_xbatch1_pack_refuses_what_does_not_fit_one_frame() -> None:
    with pytest.raises(ValueError):
        pack_batch([])
    with pytest.raises(ValueError):
        pack_batch([b""] * (MAX_BATCH_ENTRIES + 1))
    with pytest.raises(ValueError):
        pack_batch([bytes(MAX_FRAME - HEADER_SIZE - BATCH_ENTRY_SIZE + 1)])
    largest = [bytes(MAX_FRAME - HEADER_SIZE - BATCH_ENTRY_SIZE)]
    assert len(pack_batch(largest)) == MAX_FRAME
    assert split_batch(pack_batch(largest)) == largest
