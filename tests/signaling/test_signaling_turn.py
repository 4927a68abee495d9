"""TURN credentials (PROTOCOL.md AIS-4), checked against a real coturn."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint
from conftest import TURN_SECRET, MakeServer
from signaling_kit import TIMEOUT, register, renew

from actr.identity import id_text
from signaling.config import Turn
from signaling.turn import turn_password


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))


async def test_ais4_registration_and_renewal_carry_turn_credential(
    http: aiohttp.ClientSession, make_server: MakeServer
) -> None:
    server = await make_server(
        turn=Turn(urls=("turn:127.0.0.1:3478",), secret="s3cret", ttl_secs=600)
    )
    before = int(time.time())
    ok = await register(http, server.url, "acme:echo:1.0")
    cred = ok.turn_credential
    expires, _, who = cred.username.partition(":")
    assert who == id_text(ok.actr_id)
    assert before + 600 <= int(expires) == cred.expires_at <= int(time.time()) + 600
    assert cred.password == turn_password("s3cret", cred.username)
    status, renewed = await renew(http, server.url, ok.actr_id, ok.renewal_token)
    assert status == 200 and renewed.success.HasField("turn_credential")


async def test_ais1_no_turn_configured_no_turn_credential(
    http: aiohttp.ClientSession, base: str
) -> None:
    ok = await register(http, base, "acme:echo:1.0")
    assert not ok.HasField("turn_credential")


async def test_ais4_issued_credential_relays_through_real_coturn(
    http: aiohttp.ClientSession, make_server: MakeServer, turn_port: int
) -> None:
    server = await make_server(
        turn=Turn(urls=(f"turn:127.0.0.1:{turn_port}",), secret=TURN_SECRET, ttl_secs=600)
    )
    ok = await register(http, server.url, "acme:echo:1.0")
    cred = ok.turn_credential
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(_Inbox, local_addr=("127.0.0.1", 0))
    relay_transport, _ = await create_turn_endpoint(
        _Inbox, ("127.0.0.1", turn_port), cred.username, cred.password
    )
    try:
        relayed = relay_transport.get_extra_info("sockname")
        assert relayed[0] == "127.0.0.1"
        # Data really flows through the allocation: it reaches the peer from the relayed address.
        relay_transport.sendto(b"through coturn", peer_transport.get_extra_info("sockname"))
        data, source = await asyncio.wait_for(peer.received.get(), TIMEOUT)
        assert data == b"through coturn"
        assert source == tuple(relayed)
    finally:
        relay_transport.close()
        peer_transport.close()
    # coturn refuses what the server did not sign.
    with pytest.raises(TransactionFailed) as info:
        await create_turn_endpoint(
            _Inbox, ("127.0.0.1", turn_port), cred.username, cred.password[:-4] + "AAA="
        )
    assert "401" in str(info.value)
