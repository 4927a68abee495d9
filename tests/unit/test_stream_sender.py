"""The asyncio layer of credit, resets, gaps and early chunks: a sender paced by its
receiver's grants, resets both ways, a sender's scope, latency-first gaps as
events, early chunks claimed by a registration. Two registries talk through
in-memory queues (no network); time is a clock the test moves."""

from __future__ import annotations

import asyncio
import re

import pytest

from actr.errors import ActrError, Cancelled, ErrorCode, Internal, Unavailable
from actr.protocol.actr_pb2 import DataStream
from actr.streams import Gap, StreamReceiver, StreamRegistry, StreamSender, new_stream_id

W = 1000


class Link:
    """A sender's registry ("a") and a receiver's ("b"), wired as the node would:
    chunks and control frames go through queues pumped by one task each way."""

    def __init__(self, window: int = W) -> None:
        self.now = [0.0]
        self.a = StreamRegistry(clock=lambda: self.now[0], window=window)
        self.b = StreamRegistry(clock=lambda: self.now[0], window=window)
        self.a.set_peer("B", credit=True, window=window)
        self.b.set_peer("A", credit=True, window=window)
        self.to_b: asyncio.Queue[DataStream] = asyncio.Queue()
        self.to_a: asyncio.Queue[DataStream] = asyncio.Queue()
        self.b.send_control = lambda peer, frame: self.to_a.put_nowait(frame)
        self.a.send_control = lambda peer, frame: self.to_b.put_nowait(frame)
        self.on_b: list[DataStream] = []
        self.max_buffered = 0
        self._tasks = [
            asyncio.ensure_future(self._pump(self.to_b, self.b, "A")),
            asyncio.ensure_future(self._pump(self.to_a, self.a, "B")),
        ]

    async def send(self, frame: DataStream) -> None:
        await self.to_b.put(frame)

    async def _pump(self, q: asyncio.Queue[DataStream], reg: StreamRegistry, src: str) -> None:
        while True:
            frame = await q.get()
            if reg is self.b:
                self.on_b.append(frame)
            reg.deliver(src, frame)
            for key in list(reg.core._table):
                s = reg.core._table[key]
                self.max_buffered = max(self.max_buffered, s.buffered_bytes)

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def read_all(rx: StreamReceiver) -> bytes:
    return b"".join([c.payload async for c in rx])


async def test_a_credit_sender_is_paced_by_its_receivers_grants() -> None:
    link = Link()
    rx = link.b.register("s", "A")
    tx = link.a.open_sender("B", "s", link.send)
    assert tx.credit_limit == W
    data = bytes(range(256)) * 20  # 5 windows
    reading = asyncio.ensure_future(read_all(rx))
    await asyncio.wait_for(tx.send(data), 5)
    await asyncio.wait_for(tx.end(), 5)
    assert await asyncio.wait_for(reading, 5) == data
    assert link.max_buffered <= W
    assert all(len(c.payload) <= W for c in link.on_b)  # chunks fit the window
    assert tx.closed and len(link.a.core.out) == 0 and len(link.b) == 0
    await link.close()


async def test_a_sender_out_of_credit_waits_until_a_grant() -> None:
    link = Link()
    rx = link.b.register("s", "A")
    tx = link.a.open_sender("B", "s", link.send)
    await asyncio.wait_for(tx.send(b"x" * W), 5)  # the whole window
    blocked = asyncio.ensure_future(tx.send(b"y"))
    await asyncio.sleep(0)  # one turn: it is waiting, nothing more was sent
    assert not blocked.done() and tx.sent == W
    it = aiter(rx)
    got = 0
    while got < W // 2:  # the reader takes half a window: a grant goes back
        got += len((await asyncio.wait_for(anext(it), 5)).payload)
    await asyncio.wait_for(blocked, 5)
    assert tx.sent == W + 1 and tx.credit_limit == W + W // 2  # it took a chunk of W // 2
    await link.close()


async def test_a_receiver_closing_resets_the_sender_cancelled() -> None:
    link = Link()
    rx = link.b.register("s", "A")
    tx = link.a.open_sender("B", "s", link.send)
    await tx.send(b"x" * W)
    blocked = asyncio.ensure_future(tx.send(b"more"))
    rx.close()  # gone before the end: the sender is told
    with pytest.raises(Cancelled):
        await asyncio.wait_for(blocked, 5)
    with pytest.raises(Cancelled):
        await tx.send(b"again")
    assert tx.closed and len(link.a.core.out) == 0
    await link.close()


async def test_a_sender_reset_reaches_the_reader_after_what_was_sent() -> None:
    link = Link()
    rx = link.b.register("s", "A")
    tx = link.a.open_sender("B", "s", link.send)
    await tx.send(b"part")
    await tx.reset(ErrorCode.APPLICATION_ERROR, "handler failed")
    got: list[bytes] = []
    with pytest.raises(ActrError) as err:
        async for c in rx:
            got.append(c.payload)
    assert got == [b"part"] and err.value.raw_code == ErrorCode.APPLICATION_ERROR
    assert err.value.message == "handler failed"
    await tx.reset(ErrorCode.INTERNAL, "twice")  # over: nothing more
    with pytest.raises(ActrError):
        await tx.send(b"x")
    await link.close()


