"""SIG-8 on the runtime side: peer connections outlive the signaling server, and
actors and clients reconnect by themselves when it comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import actr
from actr.errors import Unavailable
from actr.identity import parse_type
from examples.echo_pb2 import SayReply, SayRequest
from examples.launch import start_actor, start_signaling, write_actor_config

pytestmark = pytest.mark.e2e

ECHO = "acme:echo:1.0"
SAY = "echo.v1.Echo.Say"


async def test_sig8_connected_peers_keep_working_through_signaling_outage(tmp_path: Path) -> None:
    sig, url = await asyncio.to_thread(start_signaling, tmp_path)
    port = int(url.rsplit(":", 1)[1])
    cfg = write_actor_config(tmp_path, "echo", "examples.echo:Echo", url)
    echo, _ = await asyncio.to_thread(start_actor, tmp_path, "echo", cfg)
    try:
        async with actr.connect(
            url, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
        ) as client:
            r = await client.call(ECHO, SAY, SayRequest(text="before"), SayReply, timeout=10)
            assert r.text == "before"

            sig.kill()
            await asyncio.wait_for(client.signaling.disconnected.wait(), timeout=10)
            # The peer connection and the cached route need no signaling.
            for i in range(20):
                r = await client.call(
                    ECHO, SAY, SayRequest(text=f"during {i}"), SayReply, timeout=5
                )
                assert r.text == f"during {i}"
            # Reaching an actor not yet connected needs signaling: fails fast.
            with pytest.raises(Unavailable):
                await client.call("acme:other:1.0", SAY, SayRequest(), SayReply, timeout=5)

            sig, _ = await asyncio.to_thread(start_signaling, tmp_path, port=port)
            # The client reconnects by itself (an in-memory server forgot everyone, so
            # it registers again), and so does the echo daemon.
            await asyncio.wait_for(client.signaling.connected.wait(), timeout=30)
            assert client.signaling.reconnects >= 1

        async with actr.connect(
            url, realm_secret="dev-secret", host_addresses=["127.0.0.1"]
        ) as fresh:
            came_up = asyncio.Event()
            fresh.signaling.on_presence = lambda kind, _id: came_up.set() if kind == "up" else None
            await fresh.signaling.subscribe(parse_type(ECHO))
            if not await fresh.signaling.route_candidates(parse_type(ECHO)):
                # The daemon re-registers within its backoff (at most 10 s).
                await asyncio.wait_for(came_up.wait(), timeout=30)
            r = await fresh.call(ECHO, SAY, SayRequest(text="after"), SayReply, timeout=10)
            assert r.text == "after"
    finally:
        echo.stop()
        sig.stop()
