"""Handler scheduling: RPC_SIGNAL overtakes queued RPC_RELIABLE (DC-2, MBX-2), and the
concurrency knob lets handlers overlap."""

from __future__ import annotations

import asyncio
import time

import pytest

from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster
from tests.e2e.pending_probe import PendingProbe

pytestmark = pytest.mark.e2e

WORKER = "acme:worker:1.0"
WORK = "worker.v1.Worker.Work"


async def test_dc2_signal_request_overtakes_queued_reliable_ones(cluster: Cluster) -> None:
    await cluster.start_actor("worker", "tests.e2e.actors:Worker")
    async with cluster.client() as client:
        await client.call(WORKER, WORK, SayRequest(text="warm:0"), SayReply)
        probe = PendingProbe(client)

        def work(text: str, signal: bool = False) -> asyncio.Task[SayReply]:
            label = text.partition(":")[0]
            return asyncio.create_task(
                client.call(
                    WORKER,
                    WORK,
                    SayRequest(text=text),
                    SayReply,
                    timeout=20,
                    signal=signal,
                    request_id=label,
                )
            )

        calls = [work("block:1")] + [work(f"n{i}:0") for i in range(5)]
        calls.append(work("urgent:0", signal=True))
        # The connection is up: each call is sent as it is registered, in this order.
        sent = await probe.wait_for(7)
        assert sent == ["block", "n0", "n1", "n2", "n3", "n4", "urgent"]
        await asyncio.gather(*calls)
        ran = await client.call(WORKER, "worker.v1.Worker.Ran", SayRequest(), SayReply)
    order = ran.text.split("\n")
    normal = ["n0", "n1", "n2", "n3", "n4"]
    # "block" may already run when "urgent" arrives; every queued NORMAL one is overtaken.
    assert order in (
        ["warm", "block", "urgent", *normal],
        ["warm", "urgent", "block", *normal],
    ), order


async def test_max_concurrent_handlers_lets_handlers_overlap(cluster: Cluster) -> None:
    await cluster.start_actor(
        "worker", "tests.e2e.actors:Worker", sections={"actor": {"max_concurrent_handlers": 4}}
    )
    async with cluster.client() as client:
        await client.call(WORKER, WORK, SayRequest(text="warm:0"), SayReply)
        start = time.monotonic()
        replies = await asyncio.gather(
            *(
                client.call(WORKER, WORK, SayRequest(text=f"c{i}:1"), SayReply, timeout=20)
                for i in range(4)
            )
        )
        elapsed = time.monotonic() - start
    assert sorted(r.text for r in replies) == ["c0", "c1", "c2", "c3"]
    assert elapsed < 2.5, f"4 one-second handlers took {elapsed:.1f}s: they did not overlap"
