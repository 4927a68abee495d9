"""X-STR-7 end to end: a latency-first stream that loses chunks (a lossy shim on
the sender's channel drops chosen sequences) reaches its reader in order with
every chunk that arrived, each loss reported as a gap, and no stall."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

import pytest

from actr.protocol.actr_pb2 import DataStream, PayloadType
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

BEGIN, RESULT = "lossy.v1.Lossy.Begin", "lossy.v1.Lossy.Result"
TOTAL = 400
DROPPED = {*range(10, TOTAL - 1, 17), 50, 51, 52}  # single losses and a run of three


async def _lost() -> None:
    return None


async def test_latency_first_skips_lost_chunks_and_reports_gaps(cluster: Cluster) -> None:
    target = await cluster.start_actor("lossy", "tests.e2e.stream_actors:Lossy")
    async with cluster.client() as client:
        await client.call(target, BEGIN, SayRequest(text="s1"), SayReply, timeout=10)
        peer = client.calls.ready_peer(target)
        assert peer is not None
        real_send = peer.send
        shim_dropped: set[int] = set()

        def lossy_send(ptype: int, data: bytes) -> Coroutine[Any, Any, None]:
            if ptype == PayloadType.STREAM_LATENCY_FIRST:
                frame = DataStream.FromString(data)
                if not frame.HasField("control") and frame.sequence in DROPPED:
                    shim_dropped.add(frame.sequence)
                    return _lost()
            return real_send(ptype, data)

        peer.send = lossy_send  # type: ignore[method-assign]
        tx = await client.open_stream(target, "s1", latency_first=True)
        for i in range(TOTAL - 1):
            await tx.send(str(i).encode())
        await tx.end(b"last")
        loop = asyncio.get_running_loop()
        ended = loop.time()
        reply = await client.call(target, RESULT, SayRequest(text="s1"), SayReply, timeout=10)
        took = loop.time() - ended
    assert shim_dropped == DROPPED
    got = json.loads(reply.text)
    seqs: list[int] = got["seqs"]
    gapped = {s for first, last in got["gaps"] for s in range(first, last + 1)}
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # in order, once each
    assert not DROPPED & set(seqs)
    assert gapped >= DROPPED  # every loss reported
    assert set(seqs) | gapped == set(range(TOTAL))  # nothing else missing
    # On loopback the shim is the only loss: everything else arrived.
    assert len(seqs) >= TOTAL - len(DROPPED) - 5
    # No stall: each gap is skipped after gap_wait (50 ms), not after 1,024 chunks.
    assert took < 3.0, took
