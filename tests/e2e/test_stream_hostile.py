"""Hostile stream input against an actor daemon (its own process), X-STR-2..5: a
peer that overruns its credit, forges resets and grants for streams that are not
its own, injects chunks into another caller's call stream and sends huge
sequence numbers. Each is dropped or reset and counted; a good caller's call
stream, running at the same time, arrives whole."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from actr.errors import ErrorCode, ResourceExhausted
from actr.protocol.actr_pb2 import DataStream, ErrorResponse, PayloadType, StreamControl
from examples.echo_pb2 import SayReply
from tests.e2e.conftest import STATS_FOR_CLIENT, Cluster, runtime_stats

pytestmark = pytest.mark.e2e

SLOW = "sink.v1.Sink.Slow"


def chunk(stream_id: str, seq: int, payload: bytes) -> bytes:
    return DataStream(stream_id=stream_id, sequence=seq, payload=payload).SerializeToString()


def control(stream_id: str, **fields: object) -> bytes:
    frame = DataStream(stream_id=stream_id, sequence=0, payload=b"")
    frame.control.CopyFrom(StreamControl(**fields))  # type: ignore[arg-type]
    return frame.SerializeToString()


async def test_hostile_stream_input_is_dropped_or_reset_and_counted(cluster: Cluster) -> None:
    target = await cluster.start_actor(
        "sink",
        "tests.e2e.stream_actors:Sink",
        sections={**STATS_FOR_CLIENT, "actor": {"max_concurrent_handlers": 4}},
    )
    async with cluster.client() as good, cluster.client() as bad:
        # The good caller's call stream, open while the attacks run.
        digest = hashlib.sha256()
        good_call = await good.open_call(
            target, SLOW, send=bytes, response_type=SayReply, metadata={"rate": "1e9"}
        )
        good_sid = good_call._tx.stream_id  # type: ignore[union-attr]

        async def good_sends() -> SayReply:
            for i in range(80):
                block = i.to_bytes(4, "big") * 16384  # 64 KiB
                digest.update(block)
                await good_call.send(block)
            reply: SayReply = await good_call.result()
            return reply

        good_task = asyncio.create_task(good_sends())

        # 1. Credit overrun: a call stream to a slow consumer, blasted past the window
        # without waiting for grants.
        over = await bad.open_call(
            target, SLOW, send=bytes, response_type=SayReply, metadata={"rate": "100000"}
        )
        peer = bad.calls.ready_peer(target)
        assert peer is not None
        over_sid = over._tx.stream_id  # type: ignore[union-attr]
        for seq in range(40):
            await peer.send(PayloadType.STREAM_RELIABLE, chunk(over_sid, seq, b"o" * 60_000))

        # 2. Forged reset and grant for the good caller's stream, and chunks into it.
        await peer.send(
            PayloadType.STREAM_RELIABLE,
            control(good_sid, reset=ErrorResponse(code=10010, message="forged")),
        )
        await peer.send(
            PayloadType.STREAM_RELIABLE,
            control(good_sid, credit_limit=2**63, from_receiver=True),
        )
        for seq in range(5):
            await peer.send(PayloadType.STREAM_RELIABLE, chunk(good_sid, seq, b"forged"))

        # 3. Huge sequence numbers on a stream of its own, which still completes.
        mine = await bad.open_call(
            target, SLOW, send=bytes, response_type=SayReply, metadata={"rate": "1e9"}
        )
        mine_sid = mine._tx.stream_id  # type: ignore[union-attr]
        for seq in (2**64 - 1, 2**63, 10**12):
            await peer.send(PayloadType.STREAM_RELIABLE, chunk(mine_sid, seq, b"far"))
        await mine.send(b"fine")
        assert (await asyncio.wait_for(mine.result(), 30)).text == "4"

        with pytest.raises(ResourceExhausted) as err:
            await asyncio.wait_for(over.result(), 30)
        assert err.value.raw_code == ErrorCode.RESOURCE_EXHAUSTED

        reply = await asyncio.wait_for(good_task, 60)
        assert reply.text == str(80 * 65536)
        assert reply.blob == digest.digest()

        stats = (await runtime_stats(good, target))["streams"]
        assert stats["credit_overrun"] == 1
        assert stats["forged_reset"] >= 1
        assert stats["grant_unknown_stream"] >= 1
        assert stats["chunk_from_other_sender"] >= 1
        assert stats["sequence_too_far"] == 3
