"""F7 with real processes: a peer that the actor admits cannot feed chunks into a stream
that another caller announced; its chunks are dropped and counted."""

from __future__ import annotations

import hashlib

import pytest

from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats

pytestmark = pytest.mark.e2e

FRONT = "acme:front:1.0"
BEGIN, RESULT = "front.v1.Upload.Begin", "front.v1.Upload.Result"


async def test_f7_third_peer_cannot_inject_into_anothers_stream(cluster: Cluster) -> None:
    front_id = await cluster.start_actor(
        "front",
        "tests.e2e.actors:Front",
        sections={"admin": {**STATS_FOR_CLIENT["admin"], "stats_per_sec": 100.0}},
    )
    async with cluster.client() as owner, cluster.client() as intruder:
        # The owner announces "up": Front registers it for the owner (its caller).
        await owner.call(front_id, BEGIN, SayRequest(text="up"), SayReply, timeout=10)
        await intruder.call(front_id, BEGIN, SayRequest(text="own"), SayReply, timeout=10)

        forged = await intruder.open_stream(front_id, "up")
        for i in range(5):
            await forged.send(f"forged-{i}".encode())
        await forged.end(b"forged-end")
        # The intruder's own stream follows on the same ordered channel: once it is
        # complete, Front has seen every forged chunk.
        own = await intruder.open_stream(front_id, "own")
        await own.end(b"mine")
        r = await intruder.call(front_id, RESULT, SayRequest(text="own"), SayReply, timeout=20)
        assert r.text == "1 in_order=True"

        sender = await owner.open_stream(front_id, "up")
        digest = hashlib.sha256()
        for i in range(20):
            payload = f"real-{i}".encode()
            digest.update(payload)
            await sender.send(payload)
        await sender.end()
        r = await owner.call(front_id, RESULT, SayRequest(text="up"), SayReply, timeout=20)
        assert (r.text, r.blob) == ("20 in_order=True", digest.digest())

        stats = await runtime_stats(owner, front_id)
    assert stats["streams"]["chunk_from_other_sender"] == 6
