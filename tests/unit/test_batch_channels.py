"""X-BATCH-1 in ``DataChannels``: real aiortc peer connections on loopback in one
process for what goes on the wire (signaling relays handed straight across, as in
test_transport_channels.py), and a stand-in channel for the sender's bounds and
failures, which need exact control of ``bufferedAmount`` and ``send``."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc.exceptions import InvalidStateError

from actr.errors import ResourceExhausted
from actr.framing import (
    BATCH_HEADER,
    HEADER,
    MAX_BATCH_ENTRIES,
    is_batch,
    pack_batch,
    split_batch,
)
from actr.hello import BATCH, FEATURES
from actr.identity import id_text, make_id, parse_type
from actr.protocol.actr_pb2 import PayloadType
from actr.transport import Peer, Transport, TransportConfig
from actr.transport.batching import MAX_BATCHED_ENVELOPE, MAX_PENDING_BYTES
from actr.transport.channels import DataChannels
from tests.unit.loopback_signaling import pair

RELIABLE = PayloadType.RPC_RELIABLE
SIGNAL = PayloadType.RPC_SIGNAL
STREAM = PayloadType.STREAM_RELIABLE


def envelope(i: int, size: int = 150) -> bytes:
    """A stand-in envelope of ``size`` bytes that says which one it is."""
    head = f"envelope-{i}-".encode()
    return (head * (size // len(head) + 1))[:size]


@dataclass
class Link:
    """``sender`` (b's connection to a) sends; ``frames`` are what a's channels got, raw."""

    sender: Peer
    receiver: Peer
    sent: Counter[str]
    received: Counter[str]
    got: asyncio.Queue[tuple[int, bytes]]
    frames: list[tuple[int, bytes]] = field(default_factory=list)

    async def take(self, n: int) -> list[tuple[int, bytes]]:
        return [await asyncio.wait_for(self.got.get(), 10) for _ in range(n)]


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    t = parse_type("a:b:1")
    a, b = pair(make_id(1, 1, t), make_id(1, 2, t))
    got: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    cfg = TransportConfig(host_addresses=["127.0.0.1"], connect_timeout=10)
    ta = Transport(a, cfg, lambda p, pt, d: got.put_nowait((pt, d)), lambda p: None)  # type: ignore[arg-type]
    tb = Transport(b, cfg, lambda p, pt, d: None, lambda p: None)  # type: ignore[arg-type]
    try:
        sender = await tb.connect(a.actr_id)
        await sender.send(RELIABLE, b"warm")  # msg_id 0 on RPC_RELIABLE
        assert await asyncio.wait_for(got.get(), 10) == (RELIABLE, b"warm")
        receiver = ta.peer(id_text(b.actr_id))
        assert receiver is not None
        result = Link(sender, receiver, tb.counters, ta.counters, got)
        on_frame = receiver.data._on_frame

        def spy(ptype: int, channel: Any, data: bytes | str) -> None:
            assert isinstance(data, bytes)
            result.frames.append((ptype, data))
            on_frame(ptype, channel, data)

        receiver.data._on_frame = spy  # type: ignore[method-assign]
        yield result
    finally:
        await ta.close()
        await tb.close()


async def test_xbatch1_a_peer_without_the_feature_gets_one_dc3_frame_per_envelope(
    link: Link,
) -> None:
    assert BATCH not in link.sender.features  # no Hello (the Rust actr, the browser SDK)
    sent = [envelope(i) for i in range(10)]
    await asyncio.gather(*(link.sender.send(RELIABLE, e) for e in sent))
    assert await link.take(10) == [(RELIABLE, e) for e in sent]
    # Today's bytes: one DC-3 frame each, msg_ids counting on from the warm-up's 0.
    assert link.frames == [(RELIABLE, HEADER.pack(1 + i, 0, 1) + e) for i, e in enumerate(sent)]
    assert link.sent["batches_sent"] == 0 and link.received["batches_received"] == 0


async def test_xbatch1_envelopes_sent_in_one_turn_to_a_batch_peer_share_one_message(
    link: Link,
) -> None:
    link.sender.got_hello(FEATURES, 0)
    frames_before, messages_before = link.sent["frames_sent"], link.sent["messages_sent"]
    sent = [envelope(i) for i in range(64)]
    await asyncio.gather(*(link.sender.send(RELIABLE, e) for e in sent))
    assert await link.take(64) == [(RELIABLE, e) for e in sent]  # delivered in order
    # The first of the turn left at once, as it always did; the 63 after it in one batch.
    (_, first), (ptype, batch) = link.frames
    assert first == HEADER.pack(1, 0, 1) + sent[0]
    assert ptype == RELIABLE and is_batch(batch) and split_batch(batch) == sent[1:]
    assert link.sent["frames_sent"] - frames_before == 2
    assert link.sent["messages_sent"] - messages_before == 64
    assert (link.sent["batches_sent"], link.sent["envelopes_batched"]) == (1, 63)
    assert link.received["batches_received"] == 1
    # A lone envelope waits for nothing and is today's DC-3 frame; a batch took no msg_id.
    await link.sender.send(RELIABLE, b"alone")
    assert await link.take(1) == [(RELIABLE, b"alone")]
    assert link.frames[-1] == (RELIABLE, HEADER.pack(2, 0, 1) + b"alone")
    assert link.sent["batches_sent"] == 1


async def test_xbatch1_each_channel_batches_its_own_and_stream_channels_never(
    link: Link,
) -> None:
    link.sender.got_hello(FEATURES, 0)
    sends = [
        (pt, b"%s%d" % (tag, i))
        for i in range(3)
        for pt, tag in ((RELIABLE, b"r"), (SIGNAL, b"s"), (STREAM, b"c"))
    ]
    await asyncio.gather(*(link.sender.send(pt, e) for pt, e in sends))
    got = await link.take(len(sends))
    for pt in (RELIABLE, SIGNAL, STREAM):  # in order on each channel
        assert [e for p, e in got if p == pt] == [e for p, e in sends if p == pt]
    batches = sorted((pt, split_batch(f)) for pt, f in link.frames if is_batch(f))
    assert batches == [(RELIABLE, [b"r1", b"r2"]), (SIGNAL, [b"s1", b"s2"])]
    assert [f for pt, f in link.frames if pt == STREAM] == [
        HEADER.pack(i, 0, 1) + b"c%d" % i for i in range(3)
    ]


async def test_xbatch1_order_kept_around_multi_frame_and_larger_messages(link: Link) -> None:
    link.sender.got_hello(FEATURES, 0)
    big = bytes(range(256)) * 800  # 204,800 bytes: four DC-3 fragments
    medium = envelope(99, MAX_BATCHED_ENVELOPE + 1)  # one frame, too large to batch
    e = [envelope(i) for i in range(7)]
    sends = [e[0], e[1], e[2], big, e[3], e[4], medium, e[5]]
    await asyncio.gather(*(link.sender.send(RELIABLE, m) for m in sends))
    assert await link.take(len(sends)) == [(RELIABLE, m) for m in sends]
    frames = [f for _, f in link.frames]
    assert [is_batch(f) for f in frames] == [False, True] + [False] * 4 + [True, False, False]
    # What was held when a larger message came left before it.
    assert frames[0] == HEADER.pack(1, 0, 1) + e[0]
    assert split_batch(frames[1]) == [e[1], e[2]]
    assert [HEADER.unpack_from(f) for f in frames[2:6]] == [(2, i, 4) for i in range(4)]
    assert split_batch(frames[6]) == [e[3], e[4]]
    assert frames[7:] == [HEADER.pack(3, 0, 1) + medium, HEADER.pack(4, 0, 1) + e[5]]


async def test_xbatch1_malformed_batches_are_counted_and_dropped(link: Link) -> None:
    channel = link.sender.channels[RELIABLE]
    for raw in (BATCH_HEADER, BATCH_HEADER + b"\x00\x00\x00\x09abc", pack_batch([b"a", b"b"])):
        channel.send(raw)
    # A batch is understood from any peer, even one that never negotiated it.
    assert await link.take(2) == [(RELIABLE, b"a"), (RELIABLE, b"b")]
    assert link.received["frame_batch_malformed"] == 2
    assert link.received["batches_received"] == 1
    await link.sender.send(RELIABLE, b"still fine")
    assert await link.take(1) == [(RELIABLE, b"still fine")]


# -- the sender's bounds and failures, on a stand-in channel --------------------------


class FakeChannel:
    """What DataChannels uses of an RTCDataChannel; ``send`` records or fails."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.readyState = "open"
        self.bufferedAmount = 0
        self.bufferedAmountLowThreshold = 0
        self.sent: list[bytes] = []
        self.failing = False
        self.sent_event = asyncio.Event()
        self.handlers: dict[str, list[Callable[..., Any]]] = {}

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        self.handlers.setdefault(event, []).append(handler)

    def emit(self, event: str) -> None:
        for handler in self.handlers.get(event, []):
            handler()

    def send(self, data: bytes) -> None:
        if self.failing:
            raise InvalidStateError
        self.sent.append(data)
        self.sent_event.set()


class FakeHost:
    key = "fake"
    pc: Any = None

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.ready.set()
        self.closed = False
        self.failure = None
        self.features = FEATURES

    def channel_opened(self) -> None:
        pass

    def channel_lost(self, err: Exception) -> None:
        raise AssertionError(err)


@pytest.fixture
def fake() -> tuple[DataChannels[Any], FakeChannel, Counter[str]]:
    counters: Counter[str] = Counter()
    cfg = TransportConfig(high_water=100_000, low_water=10_000)
    data: DataChannels[Any] = DataChannels(FakeHost(), cfg, counters, lambda *a: None)
    channel = FakeChannel("RPC_RELIABLE")
    data.adopt(channel)  # type: ignore[arg-type]
    return data, channel, counters


async def flushed(channel: FakeChannel, n: int) -> list[bytes]:
    """The first ``n`` frames the channel took (the flush runs at the end of a turn)."""
    while len(channel.sent) < n:
        channel.sent_event.clear()
        await asyncio.wait_for(channel.sent_event.wait(), 5)
    return channel.sent


async def test_xbatch1_pending_bytes_and_entries_are_capped(
    fake: tuple[DataChannels[Any], FakeChannel, Counter[str]],
) -> None:
    data, channel, counters = fake
    per_batch = MAX_PENDING_BYTES // (4 + MAX_BATCHED_ENVELOPE)  # 3 at the 4 KiB maximum
    sent = [envelope(i, MAX_BATCHED_ENVELOPE) for i in range(1 + 3 * per_batch)]
    for e in sent:  # one loop turn: a batched send never suspends
        await data.send(RELIABLE, e)
    assert len(channel.sent) == 3  # the first at once, then the cap was passed twice
    frames = await flushed(channel, 4)  # and the rest at the end of the turn
    assert frames[0] == HEADER.pack(0, 0, 1) + sent[0]
    assert [split_batch(f) for f in frames[1:]] == [
        sent[i : i + per_batch] for i in range(1, len(sent), per_batch)
    ]
    assert all(len(f) <= 8 + MAX_PENDING_BYTES for f in frames)
    channel.sent.clear()
    tiny = [b"%d" % i for i in range(1 + MAX_BATCH_ENTRIES + 10)]
    for e in tiny:
        await data.send(RELIABLE, e)
    frames = await flushed(channel, 3)
    assert frames[0] == HEADER.pack(1, 0, 1) + tiny[0]
    assert [len(split_batch(f)) for f in frames[1:]] == [MAX_BATCH_ENTRIES, 10]
    assert counters["envelopes_batched"] == len(sent) - 1 + len(tiny) - 1
    assert counters["batches_sent"] == 5


async def test_dc5_xbatch1_over_the_high_water_mark_pending_goes_and_the_send_waits(
    fake: tuple[DataChannels[Any], FakeChannel, Counter[str]],
) -> None:
    data, channel, counters = fake
    await data.send(RELIABLE, b"first")  # sent at once
    await data.send(RELIABLE, b"second")  # held to the end of the turn
    assert channel.sent == [HEADER.pack(0, 0, 1) + b"first"]
    channel.bufferedAmount = 100_001
    third = asyncio.ensure_future(data.send(RELIABLE, b"third"))
    # DC-5: what was held leaves now (before "third"), and "third" waits.
    assert await flushed(channel, 2) == [
        HEADER.pack(0, 0, 1) + b"first",
        HEADER.pack(1, 0, 1) + b"second",
    ]
    assert not third.done()
    channel.bufferedAmount = 0
    channel.emit("bufferedamountlow")
    await asyncio.wait_for(third, 5)
    assert channel.sent[2:] == [HEADER.pack(2, 0, 1) + b"third"]
    assert counters["batches_sent"] == 0


async def test_xbatch1_a_failed_flush_is_counted_not_raised(
    fake: tuple[DataChannels[Any], FakeChannel, Counter[str]],
) -> None:
    data, channel, counters = fake
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    try:
        for e in (b"one", b"two", b"three"):
            await data.send(RELIABLE, e)
        channel.failing = True  # the channel closed after the sends were taken
        # Callbacks run in order: once this one ran, so did the flush scheduled before.
        done = loop.create_future()
        loop.call_soon(done.set_result, None)
        await done
        assert counters["batch_send_failed"] == 1
        assert (counters["batches_sent"], counters["frames_sent"]) == (0, 1)
        channel.failing = False
        await data.send(RELIABLE, b"four")  # the first of a new turn: at once
        assert channel.sent == [HEADER.pack(0, 0, 1) + b"one", HEADER.pack(1, 0, 1) + b"four"]
    finally:
        loop.set_exception_handler(None)
    assert errors == []


async def test_xbatch1_close_sends_what_is_pending(
    fake: tuple[DataChannels[Any], FakeChannel, Counter[str]],
) -> None:
    data, channel, counters = fake
    for e in (b"first", b"last", b"words"):
        await data.send(RELIABLE, e)
    assert counters["messages_sent"] == 3
    data.close()
    assert [split_batch(f) for f in channel.sent[1:]] == [[b"last", b"words"]]
    assert counters["batches_sent"] == 1


async def test_xbatch1_the_message_size_limit_holds_inside_batches() -> None:
    counters: Counter[str] = Counter()
    got: list[bytes] = []
    cfg = TransportConfig(max_message_size=100)
    data: DataChannels[Any] = DataChannels(
        FakeHost(), cfg, counters, lambda _host, _pt, envelope: got.append(envelope)
    )
    channel = FakeChannel("RPC_RELIABLE")
    data.adopt(channel)  # type: ignore[arg-type]
    data._on_frame(RELIABLE, channel, pack_batch([b"a" * 100, b"b" * 101, b"c"]))  # type: ignore[arg-type]
    assert got == [b"a" * 100, b"c"]
    assert counters["frame_message_too_large"] == 1
    # The sender refuses it as it always did, batch peer or not.
    with pytest.raises(ResourceExhausted):
        await data.send(RELIABLE, b"x" * 101)
    assert channel.sent == [] and counters["messages_sent"] == 0