async def test_leaving_a_senders_scope_without_end_resets_it() -> None:
    link = Link()
    rx1, rx2, rx3 = (link.b.register(s, "A") for s in ("s1", "s2", "s3"))
    async with link.a.open_sender("B", "s1", link.send) as tx:
        await tx.send(b"a")
    with pytest.raises(KeyError):
        async with link.a.open_sender("B", "s2", link.send) as tx:
            raise KeyError("bug")
    async with link.a.open_sender("B", "s3", link.send) as tx:
        await tx.end(b"done")
    with pytest.raises(Internal, match="stream abandoned"):
        await asyncio.wait_for(read_all(rx1), 5)
    with pytest.raises(ActrError) as err:
        await asyncio.wait_for(read_all(rx2), 5)
    assert err.value.raw_code == ErrorCode.APPLICATION_ERROR
    assert await asyncio.wait_for(read_all(rx3), 5) == b"done"
    await link.close()


async def test_fail_sender_fails_a_waiting_sender_and_the_peers_receivers() -> None:
    link = Link()
    rx = link.a.register("in", "B")
    tx = link.a.open_sender("B", "s", link.send)
    await tx.send(b"x" * W)
    blocked = asyncio.ensure_future(tx.send(b"y"))
    await asyncio.sleep(0)
    link.a.fail_sender("B", Unavailable("connection lost"))
    with pytest.raises(Unavailable):
        await asyncio.wait_for(blocked, 5)
    with pytest.raises(Unavailable):
        await asyncio.wait_for(rx.collect(), 5)
    await link.close()


async def test_a_plain_sender_splits_big_payloads_and_takes_no_credit() -> None:
    sent: list[DataStream] = []

    async def send(c: DataStream) -> None:
        sent.append(c)

    tx = StreamSender("s", send, chunk_size=4)
    await tx.send(b"0123456789", {"k": "v"})
    await tx.end(b"abcde")
    assert [(c.sequence, c.payload, c.end_of_stream) for c in sent] == [
        (0, b"0123", False),
        (1, b"4567", False),
        (2, b"89", False),
        (3, b"abcd", False),
        (4, b"e", True),
    ]
    assert [len(c.metadata) for c in sent] == [1, 0, 0, 0, 0]
    assert tx.credit_limit is None
    async with StreamSender("t", send) as plain:  # abandoned: no control frame to a base peer
        await plain.send(b"x")
    assert sent[-1].payload == b"x" and not sent[-1].HasField("control")


async def test_latency_first_gaps_are_events_and_recorded() -> None:
    now = [0.0]
    reg = StreamRegistry(clock=lambda: now[0], gap_wait=0.05)
    armed: list[float] = []
    reg.on_deadline = armed.append
    rx = reg.register("s", "peer", latency_first=True)
    for seq in (0, 2, 3):
        reg.deliver("peer", DataStream(stream_id="s", sequence=seq, payload=b"p"))
    assert 0.05 in armed and reg.next_deadline() == 0.05
    now[0] = 0.05
    reg.expire()
    reg.deliver("peer", DataStream(stream_id="s", sequence=4, payload=b"", end_of_stream=True))
    events = [e async for e in rx.events()]
    assert [e if isinstance(e, Gap) else e.sequence for e in events] == [0, Gap(1, 1), 2, 3]
    assert rx.gaps == [Gap(1, 1)] and rx.lost == 1


async def test_early_chunks_are_claimed_by_a_registration() -> None:
    reg = StreamRegistry(clock=lambda: 0.0)
    armed: list[float] = []
    reg.on_deadline = armed.append
    reg.deliver("peer", DataStream(stream_id="s", sequence=1, payload=b"b", end_of_stream=True))
    reg.deliver("peer", DataStream(stream_id="s", sequence=0, payload=b"a"))
    assert armed == [2.0, 2.0] and reg.stats()["held_early_chunks"] == 2
    rx = reg.register("s", "peer")
    assert await asyncio.wait_for(read_all(rx), 5) == b"ab"
    stats = reg.stats()
    assert stats["held_early_bytes"] == 0 and stats["inbound_open"] == 0


async def test_stats_and_unsent_controls() -> None:
    reg = StreamRegistry(clock=lambda: 0.0)
    reg.set_peer("peer", credit=True, window=W)
    rx = reg.register("s", "peer")

    async def nowhere(frame: DataStream) -> None:
        raise AssertionError("nothing is sent")

    tx = reg.open_sender("peer", "o", nowhere)
    assert tx.credit_limit == W
    assert reg.stats() == {
        "inbound_open": 1,
        "outbound_open": 1,
        "held_early_chunks": 0,
        "held_early_bytes": 0,
        "credit_peers": 1,
        "drops": {},
    }
    rx.close()  # a CANCELLED reset, but no node wired send_control: counted
    assert reg.drops["control_unsent"] == 1


def test_new_stream_ids_are_s_and_32_hex() -> None:
    ids = {new_stream_id() for _ in range(100)}
    assert len(ids) == 100 and all(re.fullmatch(r"s-[0-9a-f]{32}", i) for i in ids)
