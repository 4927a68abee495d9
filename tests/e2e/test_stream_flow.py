"""X-STR-3 end to end: 100 MB through a reliable stream to a consumer that reads
slowly, between two processes. The receiver's memory stays within its window
plus 64 MiB, the sender is slowed to the consumer's pace, the data arrives whole."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actr.hello import STREAM_WINDOW
from examples.echo_pb2 import SayReply
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

SIZE = 100 * 1024 * 1024
RATE = 10 * 1024 * 1024  # the consumer's bytes per second
BLOCK = 256 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_slow_consumer_paces_the_sender_and_bounds_memory(cluster: Cluster) -> None:
    target = await cluster.start_actor("sink", "tests.e2e.stream_actors:Sink")
    pid = cluster.procs["sink"].popen.pid
    digest = hashlib.sha256()
    block = bytes(range(256)) * (BLOCK // 256)
    loop = asyncio.get_running_loop()
    sent_all_at = 0.0

    async def source() -> AsyncIterator[bytes]:
        nonlocal sent_all_at
        for i in range(SIZE // BLOCK):
            b = i.to_bytes(4, "big") + block[4:]
            digest.update(b)
            yield b
        sent_all_at = loop.time()

    async with cluster.client() as client:
        # A first small transfer: connection, handler and stream paths warm.
        warm = await client.call_client_stream(
            target, "sink.v1.Sink.Slow", [b"x" * 1024], SayReply, metadata={"rate": "1e9"}
        )
        assert warm.text == "1024"
        baseline = rss(pid)
        peak = baseline
        done = asyncio.Event()

        async def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss(pid))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.05)

        watcher = asyncio.create_task(watch())
        started = loop.time()
        try:
            reply = await client.call_client_stream(
                target,
                "sink.v1.Sink.Slow",
                source(),
                SayReply,
                timeout=120,
                metadata={"rate": str(RATE)},
            )
        finally:
            done.set()
            await watcher
        finished = loop.time()
    assert reply.text == str(SIZE)
    assert reply.blob == digest.digest()
    # The sender could not run ahead: it finished pushing only when the consumer
    # was within a window (plus what is in flight) of the end.
    least = (SIZE - 4 * STREAM_WINDOW) / RATE
    assert sent_all_at - started >= least * 0.9, (sent_all_at - started, least)
    assert finished - started >= SIZE / RATE * 0.9
    growth = peak - baseline
    print(f"receiver RSS growth {growth / 2**20:.1f} MiB, {finished - started:.1f} s")
    assert growth <= STREAM_WINDOW + 64 * 1024 * 1024, growth / 2**20
