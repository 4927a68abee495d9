"""100 clients started at once from one address, against a signaling server with its
default limits (a burst of 100 attempts per address; registering and opening the
socket both count): every one connects, riding out the 429s, and calls the echo
daemon (issue 16)."""

from __future__ import annotations

import asyncio

import pytest

import actr
from examples.echo_pb2 import SayReply, SayRequest
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

CLIENTS = 100


async def test_a_hundred_clients_started_at_once_all_connect_and_call(cluster: Cluster) -> None:
    await cluster.start_actor("echo", "examples.echo:Echo")
    clients = [cluster.client() for _ in range(CLIENTS)]
    started = await asyncio.gather(*(c.start() for c in clients), return_exceptions=True)
    try:
        failed = [e for e in started if isinstance(e, BaseException)]
        assert not failed, f"{len(failed)} clients failed to start: {failed[:3]}"
        # Calls in waves: the point is the start; the daemon sets up a connection each.
        wave = asyncio.Semaphore(16)

        async def call(i: int, client: actr.Node) -> str:
            async with wave:
                reply = await client.call(
                    "acme:echo:1.0",
                    "echo.v1.Echo.Say",
                    SayRequest(text=f"c{i}"),
                    SayReply,
                    timeout=30,
                )
                return reply.text

        texts = await asyncio.gather(*(call(i, c) for i, c in enumerate(clients)))
        assert texts == [f"c{i}" for i in range(CLIENTS)]
    finally:
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
