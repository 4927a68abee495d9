"""DC-1 with real aiortc peer connections on loopback, in one process, signaling
relays handed straight across: a peer whose offerer opens only RPC_RELIABLE (as
actr's does) still gets every channel, opened lazily by whichever side sends."""

from __future__ import annotations

import asyncio

import pytest

from actr.identity import make_id, parse_type
from actr.protocol.actr_pb2 import PayloadType
from actr.transport import CHANNELS, Peer, Transport, TransportConfig
from tests.unit.loopback_signaling import pair


async def test_dc1_channels_missing_at_setup_are_opened_on_first_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def only_rpc(self: Peer) -> None:
        label = "RPC_RELIABLE"
        self._adopt_channel(self.pc.createDataChannel(label, **CHANNELS[label][1]))

    monkeypatch.setattr(Peer, "open_channels", only_rpc)
    t = parse_type("a:b:1")
    a, b = pair(make_id(1, 1, t), make_id(1, 2, t))
    got: asyncio.Queue[tuple[str, int, bytes]] = asyncio.Queue()
    cfg = TransportConfig(host_addresses=["127.0.0.1"], connect_timeout=10)
    ta = Transport(a, cfg, lambda p, pt, d: got.put_nowait(("a", pt, d)), lambda p: None)  # type: ignore[arg-type]
    tb = Transport(b, cfg, lambda p, pt, d: got.put_nowait(("b", pt, d)), lambda p: None)  # type: ignore[arg-type]
    try:
        to_a = await tb.connect(a.actr_id)  # b asks; the server tells b (larger) to offer
        assert set(to_a.channels) == {PayloadType.RPC_RELIABLE}
        await to_a.send(PayloadType.STREAM_RELIABLE, b"chunk")  # b opens it
        assert await asyncio.wait_for(got.get(), 10) == ("a", PayloadType.STREAM_RELIABLE, b"chunk")
        to_b = ta.peer("2@1/a:b:1")
        assert to_b is not None
        await to_b.send(PayloadType.RPC_SIGNAL, b"urgent")  # a opens this one
        assert await asyncio.wait_for(got.get(), 10) == ("b", PayloadType.RPC_SIGNAL, b"urgent")
        await to_b.send(PayloadType.STREAM_RELIABLE, b"back")  # the channel b opened
        assert await asyncio.wait_for(got.get(), 10) == ("b", PayloadType.STREAM_RELIABLE, b"back")
    finally:
        await ta.close()
        await tb.close()
