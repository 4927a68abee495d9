"""SIG-6 on the runtime side, with real aiortc peer connections in one process: the
runtime asks the server for a connection and obeys the role it is assigned, even
where the assignment contradicts any rule it could have guessed itself."""

from __future__ import annotations

import asyncio

import pytest

from actr.identity import make_id, parse_type
from actr.protocol.actr_pb2 import ActrId, PayloadType
from actr.transport import Transport, TransportConfig
from tests.unit.loopback_signaling import RoleRule, larger_offers, pair


def smaller_offers(asker: ActrId, peer: ActrId) -> bool:
    return not larger_offers(asker, peer)


def asker_offers(asker: ActrId, peer: ActrId) -> bool:
    return True


def asker_answers(asker: ActrId, peer: ActrId) -> bool:
    return False


@pytest.mark.parametrize("rule", [larger_offers, smaller_offers, asker_offers, asker_answers])
@pytest.mark.parametrize("small_asks", [True, False])
async def test_sig6_runtime_obeys_the_assignment(rule: RoleRule, small_asks: bool) -> None:
    t = parse_type("a:b:1")
    small, large = make_id(1, 1, t), make_id(1, 2, t)
    sa, sb = pair(small, large, rule)
    got: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    cfg = TransportConfig(host_addresses=["127.0.0.1"], connect_timeout=10)
    ta = Transport(sa, cfg, lambda p, pt, d: got.put_nowait(("small", d)), lambda p: None)  # type: ignore[arg-type]
    tb = Transport(sb, cfg, lambda p, pt, d: got.put_nowait(("large", d)), lambda p: None)  # type: ignore[arg-type]
    asker, asker_sig, peer_id = (ta, sa, large) if small_asks else (tb, sb, small)
    try:
        conn = await asker.connect(peer_id)
        await conn.send(PayloadType.RPC_RELIABLE, b"hello")
        assert (await asyncio.wait_for(got.get(), 10))[1] == b"hello"
        kinds = [r.WhichOneof("payload") for r in asker_sig.sent]
        # The asker never decides itself: it negotiates first, always.
        assert kinds[0] == "role_negotiation"
        asker_id = small if small_asks else large
        should_offer = rule(asker_id, peer_id)
        offers = [
            r
            for s in (sa, sb)
            for r in s.sent
            if r.WhichOneof("payload") == "session_description" and r.session_description.type == 0
        ]
        assert len(offers) == 1
        assert (offers[0].source == asker_id) == should_offer
    finally:
        await ta.close()
        await tb.close()


async def test_sig6_assignment_to_offer_replaces_a_stale_ready_connection() -> None:
    """The peer asked again (it lost our connection): told to offer, we start over."""
    t = parse_type("a:b:1")
    small, large = make_id(1, 1, t), make_id(1, 2, t)
    sa, sb = pair(small, large)
    cfg = TransportConfig(host_addresses=["127.0.0.1"], connect_timeout=10)
    closed: list[str] = []
    ta = Transport(sa, cfg, lambda p, pt, d: None, lambda p: closed.append("small"))  # type: ignore[arg-type]
    tb = Transport(sb, cfg, lambda p, pt, d: None, lambda p: closed.append("large"))  # type: ignore[arg-type]
    try:
        first = await ta.connect(large)
        old_on_large = tb.peer("1@1/a:b:1")
        assert old_on_large is not None
        # small forgets the connection and asks again; large (the offerer) replaces its own.
        await first.close()
        ta._peers.clear()
        second = await ta.connect(large)
        assert second is not first and second.ready.is_set()
        assert old_on_large.closed and tb.peer("1@1/a:b:1") is not old_on_large
    finally:
        await ta.close()
        await tb.close()
