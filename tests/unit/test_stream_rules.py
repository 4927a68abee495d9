"""The stream core's extensions, sans-IO and with time passed in (docs/protocol.md
X-STR-3 credit, X-STR-4 reset, X-STR-5 bad chunks, X-STR-7 latency-first, X-STR-8
early chunks and idle streams), and the sending ends' credit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actr.errors import (
    ActrError,
    Cancelled,
    ErrorCode,
    NotFound,
    ResourceExhausted,
    TimedOut,
    Unavailable,
)
from actr.protocol.actr_pb2 import DataStream
from actr.stream_core import Effects, Gap, Stream, StreamCore
from actr.stream_credit import grant_frame, reset_frame
from actr.stream_hold import EarlyHold

T0 = 100.0
W = 100  # a small window: grants at every 50 bytes taken


def chunk(seq: int, size: int = 10, sid: str = "s", end: bool = False) -> DataStream:
    return DataStream(
        stream_id=sid, sequence=seq, payload=bytes([seq % 256]) * size, end_of_stream=end
    )


def take_all(core: StreamCore, s: Stream, now: float = T0) -> tuple[list[DataStream | Gap], list]:
    items: list[DataStream | Gap] = []
    frames = []
    while True:
        item, sent = core.take(s, now)
        frames += sent
        if item is None:
            return items, frames
        items.append(item)


def resets(fx: Effects | list) -> list[tuple[str, str, int, bool]]:
    frames = fx.send if isinstance(fx, Effects) else fx
    return [
        (peer, f.stream_id, f.control.reset.code, f.control.from_receiver)
        for peer, f in frames
        if f.control.HasField("reset")
    ]


def grants(frames: list) -> list[int]:
    return [f.control.credit_limit for _, f in frames if f.control.HasField("credit_limit")]


# -- X-STR-3 credit -----------------------------------------------------------


def test_credit_grants_consumed_plus_window_once_half_a_window_was_taken() -> None:
    core = StreamCore(window=W)
    s, _ = core.open("s", "peer", T0, credit=True)
    assert s.credit and s.credit_limit == W
    for i in range(4):
        core.receive("peer", chunk(i), T0)
    items, frames = take_all(core, s)
    assert len(items) == 4 and frames == []  # 40 taken: under half a window
    core.receive("peer", chunk(4), T0)
    items, frames = take_all(core, s)
    assert grants(frames) == [150]  # 50 taken: 50 + window
    assert [(p, f.stream_id, f.control.from_receiver) for p, f in frames] == [("peer", "s", True)]
    assert all(f.IsInitialized() and f.sequence == 0 and not f.payload for _, f in frames)
    for i in range(5, 15):  # up to the new limit exactly: no overrun
        core.receive("peer", chunk(i), T0)
    assert s.registered and s.buffered_bytes == W
    assert not core.drops


def test_credit_overrun_resets_the_stream_on_both_ends() -> None:
    core = StreamCore(window=W)
    s, _ = core.open("s", "peer", T0, credit=True)
    for i in range(10):
        core.receive("peer", chunk(i), T0)
    fx = core.receive("peer", chunk(10, size=1), T0)  # one byte past the credit
    assert fx.wake == [s] and not s.registered
    assert isinstance(s.error, ResourceExhausted)
    assert resets(fx) == [("peer", "s", ErrorCode.RESOURCE_EXHAUSTED, True)]
    assert core.drops == {"credit_overrun": 1}
    items, _ = take_all(core, s)
    assert len(items) == 10  # what was released before still reaches the reader
    assert core.receive("peer", chunk(11), T0).send == []  # straggler: dropped at once
    assert core.drops["unregistered_stream"] == 1


def test_credit_streams_ignore_the_byte_bound_and_base_streams_keep_it() -> None:
    core = StreamCore(window=W, max_buffered_bytes=30)
    credit, _ = core.open("c", "peer", T0, credit=True)
    base, _ = core.open("b", "peer", T0)
    for i in range(5):
        core.receive("peer", chunk(i, sid="c"), T0)
        core.receive("peer", chunk(i, sid="b"), T0)
    assert credit.registered and credit.buffered_bytes == 50
    assert not base.registered  # the 4th broke it, the 5th found it gone
    assert core.drops == {"buffer_overflow": 1, "unregistered_stream": 1}


def test_set_peer_switches_open_streams_to_credit_and_grants_what_was_taken() -> None:
    core = StreamCore(window=W)
    s, _ = core.open("s", "peer", T0)
    other, _ = core.open("s", "elsewhere", T0)
    lf, _ = core.open("lf", "peer", T0, latency_first=True)
    for i in range(6):
        core.receive("peer", chunk(i), T0)
    take_all(core, s)  # 60 taken before the Hello came: no grant yet, base stream
    fx = core.set_peer("peer", credit=True, window=4096, now=T0)
    assert grants(fx.send) == [160]
    assert s.credit and not other.peer_speaks
    assert lf.peer_speaks and not lf.credit  # latency-first takes no credit
    later, _ = core.open("t", "peer", T0)  # known now: credit from the start
    assert later.credit and core.speaks_credit("peer") and core.peer_window("peer") == 4096


def test_set_peer_finds_an_overrun_that_happened_before_it() -> None:
    core = StreamCore(window=W, max_buffered_bytes=10_000)
    s, _ = core.open("s", "peer", T0)
    for i in range(11):
        core.receive("peer", chunk(i), T0)  # 110 bytes: fine for a base stream
    fx = core.set_peer("peer", credit=True, window=W, now=T0)
    assert resets(fx) == [("peer", "s", ErrorCode.RESOURCE_EXHAUSTED, True)]
    assert isinstance(s.error, ResourceExhausted)


def test_set_peer_base_forgets_the_peer() -> None:
    core = StreamCore()
    core.set_peer("peer", credit=True, window=W, now=T0)
    core.set_peer("peer", credit=False, window=0, now=T0)
    s, _ = core.open("s", "peer", T0)
    assert not s.peer_speaks


# -- X-STR-4 reset ------------------------------------------------------------


def test_a_reset_from_the_sender_fails_the_stream_after_what_was_released() -> None:
    core = StreamCore()
    s, _ = core.open("s", "peer", T0)
    core.receive("peer", chunk(0), T0)
    core.receive("peer", chunk(2), T0)  # held: lost with the reset
    frame = reset_frame("s", ErrorCode.APPLICATION_ERROR, "handler failed", from_receiver=False)
    fx = core.receive("peer", frame, T0)
    assert fx.wake == [s] and fx.send == [] and not s.registered
    assert isinstance(s.error, ActrError) and s.error.raw_code == ErrorCode.APPLICATION_ERROR
    assert s.error.message == "handler failed"
    items, _ = take_all(core, s)
    assert [i.sequence for i in items if isinstance(i, DataStream)] == [0]
    assert s.buffered_bytes == 0


def test_a_reset_from_anyone_but_the_streams_sender_is_forged_and_touches_nothing() -> None:
    core = StreamCore()
    s, _ = core.open("s", "peer", T0)
    core.receive("peer", chunk(0), T0)
    frame = reset_frame("s", ErrorCode.CANCELLED, "x", from_receiver=False)
    assert core.receive("intruder", frame, T0) == Effects()
    assert core.receive("peer", reset_frame("nope", 1, "x", from_receiver=False), T0) == Effects()
    # From the receiver's side: names a stream we send; we send none.
    assert core.receive("peer", reset_frame("s", 1, "x", from_receiver=True), T0) == Effects()
    assert core.drops == {"forged_reset": 3}
    assert s.registered and s.next_sequence == 1 and s.unread == 1
    assert core.hold.chunks == 0


def test_a_grant_to_a_sender_or_a_grant_for_nothing_is_counted() -> None:
    core = StreamCore()
    core.open("s", "peer", T0)
    bad = grant_frame("s", 10)
    bad.control.from_receiver = False  # a grant only ever comes from a receiver
    core.receive("peer", bad, T0)
    core.receive("peer", grant_frame("unknown", 10), T0)
    assert core.drops == {"bad_control": 1, "grant_unknown_stream": 1}


def test_a_reader_closing_early_resets_a_sender_that_reads_controls() -> None:
    core = StreamCore()
    core.set_peer("peer", credit=True, window=W, now=T0)
    s, _ = core.open("s", "peer", T0)
    base, _ = core.open("s", "base", T0)
    assert resets(core.close(s, T0)) == [("peer", "s", ErrorCode.CANCELLED, True)]
    assert core.close(s, T0).send == []  # twice: once
    assert core.close(base, T0).send == []  # a base sender reads no control frames
    ended, _ = core.open("e", "peer", T0)
    core.receive("peer", chunk(0, sid="e", end=True), T0)
    assert core.close(ended, T0).send == []  # it ended: nothing to cancel


def test_an_idle_credit_stream_expires_timed_out_and_resets_its_sender() -> None:
    core = StreamCore(idle_timeout=30)
    s, _ = core.open("s", "peer", T0, credit=True)
    fx = core.expire(T0 + 30)
    assert fx.wake == [s] and fx.expired == 1 and isinstance(s.error, TimedOut)
    assert resets(fx) == [("peer", "s", ErrorCode.TIMED_OUT, True)]


def test_fail_sender_breaks_both_ways_and_forgets_the_peers_features() -> None:
    core = StreamCore()
    core.set_peer("peer", credit=True, window=W, now=T0)
    s, _ = core.open("s", "peer", T0)
    out = core.out.open("peer", "o", controls=True, window=W, latency_first=False)
    keep = core.out.open("else", "o", controls=False, window=W, latency_first=False)
    err = Unavailable("gone")
    fx = core.fail_sender("peer", err)
    assert fx.wake == [s] and fx.senders == [out] and fx.send == []
    assert s.error is err and out.error is err and not out.open and keep.open
    assert not core.speaks_credit("peer") and core.stats()["outbound_open"] == 1


# -- the sending end ----------------------------------------------------------


def test_grants_raise_an_outbound_limit_never_lower_it_and_a_reset_stops_it() -> None:
    core = StreamCore()
    out = core.out.open("peer", "o", controls=True, window=W, latency_first=False)
    assert (out.credit, out.limit, out.chunk_size(60_000)) == (True, W, W // 2)
    assert out.may_send(W) and not out.may_send(W + 1)
    assert core.receive("peer", grant_frame("o", 300), T0).senders == [out]
    core.receive("peer", grant_frame("o", 200), T0)  # late, or repeated: harmless
    assert out.limit == 300
    core.receive("intruder", reset_frame("o", 1, "x", from_receiver=True), T0)
    assert out.error is None and core.drops == {"forged_reset": 1}
    fx = core.receive("peer", reset_frame("o", ErrorCode.CANCELLED, "bye", from_receiver=True), T0)
    assert fx.senders == [out] and isinstance(out.error, Cancelled) and not out.open
    assert len(core.out) == 0
    base = core.out.open("peer", "b", controls=False, window=W, latency_first=False)
    assert base.may_send(10**9) and base.chunk_size(60_000) == 60_000
    with pytest.raises(ValueError, match="already open"):
        core.out.open("peer", "b", controls=False, window=W, latency_first=False)
    assert core.set_peer("peer", credit=True, window=50, now=T0).senders == [base]
    assert (base.credit, base.limit) == (True, 50)
    lf = core.out.open("peer", "lf", controls=True, window=W, latency_first=True)
    assert lf.controls and not lf.credit


# -- X-STR-8 early chunks -----------------------------------------------------


def test_early_chunks_wait_for_their_registration_and_come_in_order() -> None:
    core = StreamCore()
    for i, seq in enumerate((2, 0, 1)):
        fx = core.receive("peer", chunk(seq), T0 + i / 10)
        assert fx.deadline == T0 + i / 10 + 2.0
    assert core.next_deadline() == T0 + 2.0 and core.stats()["held_early_chunks"] == 3
    s, fx = core.open("s", "peer", T0 + 1)
    assert fx.wake  # its reader has them at once
    items, _ = take_all(core, s)
    assert [i.sequence for i in items if isinstance(i, DataStream)] == [0, 1, 2]
    assert core.hold.chunks == core.hold.bytes == 0 and not core.drops
    assert core.expire(T0 + 5) == Effects()


def test_early_chunks_not_claimed_in_time_are_dropped_and_a_credit_sender_reset() -> None:
    core = StreamCore()
    core.set_peer("peer", credit=True, window=W, now=T0)
    core.receive("peer", chunk(0), T0)
    core.receive("base", chunk(0), T0)
    core.receive("peer", chunk(1), T0 + 1)
    assert core.expire(T0 + 1.9) == Effects()
    fx = core.expire(T0 + 2)
    assert resets(fx) == [("peer", "s", ErrorCode.NOT_FOUND, True)]  # not to "base"
    assert core.drops == {"unregistered_stream": 3} and core.hold.chunks == 0
    core.receive("peer", chunk(2), T0 + 2.5)  # its stragglers drop at once
    assert core.drops["unregistered_stream"] == 4 and core.hold.chunks == 0
    s, fx = core.open("s", "peer", T0 + 3)  # too late: it can never deliver
    assert isinstance(s.error, NotFound) and not s.registered and fx.wake == [s]
    assert len(core) == 0


def test_early_chunks_past_the_holds_bounds_drop_at_once() -> None:
    hold = EarlyHold(hold_bytes=100, hold_chunks=4, total_bytes=150)
    core = StreamCore(hold=hold)
    core.set_peer("a", credit=True, window=W, now=T0)
    for seq in range(4):
        core.receive("a", chunk(seq, sid="x"), T0)
    fx = core.receive("a", chunk(4, sid="x"), T0)  # a fifth chunk from "a"
    assert resets(fx) == [("a", "x", ErrorCode.RESOURCE_EXHAUSTED, True)]
    assert core.drops == {"hold_full": 5} and hold.chunks == 0
    s, _ = core.open("x", "a", T0)
    assert isinstance(s.error, ResourceExhausted)
    core.receive("b", chunk(0, size=90, sid="y"), T0)
    core.receive("c", chunk(0, size=60, sid="z"), T0)  # 150 in all: at the cap
    core.receive("c", chunk(1, size=1, sid="w"), T0)  # one byte past the global cap
    assert core.drops["hold_full"] == 6 and hold.bytes == 150
    assert hold.held_by("b") == (1, 90)


def test_early_chunks_for_an_id_another_sender_has_open_are_held_as_their_own() -> None:
    core = StreamCore()
    owner, _ = core.open("s", "owner", T0)
    core.receive("other", chunk(0), T0)
    assert core.drops == {"chunk_from_other_sender": 1} and core.hold.chunks == 1
    assert owner.unread == 0  # F7: never the owner's
    mine, fx = core.open("s", "other", T0 + 1)
    assert fx.wake == [mine] and mine.unread == 1 and core.hold.chunks == 0
    core.receive("late", chunk(0), T0)
    core.expire(T0 + 2)  # unclaimed: dropped like any early chunk
    assert core.drops == {"chunk_from_other_sender": 2, "unregistered_stream": 1}


# -- X-STR-7 latency-first ----------------------------------------------------


def lf_core(**kw: object) -> tuple[StreamCore, Stream]:
    core = StreamCore(gap_wait=0.05, gap_chunks=4, max_unread=8, **kw)  # type: ignore[arg-type]
    s, _ = core.open("s", "peer", T0, latency_first=True)
    return core, s


def test_latency_first_skips_a_gap_once_gap_wait_passed_since_a_later_chunk() -> None:
    core, s = lf_core()
    core.receive("peer", chunk(0), T0)
    fx = core.receive("peer", chunk(2), T0 + 1)
    assert fx.wake == [] and fx.deadline == T0 + 1.05
    assert core.next_deadline() == T0 + 1.05
    assert core.expire(T0 + 1.04).wake == []
    fx = core.expire(T0 + 1.05)
    assert fx.wake == [s]
    items, _ = take_all(core, s, T0 + 1.05)
    assert [(i.sequence if isinstance(i, DataStream) else i) for i in items] == [0, Gap(1, 1), 2]
    assert s.lost == 1 and core.drops == {"gap_skipped": 1}
    core.receive("peer", chunk(1), T0 + 1.1)  # came after all: too late
    assert core.drops["duplicate_chunk"] == 1


def test_latency_first_skips_a_gap_once_gap_chunks_wait() -> None:
    core, s = lf_core()
    for seq in (3, 4, 5):
        assert core.receive("peer", chunk(seq), T0).wake == []
    assert core.receive("peer", chunk(6), T0).wake == [s]  # the 4th waiting
    items, _ = take_all(core, s)
    assert items[0] == Gap(0, 2) and [i.sequence for i in items[1:]] == [3, 4, 5, 6]  # type: ignore[union-attr]


def test_latency_first_a_gap_then_the_end_ends_the_stream() -> None:
    core, s = lf_core()
    core.receive("peer", chunk(0), T0)
    core.receive("peer", chunk(3, end=True), T0)
    core.receive("peer", chunk(2), T0 + 0.02)
    core.expire(T0 + 0.05)  # the gap at 1 waited since 3 came
    assert not s.registered and s.error is None
    items, _ = take_all(core, s)
    assert [(i.sequence if isinstance(i, DataStream) else i) for i in items] == [0, Gap(1, 1), 2, 3]


def test_latency_first_a_second_gap_is_timed_from_its_own_later_chunk() -> None:
    core, s = lf_core()
    core.receive("peer", chunk(1), T0)  # gap at 0
    core.receive("peer", chunk(3), T0 + 0.04)  # gap at 2, behind it since T0 + 0.04
    core.expire(T0 + 0.05)
    assert s.next_sequence == 2 and s.gap_since == T0 + 0.04
    assert core.next_deadline() == pytest.approx(T0 + 0.09)
    core.expire(T0 + 0.09)
    assert s.next_sequence == 4
    items, _ = take_all(core, s)
    assert items == [Gap(0, 0), items[1], Gap(2, 2), items[3]]


def test_latency_first_a_reader_behind_loses_the_oldest_as_a_gap() -> None:
    core, s = lf_core()
    for seq in range(12):  # never read: at most 8 items wait
        core.receive("peer", chunk(seq), T0)
    assert s.registered and s.unread <= 8 and s.lost > 0
    items, _ = take_all(core, s)
    assert isinstance(items[0], Gap) and items[0].first == 0
    kept = [i.sequence for i in items if isinstance(i, DataStream)]
    assert kept == list(range(items[0].last + 1, 12))
    assert core.drops["reader_behind"] == s.lost == items[0].last + 1


def test_latency_first_bytes_waiting_for_the_reader_are_bounded_too() -> None:
    core, s = lf_core(max_buffered_bytes=35)
    for seq in range(6):
        core.receive("peer", chunk(seq), T0)
    assert s.registered and s.released_bytes <= 35
    assert core.drops["reader_behind"] == s.lost >= 3


# -- properties ---------------------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("chunk"), st.integers(0, 40), st.integers(0, 60), st.booleans()),
        st.tuples(st.just("take"), st.integers(1, 5)),
        st.tuples(st.just("reset"), st.booleans()),
        st.tuples(st.just("time"), st.floats(0, 1)),
        st.tuples(st.just("huge"), st.integers(2**40, 2**64 - 1)),
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(ops, st.booleans(), st.booleans())
def test_any_frames_never_raise_and_a_credit_stream_never_holds_more_than_a_window(
    script: list[tuple], latency_first: bool, early: bool
) -> None:
    core = StreamCore(window=W, gap_wait=0.05, gap_chunks=4, max_unread=8, max_buffered_bytes=120)
    core.set_peer("peer", credit=True, window=W, now=T0)
    now = T0
    s: Stream | None = None
    if not early:
        s, _ = core.open("s", "peer", now, latency_first=latency_first)
    taken = 0
    for op in script:
        kind = op[0]
        if kind == "chunk":
            core.receive("peer", chunk(op[1], size=op[2], end=op[3]), now)
        elif kind == "huge":
            core.receive("peer", chunk(op[1], size=1), now)
        elif kind == "take" and s is not None:
            for _ in range(op[1]):
                item, _frames = core.take(s, now)
                taken += item is not None
        elif kind == "reset":
            frame = reset_frame("s", ErrorCode.INTERNAL, "x", from_receiver=False)
            core.receive("peer" if op[1] else "intruder", frame, now)
        elif kind == "time":
            now += op[1]
            core.expire(now)
        if s is None and kind == "take":
            s, _ = core.open("s", "peer", now, latency_first=latency_first)
        if s is not None:
            if s.credit and s.registered:
                assert s.buffered_bytes <= W
                assert s.received <= s.credit_limit
            assert s.held <= (4 if latency_first else core.max_reorder)
            if latency_first:
                assert s.unread <= 8
        assert core.hold.chunks >= 0 and core.hold.bytes >= 0
    core.expire(now + 1000)
    assert core.hold.chunks == core.hold.bytes == 0
    assert set(core.drops) <= KNOWN_DROPS
    assert core.stats()["inbound_open"] == len(core) <= 1


KNOWN_DROPS = {
    "duplicate_chunk",
    "chunk_after_end",
    "sequence_too_far",
    "credit_overrun",
    "buffer_overflow",
    "forged_reset",
    "unregistered_stream",
    "hold_full",
    "gap_skipped",
    "reader_behind",
    "stream_expired",
}
