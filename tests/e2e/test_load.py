"""10,000 calls with 64 in flight: every one answered, correctly, and memory stays flat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

ECHO = "acme:echo:1.0"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_10000_calls_64_in_flight_no_loss_flat_memory(cluster: Cluster) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo")
    pid = cluster.procs["echo"].popen.pid
    async with cluster.client() as client:
        sem = asyncio.Semaphore(64)
        answers: dict[int, str] = {}

        async def one(i: int) -> None:
            async with sem:
                r = await client.call(
                    ECHO, "echo.v1.Echo.Say", SayRequest(text=str(i)), SayReply, timeout=60
                )
                answers[i] = r.text

        await asyncio.gather(*(one(i) for i in range(2_000)))
        warm = rss_kib(pid)
        await asyncio.gather(*(one(i) for i in range(2_000, 10_000)))
        end = rss_kib(pid)
        assert answers == {i: str(i) for i in range(10_000)}
        assert len(client.pending) == 0
        assert client.pending.counters["unknown_response"] == 0
    # 8,000 more calls may not grow the callee by more than a few MiB (no per-call leak).
    assert end - warm < 8 * 1024, f"callee RSS grew {warm} -> {end} KiB"
