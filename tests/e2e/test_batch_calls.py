"""X-BATCH-1 end to end: a client here, the echo actor daemon a process of its own.
64 concurrent calls to a peer whose Hello listed ``batch`` leave in batch frames and
are all answered right; to a peer taken as base (the Rust actr, the browser SDK)
the same calls go one envelope per DC-3 message and nothing is batched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import actr
from actr.hello import BATCH, peer_features
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats

pytestmark = pytest.mark.e2e

ECHO = "acme:echo:1.0"
SAY = "echo.v1.Echo.Say"


async def ready_echo(client: actr.Node) -> Any:
    """The client's connection to the echo daemon once the daemon's Hello came."""
    await client.call(ECHO, SAY, SayRequest(text="warm"), SayReply, timeout=10)
    peer = client.calls.ready_peer(ECHO)
    assert peer is not None
    assert BATCH in await peer_features(peer, 5.0)
    return peer


async def sixty_four_calls(client: actr.Node, tag: str) -> None:
    replies = await asyncio.gather(
        *(
            client.call(ECHO, SAY, SayRequest(text=f"{tag}-{i}", blob=bytes(100)), SayReply)
            for i in range(64)
        )
    )
    assert [r.text for r in replies] == [f"{tag}-{i}" for i in range(64)]
    assert all(r.blob == bytes(100) for r in replies)


async def test_xbatch1_64_concurrent_calls_to_a_batch_peer_share_messages(
    cluster: Cluster,
) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo", sections=STATS_FOR_CLIENT)
    async with cluster.client() as client:
        await ready_echo(client)
        before = dict(client.stats()["transport"])
        await sixty_four_calls(client, "batched")
        after = client.stats()["transport"]
        assert after["batches_sent"] > before.get("batches_sent", 0)
        batched = after["envelopes_batched"] - before.get("envelopes_batched", 0)
        frames = after["frames_sent"] - before["frames_sent"]
        assert after["messages_sent"] - before["messages_sent"] == 64
        assert frames < 64 and batched > 1
        assert after.get("batch_send_failed", 0) == 0
        echo = (await runtime_stats(client, ECHO))["transport"]
        assert echo["batches_received"] >= 1
        assert echo.get("frame_batch_malformed", 0) == 0
        assert client.pending.counters["unknown_response"] == 0


async def test_xbatch1_a_base_peer_gets_one_envelope_per_message(cluster: Cluster) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo", sections=STATS_FOR_CLIENT)
    async with cluster.client() as client:
        peer = await ready_echo(client)
        peer.features = frozenset()  # as if its Hello had never come
        received = (await runtime_stats(client, ECHO))["transport"].get("batches_received", 0)
        before = dict(client.stats()["transport"])
        await sixty_four_calls(client, "base")
        after = client.stats()["transport"]
        assert after.get("batches_sent", 0) == before.get("batches_sent", 0)
        assert after["frames_sent"] - before["frames_sent"] == 64
        assert after["messages_sent"] - before["messages_sent"] == 64
        echo = (await runtime_stats(client, ECHO))["transport"]
        assert echo.get("batches_received", 0) == received
