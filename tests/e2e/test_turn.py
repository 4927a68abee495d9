"""AIS-4 through a real coturn: two daemons told to use only relayed candidates
(force_relay) complete a call, and the selected candidate pair is a relay pair."""

from __future__ import annotations

import asyncio

import pytest

from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats
from tests.services import start_turnserver

pytestmark = pytest.mark.e2e

SECRET = "turn-shared-secret"


async def test_ais4_force_relay_daemons_call_through_coturn(cluster: Cluster) -> None:
    turn, port = await asyncio.to_thread(start_turnserver, cluster.work, SECRET)
    cluster.procs["turn"] = turn
    url = f"turn:127.0.0.1:{port}"
    # The signaling server hands out coturn use-auth-secret credentials at registration.
    await cluster.start_signaling(extra=f'[turn]\nurls = ["{url}"]\nsecret = "{SECRET}"\n')
    # "echo" names the TURN server in its config; "front" and the client take the
    # urls the signaling server sends with the credential (RegisterOk.turn_urls).
    await cluster.start_actor(
        "echo", "examples.echo:Echo", sections={"webrtc": {"turn_urls": [url], "force_relay": True}}
    )
    await cluster.start_actor(
        "front",
        "tests.e2e.actors:Front",
        sections={"webrtc": {"force_relay": True}, **STATS_FOR_CLIENT},
    )
    async with cluster.client(force_relay=True) as client:
        # The caller reaches "front" through TURN, and "front" reaches "echo" through TURN.
        r = await client.call(
            "acme:front:1.0", "front.v1.Front.Relay", SayRequest(text="via"), SayReply, timeout=30
        )
        assert r.text == "via"
        mine = [p["selected_pair"] for p in client.stats()["peers"].values()]
        front = await runtime_stats(client, "acme:front:1.0")
    assert mine == [("relay", "relay")]
    pairs = [p["selected_pair"] for p in front["peers"].values()]
    assert sorted(map(tuple, pairs)) == [("relay", "relay"), ("relay", "relay")]
